"""Replay stored scenarios under an engine and a policy, in parallel, and store the run.

Each worker process keeps one ``Worker`` for its whole life: it warms the solver, parses each
network of the run once, applies the policy and prepares the result for solving once; per
scenario it derives the network's stock from the scenario's own inventory slice, solves, runs
the independent checker and returns one result row per service level. What a worker reuses
lives in that object, never in module state. The parent streams scenarios out of the store to
the workers with a bounded number of chunks in flight, shows a progress bar, and stores the
run and all its rows in one transaction.

Workers come from a ``forkserver`` context where the platform has one: the server process is
started clean (no DuckDB threads inherited through ``fork``) and preloads this module, a warm
CP-SAT and the postal-code table (``scenarios._preload``), so every replay after the first
starts its workers in milliseconds, sharing that memory.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import logging
import math
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.process
import multiprocessing.queues
import os
import queue
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from tqdm import tqdm

from models import Engine, ServiceLevel
from scenarios._records import RunInfo, Selection
from scenarios._replay_worker import Item, Job, Networks, Rows, Worker, result_rows, serve
from scenarios._store import ScenarioStore
from scenarios.policy import DEFAULT_POLICY, Policy
from solver import SolveParams

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

# Engine label of a run built from the recorded decisions instead of a solve.
RECORDED = "recorded"
# Chunks in flight per worker: enough to keep every worker busy, few enough to bound memory.
_INFLIGHT_PER_WORKER = 4
# How often the parent checks that its workers are alive while it waits for rows.
_POLL_S = 1.0
# How long a worker may take to stop once told to.
_STOP_S = 10.0

ReplaySelection = Selection | Sequence[str] | str | tuple[dt.datetime, dt.datetime] | None


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


def _items(store: ScenarioStore, selection: Selection, chunk: int) -> Iterator[list[Item]]:
    """The selected scenarios in chunks, with only the columns a worker needs."""
    for rows in store.records(selection, batch=chunk):
        yield [(r[0], r[1], r[2], r[3], r[8], r[9], r[10], r[13]) for r in rows]


def _chunk_size(total: int, workers: int) -> int:
    """Scenarios per task: about eight tasks per worker, between 4 and 64 scenarios."""
    return max(4, min(64, math.ceil(total / (workers * 8))))


# multiprocessing's queues are generic to type checkers only: the aliases stay strings.
_Tasks: TypeAlias = "multiprocessing.queues.Queue[tuple[int, list[Item]] | None]"
_Results: TypeAlias = "multiprocessing.queues.Queue[tuple[int, Rows, str | None]]"


def _collect(
    results: _Results, workers: list[multiprocessing.process.BaseProcess]
) -> tuple[int, Rows]:
    """The next chunk a worker finished; raises when a worker failed or died."""
    while True:
        try:
            number, rows, error = results.get(timeout=_POLL_S)
        except queue.Empty:
            if not all(worker.is_alive() for worker in workers):
                raise RuntimeError("a replay worker exited before its work was done") from None
            continue
        if error is not None:
            raise RuntimeError(f"a replay worker failed: {error}")
        return number, rows


def _parallel(
    *,
    store: ScenarioStore,
    selection: Selection,
    job: Job,
    networks: Networks,
    workers: int,
    chunk: int,
    bar: tqdm[Any],
) -> Rows:
    """Replay in ``workers`` processes with a bounded number of chunks in flight.

    Rows come back in the order the chunks were sent, whichever worker finished first.
    """
    context = _context()
    tasks: _Tasks = context.Queue()
    results: _Results = context.Queue()
    processes = [
        context.Process(target=serve, args=(networks, job, tasks, results), daemon=True)  # type: ignore[attr-defined]
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    sizes: list[int] = []
    done: dict[int, Rows] = {}

    def take_one() -> None:
        """Wait for one finished chunk and count it."""
        number, rows = _collect(results, processes)
        done[number] = rows
        bar.update(sizes[number])

    try:
        for items in _items(store, selection, chunk):
            tasks.put((len(sizes), items))
            sizes.append(len(items))
            while len(sizes) - len(done) >= workers * _INFLIGHT_PER_WORKER:
                take_one()
        while len(done) < len(sizes):
            take_one()
    finally:
        for _ in processes:
            tasks.put(None)
        for process in processes:
            process.join(_STOP_S)
            if process.is_alive():
                process.terminate()
    return [row for number in range(len(sizes)) for row in done[number]]


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
    job = Job(
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
            worker = Worker(networks, job)
            rows: Rows = []
            for items in _items(store, wanted, chunk):
                rows.extend(worker.run_chunk(items))
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
