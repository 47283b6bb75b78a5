"""Start-up races: two servers starting at once on one data dir; eight processes opening a store.

- servers: each trial starts two ``promise serve`` processes (2 workers each) on one fresh data
  dir from two threads released together, on a small synthetic network (50 nodes, 10 SKUs). A
  trial succeeds when both report every worker ready and both answer ``/metrics``; the time
  is from the release until that server was ready.
- store: each trial has eight processes (spawned once, reused across trials) open a fresh
  ``SqliteStockBackend`` on the same path at the same instant and apply one receipt each. A
  trial succeeds when no process failed and all eight events are recorded; the time is one
  process's open-and-write.

Usage::

    python -m bench.startup --json out/startup.json [--trials 20] [--store-trials 100]

Module-level imports stay light: the store processes are spawned and import this module.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import multiprocessing
import pathlib
import sys
import tempfile
import threading
import time
import traceback
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from tests.launcher import ServerProcess

__all__ = ["ServerStart", "StoreOpeners", "StoreTrial", "start_together", "two_servers_trial"]

log = logging.getLogger("bench.startup")

SERVER_WORKERS = 2
SMALL_NODES = 50
SMALL_SKUS = 10
STORE_PROCESSES = 8
# The store processes are told to start this far ahead, so all of them are waiting by then.
STORE_LEAD_S = 0.2
STORE_TIMEOUT_S = 120.0
SERVER_TIMEOUT_S = 180.0


# --- two servers at once --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ServerStart:
    """How one server's start went: None as error means every worker reported ready."""

    seconds: float
    error: str | None


def start_together(
    servers: list[ServerProcess], timeout_s: float = SERVER_TIMEOUT_S
) -> list[ServerStart]:
    """Start ``servers`` from one thread each, released at the same instant; how each went."""
    barrier = threading.Barrier(len(servers))
    results: list[ServerStart | None] = [None] * len(servers)

    def run(i: int) -> None:
        barrier.wait()
        started = time.monotonic()
        try:
            servers[i].start(timeout_s)
        except Exception as exc:  # reported in the result, not raised in this thread
            results[i] = ServerStart(time.monotonic() - started, f"{type(exc).__name__}: {exc}")
            return
        results[i] = ServerStart(time.monotonic() - started, None)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(servers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r if r is not None else ServerStart(0.0, "start thread died") for r in results]


def metrics_status(server: ServerProcess) -> int:
    """HTTP status of the server's ``/metrics`` on a fresh connection (0 if unreachable)."""
    try:
        return server.fetch("/metrics")[0]
    except OSError:
        return 0


def two_servers_trial(root: pathlib.Path, snapshot: pathlib.Path) -> list[ServerStart]:
    """Two servers started together on ``root/data``; stopped again before returning."""
    data_dir = root / "data"
    servers = [
        ServerProcess(
            data_dir=data_dir,
            workers=SERVER_WORKERS,
            snapshot=snapshot,
            env={"PROMISE_LOG_LEVEL": "WARNING"},
            log_path=root / f"server-{i}.log",
        )
        for i in range(2)
    ]
    try:
        starts = start_together(servers)
        return [
            dataclasses.replace(start, error="/metrics did not answer 200")
            if start.error is None and metrics_status(server) != 200
            else start
            for server, start in zip(servers, starts, strict=True)
        ]
    finally:
        for server in servers:
            server.stop()


# --- one store opened by eight processes ----------------------------------------------------


def _opener(index: int, conn: Connection) -> None:
    """A store process: open, write one receipt and close, once per trial (runs in the child)."""
    from promise.stock.backend import utc_now  # noqa: PLC0415 - in the child, once
    from promise.stock.schemas import EventType, InventoryEvent  # noqa: PLC0415
    from promise.stock.sqlite import SqliteStockBackend  # noqa: PLC0415

    conn.send("ready")
    while (message := conn.recv()) is not None:
        path, start_at = message
        time.sleep(max(0.0, start_at - time.time()))
        started = time.perf_counter()
        error: str | None = None
        try:
            backend = SqliteStockBackend(pathlib.Path(path))
            try:
                event = InventoryEvent(
                    event_id=f"open-{index}",
                    node_id="DC1",
                    sku="A",
                    type=EventType.RECEIPT,
                    quantity=1,
                    occurred_at=dt.datetime.now(dt.UTC),
                    seq=index + 1,
                )
                backend.apply_events([event], lambda _node, _sku: None, utc_now)
            finally:
                backend.close()
        except Exception:  # sent to the parent, which counts the failed trial
            error = traceback.format_exc()
        conn.send((error, (time.perf_counter() - started) * 1000.0))


@dataclasses.dataclass(frozen=True, slots=True)
class StoreTrial:
    """One trial: each process's error (None: it succeeded) and open-and-write time in ms."""

    errors: list[str | None]
    open_ms: list[float]
    recorded: int

    @property
    def ok(self) -> bool:
        """Every process opened and wrote, and every write is in the store."""
        return all(e is None for e in self.errors) and self.recorded == len(self.errors)


class StoreOpeners:
    """Spawned processes that open one fresh SQLite store together, trial after trial."""

    def __init__(self, processes: int = STORE_PROCESSES) -> None:
        """Spawn the processes and wait until each has imported the store."""
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._processes: list[BaseProcess] = []
        for i in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_opener, args=(i, child), name=f"opener-{i}")
            process.start()
            child.close()
            self._pipes.append(parent)
            self._processes.append(process)
        for pipe in self._pipes:
            if not pipe.poll(STORE_TIMEOUT_S) or pipe.recv() != "ready":
                raise RuntimeError("a store process did not start")

    def trial(self, path: pathlib.Path) -> StoreTrial:
        """Every process opens ``path`` (a fresh file) at one instant and writes one event."""
        from promise.stock.sqlite import SqliteStockBackend  # noqa: PLC0415 - parent only

        start_at = time.time() + STORE_LEAD_S
        for pipe in self._pipes:
            pipe.send((str(path), start_at))
        errors: list[str | None] = []
        times: list[float] = []
        for pipe in self._pipes:
            if not pipe.poll(STORE_TIMEOUT_S):
                raise TimeoutError("a store process did not answer")
            error, elapsed_ms = pipe.recv()
            errors.append(error)
            times.append(elapsed_ms)
        check = SqliteStockBackend(path)
        try:
            recorded = sum(
                check.recorded_event(f"open-{i}") is not None for i in range(len(self._pipes))
            )
        finally:
            check.close()
        return StoreTrial(errors, times, recorded)

    def close(self) -> None:
        """Stop the processes."""
        for pipe in self._pipes:
            pipe.send(None)
            pipe.close()
        for process in self._processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()

    def __enter__(self) -> StoreOpeners:
        """The openers, started."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop the processes."""
        self.close()


# --- the report -----------------------------------------------------------------------------


def _servers(trials: int) -> dict[str, Any]:
    """Run the two-server trials."""
    import scenarios  # noqa: PLC0415 - parent only

    seconds: list[float] = []
    failures: list[str] = []
    ok = 0
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = pathlib.Path(tmp) / "snapshot.json"
        # The smallest synthetic network: start-up time is the solver's and the processes'.
        network = scenarios.generate_network(nodes=SMALL_NODES, skus=SMALL_SKUS)
        snapshot.write_text(network.model_dump_json())
        for trial in range(trials):
            root = pathlib.Path(tmp) / f"trial-{trial}"
            starts = two_servers_trial(root, snapshot)
            seconds += [s.seconds for s in starts]
            errors = [s.error for s in starts if s.error is not None]
            ok += not errors
            failures += errors
            log.info("servers trial %d: %s", trial, "ok" if not errors else errors[0][:200])
    return {
        "trials": trials,
        "succeeded": ok,
        "ready_s": _spread(seconds),
        "failures": failures[:5],
    }


def _store(trials: int) -> dict[str, Any]:
    """Run the store-opening trials."""
    times: list[float] = []
    failures: list[str] = []
    ok = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, StoreOpeners() as openers:
        spawn_s = time.monotonic() - started
        for trial in range(trials):
            result = openers.trial(pathlib.Path(tmp) / f"trial-{trial}" / "stock.sqlite3")
            times += result.open_ms
            ok += result.ok
            failures += [e.strip().splitlines()[-1] for e in result.errors if e is not None]
            if not result.ok:
                log.info("store trial %d failed: %s", trial, failures[-1:] or result.recorded)
    return {
        "trials": trials,
        "processes": STORE_PROCESSES,
        "succeeded": ok,
        "open_and_write_ms": _spread(times),
        "spawn_s": round(spawn_s, 2),
        "failures": failures[:5],
    }


def _spread(samples: list[float]) -> dict[str, float]:
    """Median, p99, mean and max of the samples."""
    from bench._common import percentiles  # noqa: PLC0415 - numpy, parent only

    # The unit is in the caller's key (ready_s, open_and_write_ms).
    out = {key.removesuffix("_ms"): value for key, value in percentiles(samples).items()}
    out["max"] = round(max(samples), 3) if samples else float("nan")
    return out


def _markdown(payload: dict[str, Any]) -> str:
    """The report as Markdown."""
    servers, store = payload["servers"], payload["store"]
    ready = servers["ready_s"]
    opened = store["open_and_write_ms"]
    lines = [
        "# Start-up races",
        "",
        "| race | trials | succeeded | time p50 | time p99 | time max |",
        "|---|---|---|---|---|---|",
        f"| two servers (2 workers each), one data dir, started at once | {servers['trials']} "
        f"| {servers['succeeded']} | {ready['p50']:.2f} s | {ready['p99']:.2f} s "
        f"| {ready['max']:.2f} s |",
        f"| {store['processes']} processes open one fresh SQLite store and write "
        f"| {store['trials']} | {store['succeeded']} | {opened['p50']:.1f} ms "
        f"| {opened['p99']:.1f} ms | {opened['max']:.1f} ms |",
        "",
        "Server time: from the release until every worker of that server was ready. Store time: "
        "one process's open (WAL switch and schema under the writer lock) and one write.",
    ]
    for name in ("servers", "store"):
        for failure in payload[name]["failures"]:
            lines.append(f"- {name} failure: `{failure[:300]}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run both races and write the JSON (and Markdown) report; non-zero if any trial failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=pathlib.Path, default=pathlib.Path("out/startup.json"))
    parser.add_argument("--trials", type=int, default=20, help="two-server trials (20)")
    parser.add_argument("--store-trials", type=int, default=100, help="store trials (100)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from bench._common import machine, write_outputs  # noqa: PLC0415 - see the module docstring

    payload: dict[str, Any] = {"machine": machine()}
    log.info("two servers at once, %d trials ...", args.trials)
    payload["servers"] = _servers(args.trials)
    log.info("%d processes opening one store, %d trials ...", STORE_PROCESSES, args.store_trials)
    payload["store"] = _store(args.store_trials)
    markdown = _markdown(payload)
    write_outputs(args.json, payload, markdown)
    sys.stdout.write(markdown)
    failed = payload["servers"]["succeeded"] < args.trials
    return 1 if failed or payload["store"]["succeeded"] < args.store_trials else 0


if __name__ == "__main__":
    sys.exit(main())
