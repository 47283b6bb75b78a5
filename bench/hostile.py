"""Hostile bodies against a real server: status, time to answer and worker peak memory.

Starts ``promise serve`` (2 workers, the demo network, the default limits, inline snapshots on)
and sends, one at a time, each on a fresh connection:

- oversized bodies: one byte over each route's byte limit, and 32 MiB and 256 MiB to
  ``PUT /v1/snapshot`` (256 MiB both with a Content-Length and chunked, without one), four
  8 MiB uploads at once (a worker takes one at a time); headers of 1 MiB and 64 MiB;
- amplifying bodies: millions of ``{}`` within the byte limit, 349,526 empty items in 1 MiB to
  ``POST /v1/promise`` and ``POST /v1/inventory/events``, bodies just over each route's memory
  budget, nesting a million deep, an object of 100,000 unknown keys, field-error floods;
- 20 inline snapshots over the node or the row limit;
- bodies the pre-scan admits, just under each budget: the most a body within the limits costs.

For each input: the status (a problem+json 4xx is expected), the time until the whole answer
was read, and each worker's peak resident memory (VmHWM, reset before each input by writing 5
to /proc/PID/clear_refs) against the ceiling docs/limits.md states: the worker's resident
memory at rest plus the route's memory budget. Meanwhile a client in another process sends
realistic carts of the demo network to ``POST /v1/promise`` (closed loop, 2 connections);
its p50/p99 during the attack is compared with a baseline measured first in the same run.
The machine's other load (CPU of processes outside the bench) is reported beside them.

Every HTTP call of the bench goes through :class:`Http`, which adds ``Authorization: Bearer
KEY``: the key given (``--api-key``, default the PROMISE_API_KEY environment variable), else the
key of every role the launcher makes for the server it starts. The hostile bodies come from an
authenticated caller: an anonymous one is refused (401) before its body is read. Only the
launcher's own calls (key creation, readiness polls) do not go through :class:`Http`.

Usage::

    python -m bench.hostile --json out/hostile.json [--quick] [--api-key KEY]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import json
import multiprocessing
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import Any

import httpx

from bench._common import machine, percentiles, write_outputs
from bench.hostile_http import Answer, Http
from bench.hostile_inputs import Attack, attacks
from promise.body_limits import ERRORS_MIB, worker_ceiling_mib
from promise.settings import Settings
from tests.launcher import ServerProcess, rss_kib

__all__ = ["run"]

MIB = 1024 * 1024
KIB = 1024
WORKERS = 2
# Closed-loop connections of the ordinary-promise client: one per worker.
PROMISE_CONNECTIONS = 2
# What every refused input must meet.
ANSWER_WITHIN_S = 1.0
SERVER_ENV = {"PROMISE_INLINE_SNAPSHOTS": "true", "PROMISE_LOG_LEVEL": "WARNING"}


# --- the ordinary-promise client (another process) ----------------------------------------


def _promise_client(
    base_url: str, api_key: str | None, payload_path: str, stop: Event, out: Any
) -> None:
    """Closed-loop promises on PROMISE_CONNECTIONS connections until ``stop``; send samples."""
    http = Http(base_url, api_key)
    payloads = pathlib.Path(payload_path).read_text().splitlines()
    samples: list[tuple[float, float, int]] = []
    lock = threading.Lock()

    def connection(index: int) -> None:
        with http.client() as client:
            for payload in itertools.islice(itertools.cycle(payloads), index, None, 2):
                if stop.is_set():
                    return
                started = time.monotonic()
                try:
                    status = client.post("/v1/promise", content=payload).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    samples.append((started, (time.monotonic() - started) * 1000.0, status))

    threads = [threading.Thread(target=connection, args=(i,)) for i in range(PROMISE_CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(samples)


# --- measuring ------------------------------------------------------------------------------


def _reset_peaks(pids: list[int]) -> bool:
    """Reset each worker's VmHWM to its current RSS (Linux, the process's owner or root)."""
    try:
        for pid in pids:
            pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _measure(http: Http, attack: Attack, pids: list[int]) -> dict[str, Any]:
    """Send one input (``concurrency`` copies at once); its answers, time and worker memory."""
    body = attack.body()
    # What was sent: the body (None when chunked, 256 MiB here) and any padding header.
    size = None if body.length is None else body.length + attack.head_padding
    reset = _reset_peaks(pids)
    before = {pid: rss_kib(pid) for pid in pids}

    def one(_: int) -> Answer:
        """One copy of the input."""
        return http.send(
            attack.method,
            attack.path,
            body,
            dict(attack.extra_headers),
            head_padding=attack.head_padding,
        )

    with concurrent.futures.ThreadPoolExecutor(attack.concurrency) as pool:
        answers = list(pool.map(one, range(attack.concurrency)))
    after = {pid: rss_kib(pid) for pid in pids}
    growth = {pid: (after[pid]["VmHWM"] - before[pid]["VmRSS"]) / KIB for pid in pids}
    try:
        detail = str(json.loads(answers[0].body).get("detail", ""))[:160]
    except ValueError:
        detail = answers[0].body[:160].decode("utf-8", "replace")
    return {
        "statuses": sorted({a.status for a in answers}),
        "problem_json": all(a.content_type.startswith("application/problem+json") for a in answers),
        "seconds": max(a.seconds for a in answers),
        "bytes": size,
        "worker_pids": sorted({a.worker_pid for a in answers if a.worker_pid is not None}),
        "peak_reset": reset,
        "peak_mib": {str(pid): round(after[pid]["VmHWM"] / KIB, 1) for pid in pids},
        "peak_growth_mib": round(max(growth.values()), 1),
        "detail": detail,
    }


def _summarise(attack: Attack, tries: list[dict[str, Any]], ceiling_mib: float) -> dict[str, Any]:
    """One row of the report: the input's tries folded (median time, worst memory)."""
    statuses = sorted({status for t in tries for status in t["statuses"]})
    seconds = [t["seconds"] for t in tries]
    growth = max(t["peak_growth_mib"] for t in tries)
    peak = max(max(t["peak_mib"].values()) for t in tries)
    four_xx = all(400 <= s < 500 for s in statuses) and all(t["problem_json"] for t in tries)
    row = {
        "input": attack.name,
        "route": f"{attack.method} {attack.path}",
        "expected": "refused" if attack.refused else "admitted",
        "tries": len(tries),
        "bytes": tries[0]["bytes"],
        "statuses": statuses,
        "seconds_p50": round(statistics.median(seconds), 4),
        "seconds_max": round(max(seconds), 4),
        "peak_rss_mib": peak,
        "peak_growth_mib": growth,
        "budget_mib": attack.budget_mib,
        # The body's own cost (its route's budget plus the error allowance), and the worker's.
        "within_budget": growth <= attack.budget_mib + ERRORS_MIB,
        "within_ceiling": peak <= ceiling_mib,
        "problem_4xx": four_xx,
        "detail": tries[0]["detail"],
    }
    if attack.refused:
        row["within_1s"] = max(seconds) < ANSWER_WITHIN_S
    return row


def _carts(path: pathlib.Path, count: int) -> dict[str, Any]:
    """Write realistic carts of the demo network as JSON lines; the first, as a dict."""
    import scenarios  # noqa: PLC0415

    carts = scenarios.generate_carts(scenarios.demo_snapshot(), count=count, seed=11)
    lines = [cart.model_dump_json(exclude_none=True) for cart in carts]
    path.write_text("\n".join(lines) + "\n")
    first: dict[str, Any] = json.loads(lines[0])
    return first


def _busy_ticks() -> int:
    """Busy CPU time of the whole machine so far, in clock ticks."""
    fields = [int(v) for v in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]) - fields[3] - fields[4]


def _process_ticks(pids: list[int]) -> int:
    """CPU time (user + system) of processes and their reaped children, in clock ticks."""
    total = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])
    return total


class _Phases:
    """Named time windows of the run, and the machine's CPU spent outside the bench in each."""

    def __init__(self, ours: list[int]) -> None:
        """Count ``ours`` (server, workers, bench, promise client) as the bench's own CPU."""
        self.ours = ours
        self.windows: dict[str, tuple[float, float]] = {}
        self.foreign_cores: dict[str, float] = {}

    def run(self, name: str, body: Callable[[], None]) -> None:
        """Run ``body`` as the phase ``name``."""
        busy, own = _busy_ticks(), _process_ticks(self.ours)
        started = time.monotonic()
        body()
        ended = time.monotonic()
        foreign = max(0, (_busy_ticks() - busy) - (_process_ticks(self.ours) - own))
        self.windows[name] = (started, ended)
        ticks = os.sysconf("SC_CLK_TCK")
        self.foreign_cores[name] = round(foreign / ticks / max(ended - started, 1e-9), 2)


def _latency(
    samples: list[tuple[float, float, int]], window: tuple[float, float]
) -> dict[str, Any]:
    """Percentiles of the ordinary promises that started inside ``window``."""
    inside = [(ms, status) for started, ms, status in samples if window[0] <= started < window[1]]
    ok = [ms for ms, status in inside if status == 200]
    stats = percentiles(ok)
    return {
        "requests": len(inside),
        "errors": len(inside) - len(ok),
        "p50_ms": round(stats["p50_ms"], 2),
        "p99_ms": round(stats["p99_ms"], 2),
        "max_ms": round(max(ok), 2) if ok else float("nan"),
    }


def run(*, quick: bool, api_key: str | None) -> dict[str, Any]:
    """Start the server, attack it while ordinary promises flow, and report."""
    settings = Settings.from_env(SERVER_ENV)
    repeats = 1 if quick else 3
    baseline_s = 5.0 if quick else 15.0
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root = pathlib.Path(tmp)
        cart = _carts(root / "carts.jsonl", 200 if quick else 1000)
        refused, admitted = attacks(settings, cart)
        server = ServerProcess(data_dir=root / "data", workers=WORKERS, env=SERVER_ENV)
        with server.start():
            # The launcher made the started server a key of every role; a given key wins.
            key = api_key or server.api_key
            http = Http(server.base_url, key)
            pids = sorted(server.worker_pids)
            rest = {pid: round(rss_kib(pid)["VmRSS"] / KIB, 1) for pid in pids}
            stop = context.Event()
            out = context.Queue()
            client = context.Process(
                target=_promise_client,
                args=(server.base_url, key, str(root / "carts.jsonl"), stop, out),
            )
            client.start()
            ours = [os.getpid(), *pids, *([server.pid] if server.pid else []), client.pid or 0]
            phases = _Phases(ours)
            tries: dict[str, list[dict[str, Any]]] = {}

            def attack(inputs: list[Attack]) -> Callable[[], None]:
                def go() -> None:
                    for _ in range(repeats):
                        for item in inputs:
                            tries.setdefault(item.name, []).append(_measure(http, item, pids))

                return go

            phases.run("warm-up", lambda: time.sleep(2.0))
            phases.run("baseline", lambda: time.sleep(baseline_s))
            phases.run("attack", attack(refused))
            phases.run("admitted", attack(admitted))
            stop.set()
            samples: list[tuple[float, float, int]] = out.get(timeout=60)
            client.join(30)
            end_memory = {str(pid): rss_kib(pid) for pid in pids}
            alive = all(pathlib.Path(f"/proc/{pid}").exists() for pid in pids)
    ceiling = round(worker_ceiling_mib(settings, max(rest.values())), 1)
    rows = [_summarise(a, tries[a.name], ceiling) for a in (*refused, *admitted)]
    promises = {
        name: {**_latency(samples, window), "background_cpu_cores": phases.foreign_cores[name]}
        for name, window in phases.windows.items()
        if name != "warm-up"
    }
    refused_rows = [r for r in rows if r["expected"] == "refused"]
    return {
        "benchmark": "hostile",
        "quick": quick,
        "machine": machine(),
        "server": {
            "workers": WORKERS,
            "network": "demo (200 nodes, 2,000 SKUs, 56,530 rows)",
            "max_body_bytes": settings.max_body_bytes,
            "max_snapshot_bytes": settings.max_snapshot_bytes,
            "max_body_memory_mib": settings.max_body_memory_mib,
            "max_snapshot_memory_mib": settings.max_snapshot_memory_mib,
            "inline_snapshots": settings.inline_snapshots,
            "worker_rss_at_rest_mib": {str(pid): mib for pid, mib in rest.items()},
            "errors_mib": ERRORS_MIB,
            "ceiling_mib": ceiling,
            "worker_memory_at_end_kib": end_memory,
            "workers_alive_at_end": alive,
        },
        "inputs": rows,
        "promises": promises,
        "checks": {
            "every refused input a problem+json 4xx": all(r["problem_4xx"] for r in refused_rows),
            "every refused input answered within 1 s": all(r["within_1s"] for r in refused_rows),
            "every input within its route's budget": all(r["within_budget"] for r in rows),
            "every input within the worker ceiling": all(r["within_ceiling"] for r in rows),
            "every admitted input a problem+json 4xx": all(
                r["problem_4xx"] for r in rows if r["expected"] == "admitted"
            ),
            "workers alive": alive,
        },
    }


def _markdown(report: dict[str, Any]) -> str:
    """The inputs, the ordinary promises and the checks as Markdown tables."""
    server = report["server"]
    rest = ", ".join(f"{v} MiB" for v in server["worker_rss_at_rest_mib"].values())
    lines = [
        f"# Hostile bodies ({'quick' if report['quick'] else 'full'} run)\n",
        f"2 workers on the demo network; worker RSS at rest {rest}; ceiling (rest + the snapshot "
        f"route's budget of {server['max_snapshot_memory_mib']} MiB + {server['errors_mib']} MiB "
        f"of field errors, docs/limits.md): {server['ceiling_mib']} MiB; other routes' budget "
        f"{server['max_body_memory_mib']} MiB.\n",
        "| input | route | MiB sent | status | s (p50) | s (max) | peak RSS MiB | growth MiB "
        "| budget MiB |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["inputs"]:
        if row["input"].startswith("inline snapshot") and not row["input"].endswith(("#1", "#2")):
            continue
        sent = row["bytes"] / MIB if row["bytes"] is not None else 256.0
        lines.append(
            f"| {row['input']} | {row['route']} | {sent:,.2f} | "
            f"{'/'.join(map(str, row['statuses']))} | {row['seconds_p50']} | "
            f"{row['seconds_max']} | {row['peak_rss_mib']} | {row['peak_growth_mib']} | "
            f"{row['budget_mib']} |"
        )
    inline = [r for r in report["inputs"] if r["input"].startswith("inline snapshot")]
    if inline:
        worst = max(r["seconds_max"] for r in inline)
        statuses = sorted({s for r in inline for s in r["statuses"]})
        lines.append(
            f"\n{len(inline)} inline snapshots over a limit (one row above per kind): statuses "
            f"{statuses}, slowest answer {worst} s.\n"
        )
    lines += [
        "| ordinary promises (2 connections) | requests | errors | p50 ms | p99 ms | max ms "
        "| other load (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, p in report["promises"].items():
        lines.append(
            f"| {name} | {p['requests']} | {p['errors']} | {p['p50_ms']} | {p['p99_ms']} | "
            f"{p['max_ms']} | {p['background_cpu_cores']} |"
        )
    lines += ["", "| check | met |", "|---|---|"]
    lines += [f"| {name} | {met} |" for name, met in report["checks"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the attack and write the JSON (and Markdown) report; non-zero if a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=pathlib.Path, required=True, help="write the report here")
    parser.add_argument("--quick", action="store_true", help="one try per input, 5 s baseline")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("PROMISE_API_KEY"),
        help="sent as 'Authorization: Bearer KEY' (default: $PROMISE_API_KEY, else a key the "
        "launcher makes for the server it starts)",
    )
    args = parser.parse_args(argv)
    report = run(quick=args.quick, api_key=args.api_key or None)
    markdown = _markdown(report)
    write_outputs(args.json, report, markdown)
    sys.stdout.write(markdown)
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
