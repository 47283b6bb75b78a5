"""Replay stored scenarios under an engine and a policy, in parallel, and store the run.

Each worker process warms the solver once, parses each network once (by content version) and
applies the policy to it once; per scenario it rebuilds a snapshot from that network plus the
scenario's own inventory slice, solves, runs the independent checker and returns one result
row per service level. The parent streams scenarios out of the store with a bounded number of
chunks in flight, shows a progress bar, and stores the run and all its rows in one transaction.

Workers come from a ``forkserver`` context where the platform has one: the server process is
started clean (no DuckDB threads inherited through ``fork``) and preloads this module, a warm
CP-SAT and the postal-code table (``scenarios._preload``), so every pool after the first starts
in milliseconds with workers that share that memory.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import gc
import importlib.metadata
import logging
import math
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.pool
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from models import (
    Engine,
    InventoryPosition,
    PromiseRequest,
    PromiseResult,
    ServiceLevel,
    Snapshot,
    Status,
)
from scenarios.policy import DEFAULT_POLICY, Policy
from scenarios.store import (
    RowBoundedCache,
    RunInfo,
    ScenarioStore,
    Selection,
    base_snapshot,
    inventory_lines,
    parse_inventory,
    parse_line,
    scenario_prices,
    scenario_snapshot,
)
from solver import Inventory, SolveParams, solve, warm_up
from solver.checker import CheckReport, check

__all__ = [
    "RECORDED",
    "ReplaySelection",
    "code_version",
    "prestart",
    "replay",
    "result_rows",
    "selection_of",
]

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

# Engine label of a run built from the recorded decisions instead of a solve.
RECORDED = "recorded"
# Chunks in flight per worker: enough to keep every worker busy, few enough to bound memory.
_INFLIGHT_PER_WORKER = 4
_MAX_VIOLATION_TEXT = 2_000

ReplaySelection = Selection | Sequence[str] | str | tuple[dt.datetime, dt.datetime] | None
# (id, network_version, snapshot_version, as_of, request JSON, inventory JSON, decision JSON,
# prices JSON)
_Item = tuple[str, str, str, dt.datetime, str, str, str | None, str | None]
_Networks = dict[str, tuple[bytes, str, dt.datetime]]


@dataclasses.dataclass(frozen=True, slots=True)
class _Job:
    """What a worker needs to replay a chunk besides the scenarios themselves."""

    engine: Engine
    policy: str  # Policy JSON
    levels: tuple[ServiceLevel, ...] | None
    recorded: bool
    time_budget_ms: int


def selection_of(selection: ReplaySelection) -> Selection:
    """Normalise a tag, a list of ids or an order-instant range [since, until) to a Selection."""
    if selection is None:
        return Selection()
    if isinstance(selection, Selection):
        return selection
    if isinstance(selection, str):
        return Selection(tag=selection)
    items = tuple(selection)
    if len(items) == 2 and all(isinstance(item, dt.datetime) for item in items):
        since, until = items
        return Selection(since=since, until=until)  # type: ignore[arg-type]
    return Selection(ids=tuple(str(item) for item in items))


@functools.cache
def code_version() -> str:
    """``git describe`` of the checkout this code runs from, else the package version."""
    root = Path(__file__).resolve().parents[1]
    if (root / ".git").exists():
        try:
            described = subprocess.run(
                ["git", "describe", "--always", "--dirty", "--tags"],  # noqa: S607 - git on PATH
                cwd=root,
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            described = ""
        if described:
            return described
    try:
        return "v" + importlib.metadata.version("promise-engine")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------------------------
# Worker side.

# Caches of a worker process, keyed by content versions (immutable content, never stale):
# the stored networks of the current run, and networks with a policy applied.
_BODIES: _Networks = {}
_APPLIED: dict[tuple[str, str], Snapshot] = {}
_APPLIED_SIZE = 8


def _init_worker(networks: _Networks, freeze: bool) -> None:
    """Warm the solver and parse every network of the run once."""
    warm_up()
    _BODIES.clear()
    _BODIES.update(networks)
    for version, (body, label, as_of) in networks.items():
        base_snapshot(version, body, label=label, as_of=as_of)
    if freeze:
        # The parsed networks live as long as the worker: keep them out of full GC passes. No
        # collection first: the fork server collected its heap before forking this worker.
        gc.freeze()


def _applied(version: str, policy: Policy) -> Snapshot:
    """The network of ``version`` with ``policy`` applied (cached)."""
    key = (version, policy.digest)
    found = _APPLIED.get(key)
    if found is None:
        body, label, as_of = _BODIES[version]
        found = policy.apply(base_snapshot(version, body, label=label, as_of=as_of))
        _APPLIED[key] = found
        while len(_APPLIED) > _APPLIED_SIZE:
            del _APPLIED[next(iter(_APPLIED))]
    return found


@dataclasses.dataclass(frozen=True, slots=True)
class _Columns:
    """Inventory rows as arrays over one network's node and SKU positions."""

    rows: tuple[InventoryPosition, ...]
    node: IntArray
    sku: IntArray
    on_hand: IntArray
    reserved: IntArray
    safety_stock: IntArray
    unit_cost: IntArray
    lot_row: IntArray  # row of each lot within ``rows``
    lot_eta: IntArray
    lot_qty: IntArray


_STOCK_FIELDS = ("on_hand", "reserved", "safety_stock", "unit_cost")
# Arrays of inventory lines by (network version, line); lines recur across carts.
_LINE_COLUMNS: RowBoundedCache[_Columns] = RowBoundedCache(100_000)
_POSITIONS: dict[str, tuple[dict[str, int], dict[str, int]]] = {}


def _positions(version: str, base: Snapshot) -> tuple[dict[str, int], dict[str, int]]:
    """Node and SKU positions of a network (cached by version)."""
    found = _POSITIONS.get(version)
    if found is None:
        found = (
            {node.node_id: i for i, node in enumerate(base.nodes)},
            {item.sku: k for k, item in enumerate(base.items)},
        )
        _POSITIONS[version] = found
        while len(_POSITIONS) > _APPLIED_SIZE:
            del _POSITIONS[next(iter(_POSITIONS))]
    return found


def _columns(
    rows: tuple[InventoryPosition, ...], node_pos: dict[str, int], sku_pos: dict[str, int]
) -> _Columns:
    """Arrays of some validated rows."""
    count = len(rows)
    lots = [(i, lot) for i, row in enumerate(rows) for lot in row.in_transit]
    return _Columns(
        rows=rows,
        node=np.fromiter((node_pos[r.node_id] for r in rows), np.int64, count),
        sku=np.fromiter((sku_pos[r.sku] for r in rows), np.int64, count),
        on_hand=np.fromiter((r.on_hand for r in rows), np.int64, count),
        reserved=np.fromiter((r.reserved for r in rows), np.int64, count),
        safety_stock=np.fromiter((r.safety_stock for r in rows), np.int64, count),
        unit_cost=np.fromiter((r.unit_cost for r in rows), np.int64, count),
        lot_row=np.array([i for i, _ in lots], dtype=np.int64),
        lot_eta=np.array([lot.eta.toordinal() for _, lot in lots], dtype=np.int64),
        lot_qty=np.array([lot.quantity for _, lot in lots], dtype=np.int64),
    )


def _stock(
    version: str,
    network: Snapshot,
    text: str,
    *,
    snapshot_version: str,
    as_of: dt.datetime,
    skus: list[str],
) -> tuple[Inventory, Snapshot]:
    """The live-stock view and the checker's snapshot of one scenario's inventory text.

    Unknown nodes or SKUs are rejected by ``scenario_snapshot`` before any array is built.
    """
    lines = inventory_lines(text)
    rows_all = parse_inventory(text)
    checked = scenario_snapshot(network, rows_all, version=snapshot_version, as_of=as_of, skus=skus)
    node_pos, sku_pos = _positions(version, network)
    parts: list[_Columns] = []
    for line in [text] if lines is None else lines:
        key = (version, line)
        found = _LINE_COLUMNS.get(key)
        if found is None:
            rows = parse_inventory(line) if lines is None else parse_line(line)
            found = _columns(rows, node_pos, sku_pos)
            _LINE_COLUMNS.put(key, found, len(rows))
        parts.append(found)
    offsets = np.cumsum([0] + [len(p.rows) for p in parts[:-1]], dtype=np.int64)
    node = _cat([p.node for p in parts])
    sku = _cat([p.sku for p in parts])
    inventory = Inventory(
        snapshot=network,
        version=0,
        node=node,
        sku=sku,
        lot_row=_cat([p.lot_row + offset for p, offset in zip(parts, offsets, strict=True)]),
        lot_eta=_cat([p.lot_eta for p in parts]),
        lot_qty=_cat([p.lot_qty for p in parts]),
        rows={key: row for row, key in enumerate(zip(node.tolist(), sku.tolist(), strict=True))},
        **{name: _cat([getattr(p, name) for p in parts]) for name in _STOCK_FIELDS},
    )
    return inventory, checked


def _cat(arrays: list[IntArray]) -> IntArray:
    """Concatenate int64 arrays (an empty list gives an empty array)."""
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


def _level_ok(report: CheckReport, level: ServiceLevel) -> tuple[bool, str | None]:
    """Checker verdict for one option (result-wide violations count against every option)."""
    broken = [str(v) for v in report.violations if v.service_level in (None, level)]
    if not broken:
        return True, None
    return False, "; ".join(broken)[:_MAX_VIOLATION_TEXT]


def result_rows(
    scenario_id: str, result: PromiseResult, report: CheckReport
) -> list[tuple[Any, ...]]:
    """One result row per option, in ``RESULT_COLUMNS`` order."""
    rows: list[tuple[Any, ...]] = []
    for option in result.options:
        ok, violations = _level_ok(report, option.service_level)
        promised = option.promised_delivery_date
        rows.append(
            (
                scenario_id,
                option.service_level.value,
                option.status.value,
                option.status is Status.FALLBACK,
                option.cost.shipping,
                option.cost.handling,
                option.cost.labour,
                option.cost.total,
                option.revenue,
                option.margin,
                option.objective,
                option.split_count,
                len(option.shipments),
                None if promised is None else (promised - result.order_date).days,
                sum(u.quantity for u in option.unfulfilled),
                result.solver.wall_ms,
                result.recommended is option.service_level,
                ok,
                violations,
                None,
            )
        )
    return rows


def _error_row(scenario_id: str, error: str) -> tuple[Any, ...]:
    """The row of a scenario that could not be replayed at all."""
    zeros = (0,) * 9  # shipping … shipments
    text = error[:_MAX_VIOLATION_TEXT]
    return (scenario_id, "none", "error", False, *zeros, None, 0, 0.0, False, False, None, text)


def _replay_one(job: _Job, policy: Policy, item: _Item) -> list[tuple[Any, ...]]:
    """Replay (or re-check the recorded decision of) one scenario."""
    (
        scenario_id,
        version,
        snapshot_version,
        as_of,
        request_json,
        inventory_json,
        decision,
        priced,
    ) = item
    try:
        request = PromiseRequest.model_validate_json(request_json)
        if job.levels is not None:
            request = request.model_copy(update={"service_levels": job.levels})
        network = _applied(version, policy)
        inventory, snapshot = _stock(
            version,
            network,
            inventory_json,
            snapshot_version=snapshot_version,
            as_of=as_of,
            skus=[line.sku for line in request.cart.lines],
        )
        # The prices the decision was charged: a recorded one is checked with them, a solve
        # charges them again, as production did.
        prices = scenario_prices(priced)
        if job.recorded:
            if decision is None:
                return [_error_row(scenario_id, "the scenario has no recorded decision")]
            result = PromiseResult.model_validate_json(decision)
        else:
            # The network's own index (with its calendar answers) is shared by every scenario;
            # only the slice's stock arrays are new.
            params = SolveParams(engine=job.engine, time_budget_ms=job.time_budget_ms)
            result = solve(request, network, params=params, inventory=inventory, prices=prices)
        report = check(result, request, snapshot, prices=prices)
    except Exception as exc:  # one broken scenario must not sink a whole run: record it
        return [_error_row(scenario_id, f"{type(exc).__name__}: {exc}")]
    rows = result_rows(scenario_id, result, report)
    return rows or [_error_row(scenario_id, "no service level to quote")]


def _run_chunk(job: _Job, items: list[_Item]) -> list[tuple[Any, ...]]:
    """Replay a chunk of scenarios."""
    policy = Policy.model_validate_json(job.policy)
    return [row for item in items for row in _replay_one(job, policy, item)]


# --------------------------------------------------------------------------------------------
# Parent side.


def _context() -> multiprocessing.context.BaseContext:
    """A process context that does not fork a parent holding DuckDB threads."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__, "scenarios._preload"])
        return context
    return multiprocessing.get_context("spawn")


def prestart() -> None:
    """Start the workers' fork server now, so its imports overlap the caller's own set-up."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        _context()  # sets the preload list the server starts with
        multiprocessing.forkserver.ensure_running()


def _items(store: ScenarioStore, selection: Selection, chunk: int) -> Iterator[list[_Item]]:
    """The selected scenarios in chunks, with only the columns a worker needs."""
    for rows in store.records(selection, batch=chunk):
        yield [(r[0], r[1], r[2], r[3], r[8], r[9], r[10], r[13]) for r in rows]


def _chunk_size(total: int, workers: int) -> int:
    """Scenarios per task: about eight tasks per worker, between 4 and 64 scenarios."""
    return max(4, min(64, math.ceil(total / (workers * 8))))


def _parallel(
    *,
    store: ScenarioStore,
    selection: Selection,
    job: _Job,
    networks: _Networks,
    workers: int,
    chunk: int,
    bar: tqdm[Any],
) -> list[tuple[Any, ...]]:
    """Replay in a pool of ``workers`` processes with a bounded number of chunks in flight."""
    rows: list[tuple[Any, ...]] = []
    pending: deque[tuple[int, multiprocessing.pool.AsyncResult[list[tuple[Any, ...]]]]] = deque()
    with _context().Pool(workers, initializer=_init_worker, initargs=(networks, True)) as pool:
        for items in _items(store, selection, chunk):
            pending.append((len(items), pool.apply_async(_run_chunk, (job, items))))
            while len(pending) >= workers * _INFLIGHT_PER_WORKER:
                count, done = pending.popleft()
                rows.extend(done.get())
                bar.update(count)
        while pending:
            count, done = pending.popleft()
            rows.extend(done.get())
            bar.update(count)
    return rows


def replay(
    store: ScenarioStore,
    selection: ReplaySelection = None,
    *,
    engine: Engine | str | None = None,
    policy: Policy | None = None,
    workers: int | None = None,
    levels: Sequence[ServiceLevel] | None = None,
    recorded: bool = False,
    time_budget_ms: int | None = None,
    label: str = "",
    progress: bool = True,
) -> int:
    """Replay the selected scenarios and store the run; the run id.

    ``selection`` is a tag, a list of scenario ids, an order-instant range ``(since, until)``,
    a :class:`Selection`, or None for every scenario. ``engine`` overrides the policy's engine;
    ``levels`` overrides the service levels each stored request asks for; ``recorded`` stores
    the checked recorded decisions instead of solving (a baseline of what production did).
    The solve time budget is ``time_budget_ms``, else the policy's, else the solver default
    (a request's own budget wins over all three, as in the service).
    """
    policy = DEFAULT_POLICY if policy is None or recorded else policy
    chosen = Engine(engine) if engine is not None else policy.engine
    wanted = selection_of(selection)
    total = store.count(wanted)
    if total == 0:
        raise ValueError(f"no scenarios match the selection ({wanted.describe()})")
    networks = store.network_bodies(store.network_versions(wanted))
    quoted = None if levels is None else tuple(ServiceLevel(level) for level in levels)
    job = _Job(
        engine=chosen,
        policy=policy.model_dump_json(),
        levels=quoted,
        recorded=recorded,
        time_budget_ms=time_budget_ms or policy.time_budget_ms or SolveParams().time_budget_ms,
    )
    count = max(1, min(workers or os.cpu_count() or 1, math.ceil(total / 4)))
    chunk = _chunk_size(total, count)
    run_id = store.next_run_id()
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    engine_label = RECORDED if recorded else chosen.value
    description = f"replay {engine_label} / {policy.name}"
    with tqdm(
        total=total, desc=description, unit="scenario", disable=not progress, file=sys.stderr
    ) as bar:
        if count == 1:
            _init_worker(networks, freeze=False)
            rows: list[tuple[Any, ...]] = []
            for items in _items(store, wanted, chunk):
                rows.extend(_run_chunk(job, items))
                bar.update(len(items))
        else:
            rows = _parallel(
                store=store,
                selection=wanted,
                job=job,
                networks=networks,
                workers=count,
                chunk=chunk,
                bar=bar,
            )
    duration = time.perf_counter() - clock
    info = RunInfo(
        run_id=run_id,
        label=label or description,
        engine=engine_label,
        policy_name=policy.name,
        policy_hash=policy.digest,
        policy=job.policy,
        code_version=code_version(),
        selection=wanted.describe(),
        levels="requested" if quoted is None else ",".join(level.value for level in quoted),
        workers=count,
        started=started,
        duration_s=round(duration, 4),
        scenario_count=total,
    )
    store.record_run(info, rows)
    log.info(
        "replay stored",
        extra={"run_id": run_id, "scenarios": total, "seconds": round(duration, 3)},
    )
    return run_id
