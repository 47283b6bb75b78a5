"""Replay throughput: scenarios per second replaying the golden suite, checker on every answer.

The golden suite (the committed scenarios on the demo network) is loaded into an in-memory
store, then replayed with the default engine, policy and solve budget on ``--workers`` worker
processes. Each replay is one ``scenarios.replay`` call, timed end to end: worker start-up,
solves, the independent checker and storing the run. The first replay of a process also waits
for the fork server (imports, postal codes), started while the suite loads as the CLI does; it
is reported apart as ``cold``. Wall times depend on what else the machine runs, so the CPU
time per scenario of an in-process replay is reported too. Usage::

    python -m bench.replay_throughput --json out/replay.json
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
from typing import Any

from bench._common import machine, write_outputs
from scenarios import ScenarioStore
from scenarios.golden import GOLDEN_TAG, load_golden
from scenarios.kpis import kpis
from scenarios.replay import prestart, replay


def _timed_replay(store: ScenarioStore, workers: int) -> tuple[float, dict[str, float]]:
    """One replay of the golden suite: wall seconds and the run's KPIs."""
    started = time.perf_counter()
    run_id = replay(store, GOLDEN_TAG, workers=workers, progress=False)
    seconds = time.perf_counter() - started
    return seconds, kpis(store, run_id)


def run(workers: int, repeat: int) -> dict[str, Any]:
    """Load the suite, replay it ``1 + repeat`` times, report the rates."""
    started = time.perf_counter()
    prestart()  # as `replay --suite golden` does: worker imports overlap loading the suite
    store = ScenarioStore(":memory:")
    count = len(load_golden(store))
    load_s = time.perf_counter() - started
    cold_s, cold_kpis = _timed_replay(store, workers)
    warm = [_timed_replay(store, workers) for _ in range(repeat)]
    # CPU time of one in-process replay (warm caches): what the machine's load cannot inflate.
    _timed_replay(store, 1)
    cpu = time.process_time()
    _timed_replay(store, 1)
    cpu_ms = (time.process_time() - cpu) * 1000.0 / count
    store.close()
    seconds = statistics.median(s for s, _ in warm)
    failures = int(cold_kpis["checker_failures"] + sum(k["checker_failures"] for _, k in warm))
    errors = int(cold_kpis["errors"] + sum(k["errors"] for _, k in warm))
    return {
        "machine": machine(),
        "workers": workers,
        "scenarios": count,
        "seconds": round(seconds, 3),
        "scenarios_per_s": round(count / seconds, 1),
        "checker_failures": failures,
        "errors": errors,
        "runs": [round(s, 3) for s, _ in warm],
        "cold": {
            "seconds": round(cold_s, 3),
            "scenarios_per_s": round(count / cold_s, 1),
        },
        "load_seconds": round(load_s, 3),
        "cpu_ms_per_scenario": round(cpu_ms, 3),
        "cpu_bound_scenarios_per_s": round(workers * 1000.0 / cpu_ms, 1),
        "solve_p50_ms": round(cold_kpis["solve_p50_ms"], 3),
        "solve_p99_ms": round(cold_kpis["solve_p99_ms"], 3),
        "target_scenarios_per_s": 200,
    }


def markdown(report: dict[str, Any]) -> str:
    """A short Markdown summary."""
    return (
        "# Replay throughput (golden suite)\n\n"
        f"{report['scenarios']} scenarios on {report['workers']} workers: "
        f"**{report['scenarios_per_s']} scenarios/s** (median of {len(report['runs'])} replays, "
        f"{report['seconds']} s each, end to end); first replay of the process "
        f"{report['cold']['scenarios_per_s']} scenarios/s ({report['cold']['seconds']} s, "
        f"includes waiting for the fork server). Checker failures: {report['checker_failures']}, "
        f"errors: {report['errors']}. Loading the suite into the store: "
        f"{report['load_seconds']} s. CPU per scenario (one in-process replay): "
        f"{report['cpu_ms_per_scenario']} ms, so at most {report['cpu_bound_scenarios_per_s']} "
        f"scenarios/s on {report['workers']} idle cores. Target: >= "
        f"{report['target_scenarios_per_s']} scenarios/s on 2 cores.\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write JSON and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="timed replays after the first")
    parser.add_argument("--json", type=pathlib.Path, required=True, help="report path")
    args = parser.parse_args(argv)
    report = run(args.workers, max(1, args.repeat))
    write_outputs(args.json, report, markdown(report))
    sys.stdout.write(markdown(report))
    return 0 if report["checker_failures"] == 0 and report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
