"""Reservation and event throughput of the stock authority, embedded SQLite and PostgreSQL.

Measured directly against the backends (``promise.stock``): 2 load processes (one per core, as
two service workers would be) with 4 threads each call ``create_hold`` and ``apply_events`` on
one shared store, on the demo network (200 nodes, 2,000 SKUs). Then over HTTP
(``bench.reservations_http``): holds against one embedded server and against two hosts on
PostgreSQL, and how fast a swap on one host is served by the other.

- holds: one to three one-or-two-unit lines on 2,000 stocked rows, channel web, so some rows
  run out and refusals are part of the load; every attempt is one transaction.
  ``holds_per_s`` counts attempts, ``granted_per_s`` the holds placed.
- events: batches of 50 receipts, sales and adjustments on 2,000 other rows.
- oversold: read back after the holds phase, the units held beyond the web channel's ATP,
  summed over the hot rows. It must be 0.
- live_view: what a worker pays per request for the version check, and to refresh its
  ``solver.Inventory`` after a change or rebuild it for a new snapshot.

Usage::

    python -m bench.reservations --json out/reservations.json [--quick] [--dsn DSN] [--no-http]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import pathlib
import random
import sys
import tempfile
import threading
import time
import uuid
from multiprocessing.synchronize import Barrier
from typing import Any

import psycopg

from bench._common import machine, write_outputs
from models import Snapshot
from promise.stock import InventoryEvent, StockSettings, open_backend
from promise.stock.backend import HoldPlan, HoldRecord, to_us, utc_now
from promise.stock.holds import StockRules, shortfalls
from promise.stock.live import LiveInventory
from promise.stock.schemas import Shortfall
from promise.stock.snapshots import LiveSnapshot
from promise.stock.sql import StockBackend
from scenarios import demo_snapshot, generate_carts, generate_network
from solver import prepare, solve
from tests.pg_schema import temporary_schema

log = logging.getLogger("bench.reservations")

PROCESSES = 2
THREADS = 4
HOT_ROWS = 2000
EVENT_ROWS = 2000
EVENT_BATCH = 50
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
Row = tuple[str, str]


def _rows(snapshot: Snapshot) -> tuple[list[Row], list[Row]]:
    """Hot rows for holds (stocked, web ATP > 0) and other rows for events, fixed by seed."""
    rules = StockRules(snapshot)
    web = rules.policies["web"]
    stocked = []
    for position in snapshot.inventory:
        kind = rules.kinds[position.node_id]
        free = position.on_hand - position.reserved - position.safety_stock
        if free - web.buffer_units(kind, position.on_hand) > 0:
            stocked.append((position.node_id, position.sku))
    rng = random.Random(7)
    rng.shuffle(stocked)
    return stocked[:HOT_ROWS], stocked[HOT_ROWS : HOT_ROWS + EVENT_ROWS]


def _render(record: HoldRecord | None, short: Any, now: int) -> tuple[int, str]:
    """Store what the API would: the reservation, or the shortfalls."""
    if record is None:
        return 409, str([s.model_dump() for s in short])
    return 201, record.to_reservation(now).model_dump_json()


def _holds(
    backend: StockBackend, rules: StockRules, hot: list[Row], seed: int, stop: float
) -> tuple[int, int]:
    """Hold attempts until ``stop``: (granted, refused)."""
    rng = random.Random(seed)
    policy = rules.policies["web"]
    granted = refused = 0
    while time.perf_counter() < stop:
        picked = rng.sample(hot, rng.randint(1, 3))
        lines = tuple((node, sku, rng.randint(1, 2)) for node, sku in picked)
        plan = HoldPlan(
            lines=lines,
            channel="web",
            ttl_us=900 * 1_000_000,
            idempotency_key=f"bench-{uuid.uuid4().hex}",
            request_digest="bench",
        )

        def check(overlays: Any, now: int, lines: Any = lines) -> list[Shortfall]:
            return shortfalls(rules, policy, lines, overlays, now)

        answer = backend.create_hold(plan, check, _render, utc_now)
        granted += answer.status_code == 201
        refused += answer.status_code == 409
    return granted, refused


def _events(
    backend: StockBackend, rules: StockRules, rows: list[Row], seed: int, stop: float
) -> int:
    """Event batches until ``stop``: events applied."""
    rng = random.Random(seed)
    applied = 0
    kinds = ("receipt", "sale", "adjustment")
    while time.perf_counter() < stop:
        batch = []
        for _ in range(EVENT_BATCH):
            node, sku = rng.choice(rows)
            kind = rng.choice(kinds)
            quantity = rng.randint(1, 5) * (rng.choice((-1, 1)) if kind == "adjustment" else 1)
            batch.append(
                InventoryEvent.model_validate(
                    {
                        "event_id": f"ev-{uuid.uuid4().hex}",
                        "node_id": node,
                        "sku": sku,
                        "type": kind,
                        "quantity": quantity,
                        "seq": rng.randint(0, 2**40),
                        "occurred_at": "2026-11-30T15:00:00Z",
                    }
                )
            )
        results, _ = backend.apply_events(batch, rules.unknown, utc_now)
        applied += sum(r.outcome.value == "applied" for r in results)
    return applied


def _worker(
    settings_json: str,
    phase: str,
    *,
    seconds: float,
    seed: int,
    barrier: Barrier,
    queue: Any,
) -> None:
    """One load process: THREADS threads of one phase against the shared store."""
    settings = StockSettings.model_validate_json(settings_json)
    snapshot = demo_snapshot()
    rules = StockRules(snapshot)
    hot, others = _rows(snapshot)
    backend = open_backend(settings)
    totals: list[tuple[int, int]] = []
    lock = threading.Lock()
    barrier.wait()
    stop = time.perf_counter() + seconds

    def run(thread: int) -> None:
        if phase == "holds":
            result = _holds(backend, rules, hot, seed * 100 + thread, stop)
        else:
            result = (_events(backend, rules, others, seed * 100 + thread, stop), 0)
        with lock:
            totals.append(result)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    backend.close()
    queue.put((sum(a for a, _ in totals), sum(b for _, b in totals)))


def _phase(settings: StockSettings, phase: str, seconds: float) -> tuple[int, int, float]:
    """Run one phase in PROCESSES processes; (first count, second count, seconds)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES + 1)
    queue = context.Queue()
    processes = [
        context.Process(
            target=_worker,
            args=(settings.model_dump_json(), phase),
            kwargs={"seconds": seconds, "seed": seed, "barrier": barrier, "queue": queue},
        )
        for seed in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    results = [queue.get(timeout=seconds + 300) for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join(60)
    return sum(r[0] for r in results), sum(r[1] for r in results), elapsed


def oversold(backend: StockBackend, rules: StockRules, hot: list[Row]) -> tuple[int, int]:
    """Units held beyond web ATP over the hot rows, and units held, read back from the store."""
    now = to_us(utc_now())
    web = rules.policies["web"]
    rows = backend.changes(-1, hot).rows
    beyond = held = 0
    for key in hot:
        tiers = rules.tiers(key, rows[key], now)
        held += tiers.held
        beyond += max(0, tiers.held - rules.atp(web, tiers))
    return beyond, held


def _live_view(backend: StockBackend, snapshot: Snapshot, others: list[Row]) -> dict[str, float]:
    """Per-request version check, refresh after one event, rebuild for a new snapshot.

    The refresh and rebuild include the solver's re-index of the new stock version (the
    prepared network with live stock is what the view hands to every solve), so the first
    solve after a change is timed with its refresh too: what the request that sees the change
    pays in all.
    """
    carts = generate_carts(snapshot, count=20, seed=5)
    live = LiveInventory(backend, utc_now)
    rules = StockRules(snapshot)
    generation = backend.versions().snapshot
    loaded = LiveSnapshot.of(prepare(snapshot), generation, "", utc_now())
    started = time.perf_counter()
    live.current(loaded, generation)
    rebuild_ms = (time.perf_counter() - started) * 1000.0
    checks = 200
    started = time.perf_counter()
    for _ in range(checks):
        live.current(loaded, generation)
    check_us = (time.perf_counter() - started) / checks * 1e6
    refresh, first_solve = [], []
    for i in range(20):
        node, sku = others[i]
        event = InventoryEvent.model_validate(
            {
                "event_id": f"live-{uuid.uuid4().hex}",
                "node_id": node,
                "sku": sku,
                "type": "receipt",
                "quantity": 1,
                "seq": 2**41 + i,
                "occurred_at": "2026-11-30T15:00:00Z",
            }
        )
        backend.apply_events([event], rules.unknown, utc_now)
        started = time.perf_counter()
        network = live.current(loaded, generation)
        refresh.append((time.perf_counter() - started) * 1000.0)
        solve(carts[i], network)
        first_solve.append((time.perf_counter() - started) * 1000.0)
    refresh.sort()
    first_solve.sort()
    return {
        "version_check_us": round(check_us, 1),
        "refresh_after_change_ms": round(refresh[len(refresh) // 2], 3),
        "refresh_and_solve_ms": round(first_solve[len(first_solve) // 2], 3),
        "rebuild_ms": round(rebuild_ms, 1),
    }


def measure(settings: StockSettings, seconds: float) -> dict[str, Any]:
    """Holds/s, events/s, oversold units and live-view costs on one store."""
    snapshot = demo_snapshot()
    rules = StockRules(snapshot)
    hot, others = _rows(snapshot)
    backend = open_backend(settings)
    try:
        granted, refused, hold_s = _phase(settings, "holds", seconds)
        oversold_units, held = oversold(backend, rules, hot)
        applied, _, event_s = _phase(settings, "events", seconds)
        live = _live_view(backend, snapshot, others)
    finally:
        backend.close()
    attempts = granted + refused
    return {
        "holds_per_s": round(attempts / hold_s, 1),
        "granted_per_s": round(granted / hold_s, 1),
        "holds_granted": granted,
        "holds_refused": refused,
        "units_held": held,
        "oversold": oversold_units,
        "events_per_s": round(applied / event_s, 1),
        "events_applied": applied,
        "live_view": live,
        "seconds_per_phase": seconds,
    }


def _markdown(payload: dict[str, Any]) -> str:
    """The report as a Markdown table."""
    lines = [
        "# Reservations and events",
        "",
        f"{PROCESSES} processes × {THREADS} threads against the backend directly; demo network.",
        "",
        "| store | holds/s | granted/s | refused | oversold | events/s | version check µs "
        "| refresh ms | refresh + first solve ms | rebuild ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("embedded", "postgres"):
        row = payload[name]
        if "error" in row:
            lines.append(f"| {name} | {row['error']} ||||||||| ")
            continue
        live = row["live_view"]
        lines.append(
            f"| {name} | {row['holds_per_s']} | {row['granted_per_s']} | {row['holds_refused']} "
            f"| {row['oversold']} | {row['events_per_s']} | {live['version_check_us']} "
            f"| {live['refresh_after_change_ms']} | {live['refresh_and_solve_ms']} "
            f"| {live['rebuild_ms']} |"
        )
    http = payload.get("http")
    if http:
        lines += [
            "",
            "Over HTTP (a separate load process, keep-alive connections):",
            "",
            "| store | hosts | holds/s | granted/s | p50 ms | p99 ms | statuses | oversold |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in http.items():
            if "error" in row:
                lines.append(f"| {name} | {row['error']} |||||||")
                continue
            lines.append(
                f"| {name} | {row['hosts']} | {row['holds_per_s']} | {row['granted_per_s']} "
                f"| {row['latency']['p50_ms']} | {row['latency']['p99_ms']} "
                f"| {row['statuses']} | {row['oversold']} |"
            )
    spread = payload.get("propagation")
    if spread:
        lines += [
            "",
            "Swap on host A until host B serves it (two hosts, PostgreSQL):",
            "",
            "| network | nodes | rows | swaps | p50 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, row in spread.items():
            lines.append(
                f"| {name} | {row['nodes']} | {row['inventory_rows']} | {row['swaps']} "
                f"| {row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} |"
            )
    return "\n".join(lines) + "\n"


def _over_http(dsn: str, seconds: float, swaps: tuple[int, int]) -> dict[str, Any]:
    """Holds over HTTP on both stores and swap propagation between two hosts."""
    from bench.reservations_http import measure_http, propagation  # noqa: PLC0415
    from tests.promise.promise_helpers import tiny_snapshot  # noqa: PLC0415

    snapshot = demo_snapshot()
    hot, _ = _rows(snapshot)
    out: dict[str, Any] = {"http": {}, "propagation": {}}
    with tempfile.TemporaryDirectory() as tmp:
        log.info("HTTP, embedded ...")
        out["http"]["embedded"] = measure_http(pathlib.Path(tmp), snapshot, hot, seconds, None)
    with tempfile.TemporaryDirectory() as tmp, temporary_schema(dsn, prefix="bench") as schema:
        log.info("HTTP, two hosts on PostgreSQL ...")
        out["http"]["postgres"] = measure_http(pathlib.Path(tmp), snapshot, hot, seconds, schema)
    tiny = (tiny_snapshot("tiny-v1"), tiny_snapshot("tiny-v2"))
    other = generate_network(seed=8)
    for name, pair, count in (("tiny", tiny, swaps[0]), ("demo", (snapshot, other), swaps[1])):
        with tempfile.TemporaryDirectory() as tmp, temporary_schema(dsn, prefix="bench") as schema:
            log.info("propagation, %s network ...", name)
            out["propagation"][name] = propagation(pathlib.Path(tmp), schema, pair, count)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both stores and write the JSON (and Markdown) report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=pathlib.Path, required=True)
    parser.add_argument("--quick", action="store_true", help="2 s per phase instead of 5 s")
    parser.add_argument("--dsn", default=os.environ.get("PROMISE_TEST_DATABASE_URL", DEFAULT_DSN))
    parser.add_argument("--no-http", action="store_true", help="the direct measurements only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    seconds = 2.0 if args.quick else 5.0
    payload: dict[str, Any] = {"machine": machine(), "method": "backend directly, then HTTP"}
    with tempfile.TemporaryDirectory() as tmp:
        log.info("embedded SQLite ...")
        payload["embedded"] = measure(StockSettings(data_dir=pathlib.Path(tmp)), seconds)
    log.info("PostgreSQL ...")
    try:
        with temporary_schema(args.dsn, prefix="bench") as dsn:
            payload["postgres"] = measure(StockSettings(database_url=dsn), seconds)
    except psycopg.OperationalError as exc:
        payload["postgres"] = {"error": f"PostgreSQL unreachable: {exc}"}
    if not args.no_http and "error" not in payload["postgres"]:
        payload.update(_over_http(args.dsn, seconds, (20, 5) if args.quick else (50, 20)))
    write_outputs(args.json, payload, _markdown(payload))
    log.info(_markdown(payload))
    rows = [payload[name] for name in ("embedded", "postgres")]
    rows += list(payload.get("http", {}).values())
    failed = any(row.get("oversold", 0) for row in rows)
    return 1 if failed or "error" in payload["postgres"] else 0


if __name__ == "__main__":
    sys.exit(main())
