"""The worker side of a replay: what one process keeps and does for the chunks it is sent.

A ``Worker`` lives as long as its process (``serve``) or, for a one-process replay, as long as
the ``replay`` call: it owns everything reused between scenarios, so nothing is module state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import multiprocessing.queues
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt

from models import (
    Engine,
    InventoryPosition,
    PromiseRequest,
    PromiseResult,
    ServiceLevel,
    Snapshot,
    Status,
)
from scenarios._codecs import (
    ScenarioNetwork,
    base_snapshot,
    inventory_lines,
    parse_inventory,
    parse_line,
)
from scenarios._records import scenario_prices
from scenarios.policy import Policy
from solver import Inventory, PreparedNetwork, SolveParams, prepare, solve, warm_up
from solver.calendar import HolidayCalendar
from solver.checker import CheckReport, Reference, check

__all__ = ["Item", "Job", "Networks", "Rows", "Worker", "result_rows", "serve"]

IntArray = npt.NDArray[np.int64]
Rows = list[tuple[Any, ...]]
# (id, network_version, snapshot_version, as_of, request JSON, inventory JSON, decision JSON,
# prices JSON)
Item = tuple[str, str, str, dt.datetime, str, str, str | None, str | None]
Networks = dict[str, tuple[bytes, str, dt.datetime]]

_MAX_VIOLATION_TEXT = 2_000
# Inventory rows of parsed lines one worker keeps (lines recur across carts).
_MAX_LINE_ROWS = 100_000


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """What a worker needs to replay a chunk besides the scenarios themselves."""

    engine: Engine
    policy: str  # Policy JSON
    levels: tuple[ServiceLevel, ...] | None
    recorded: bool
    time_budget_ms: int


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


def _columns(rows: tuple[InventoryPosition, ...], prepared: PreparedNetwork) -> _Columns:
    """Arrays of some validated rows of ``prepared``'s network."""
    node_pos, sku_pos = prepared.index.node_pos, prepared.index.sku_pos
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


def _cat(arrays: list[IntArray]) -> IntArray:
    """Concatenate int64 arrays (an empty list gives an empty array)."""
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


class _LineMemo:
    """Parsed inventory lines by key, least recently used first out, bounded by their rows."""

    def __init__(self, max_rows: int) -> None:
        """Empty; holds at most ``max_rows`` rows (and always the newest entry)."""
        self._entries: OrderedDict[tuple[str, str], _Columns] = OrderedDict()
        self._rows = 0
        self._max_rows = max_rows

    def get(self, key: tuple[str, str]) -> _Columns | None:
        """The columns under ``key``, marked as recently used."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: tuple[str, str], value: _Columns) -> None:
        """Remember ``value``, evicting the least recently used beyond the bound."""
        self._entries[key] = value
        self._rows += len(value.rows)
        while self._rows > self._max_rows and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            self._rows -= len(dropped.rows)


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class _Applied:
    """A network of the run with the run's policy applied: sliced per scenario, solved on."""

    network: ScenarioNetwork
    prepared: PreparedNetwork


class Worker:
    """What one replay process reuses between the chunks of one run, for the process's life.

    Every network of the run is parsed once, has the run's policy applied and is prepared for
    solving once; inventory lines (popular SKUs recur in many carts) are parsed into arrays
    once per network, within a bound; solver and checker share one holiday calendar.
    """

    def __init__(self, networks: Networks, job: Job) -> None:
        """Warm the solver and prepare every network of the run."""
        warm_up()
        self._job = job
        self._policy = Policy.model_validate_json(job.policy)
        self._params = SolveParams(engine=job.engine, time_budget_ms=job.time_budget_ms)
        self.holidays = HolidayCalendar()
        self._networks: dict[str, _Applied] = {}
        for version, (body, label, as_of) in networks.items():
            applied = self._policy.apply(base_snapshot(version, body, label=label, as_of=as_of))
            self._networks[version] = _Applied(
                ScenarioNetwork.of(applied), prepare(applied, holidays=self.holidays)
            )
        self._lines = _LineMemo(_MAX_LINE_ROWS)

    def run_chunk(self, items: list[Item]) -> Rows:
        """Replay a chunk of scenarios; their result rows."""
        return [row for item in items for row in self._replay_one(item)]

    def _replay_one(self, item: Item) -> Rows:
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
        job = self._job
        try:
            request = PromiseRequest.model_validate_json(request_json)
            if job.levels is not None:
                request = request.model_copy(update={"service_levels": job.levels})
            prepared, snapshot = self._stock(
                self._networks[version],
                version,
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
                result = solve(request, prepared, params=self._params, prices=prices)
            reference = Reference.of(snapshot, holidays=self.holidays)
            report = check(result, request, reference, prices=prices)
        except Exception as exc:  # one broken scenario must not sink a whole run: record it
            return [_error_row(scenario_id, f"{type(exc).__name__}: {exc}")]
        rows = result_rows(scenario_id, result, report)
        return rows or [_error_row(scenario_id, "no service level to quote")]

    def _line(self, applied: _Applied, version: str, line: str) -> _Columns:
        """The arrays of one stored inventory line (parsed once while it stays in the memo)."""
        key = (version, line)
        found = self._lines.get(key)
        if found is None:
            rows = parse_line(line)
            applied.network.check_rows(rows)  # unknown nodes or SKUs have no array position
            found = _columns(rows, applied.prepared)
            self._lines.put(key, found)
        return found

    def _stock(
        self,
        applied: _Applied,
        version: str,
        text: str,
        *,
        snapshot_version: str,
        as_of: dt.datetime,
        skus: list[str],
    ) -> tuple[PreparedNetwork, Snapshot]:
        """The network with one scenario's stock for the solver, and its snapshot for the checker.

        The network's own arrays and calendar answers are shared by every scenario; only the
        slice's stock arrays are new.
        """
        lines = inventory_lines(text)
        if lines is None:
            rows = parse_inventory(text)
            applied.network.check_rows(rows)
            parts = [_columns(rows, applied.prepared)]
        else:
            parts = [self._line(applied, version, line) for line in lines]
        checked = applied.network.snapshot_for(
            tuple(row for part in parts for row in part.rows),
            version=snapshot_version,
            as_of=as_of,
            skus=skus,
        )
        offsets = np.cumsum([0] + [len(p.rows) for p in parts[:-1]], dtype=np.int64)
        node = _cat([p.node for p in parts])
        sku = _cat([p.sku for p in parts])
        inventory = Inventory(
            snapshot=applied.prepared.snapshot,
            version=0,
            node=node,
            sku=sku,
            lot_row=_cat([p.lot_row + offset for p, offset in zip(parts, offsets, strict=True)]),
            lot_eta=_cat([p.lot_eta for p in parts]),
            lot_qty=_cat([p.lot_qty for p in parts]),
            rows={
                key: row for row, key in enumerate(zip(node.tolist(), sku.tolist(), strict=True))
            },
            **{name: _cat([getattr(p, name) for p in parts]) for name in _STOCK_FIELDS},
        )
        return applied.prepared.with_inventory(inventory), checked


def serve(
    networks: Networks,
    job: Job,
    tasks: multiprocessing.queues.Queue[tuple[int, list[Item]] | None],
    results: multiprocessing.queues.Queue[tuple[int, Rows, str | None]],
) -> None:
    """One worker process: replay the chunks of ``tasks`` until told to stop (None)."""
    worker = Worker(networks, job)
    # The prepared networks live as long as the worker: keep them out of full GC passes. No
    # collection first: the fork server collected its heap before forking this worker.
    gc.freeze()
    while (task := tasks.get()) is not None:
        number, items = task
        try:
            results.put((number, worker.run_chunk(items), None))
        except Exception as exc:  # the parent raises it, as a pool would
            results.put((number, [], f"{type(exc).__name__}: {exc}"))


def _level_ok(report: CheckReport, level: ServiceLevel) -> tuple[bool, str | None]:
    """Checker verdict for one option (result-wide violations count against every option)."""
    broken = [str(v) for v in report.violations if v.service_level in (None, level)]
    if not broken:
        return True, None
    return False, "; ".join(broken)[:_MAX_VIOLATION_TEXT]


def result_rows(scenario_id: str, result: PromiseResult, report: CheckReport) -> Rows:
    """One result row per option, in ``RESULT_COLUMNS`` order."""
    rows: Rows = []
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
