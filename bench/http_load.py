"""HTTP load: a real server process under real load generators in other processes.

Starts ``promise serve`` (two workers, the demo network), then drives it with two closed-loop
generators (each client sends its next request as soon as the previous answer arrived), one
after the other against the same server: wrk, a C program whose Lua script rotates 1,000
realistic carts and prints its latency percentiles as JSON from its ``done()`` hook, and locust
headless (its Python API, in a child process), whose Python competes with the server for the
two cores. Each runs at several concurrencies against ``POST /v1/promise`` with the realistic
cart mix, and against ``POST /v1/promise/validate`` with the same payloads: the framework floor
(parse and validate, no solve). The carts carry no budget of their own, so each promise's is
the server's default (``BUDGET_MS``) and the 99th percentile of response time − budget is the
p99 less it. Worker memory is sampled through the run. wrk comes from Debian's ``wrk`` package:
the benchmark installs it when missing and running as root, else says how and runs locust only.
Usage::

    python -m bench.http_load --json out/http_load.json [--quick]

Module-level imports stay in the standard library: the generator child imports locust, which
monkey-patches the standard library with gevent and must do so before anything else loads it.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

CONCURRENCY = (1, 4, 16)
TARGETS = {"promise": "/v1/promise", "floor": "/v1/promise/validate"}
GENERATORS = ("wrk", "locust")
WORKERS = 2
CARTS = 1_000
# The server's default time budget, set explicitly: the carts carry none of their own.
BUDGET_MS = 50
RSS_LIMIT_MIB = 600
# Targets of the issue (checkout latency), on two cores, measured with wrk.
TARGET_P99_MS_AT_4 = 35.0
TARGET_RPS_AT_16 = 400.0
TARGET_OVER_BUDGET_P99_MS_AT_4 = 15.0
MEMORY_SAMPLE_S = 1.0
# wrk's Lua script: each thread rotates the carts of a file (one JSON body per line) from its
# own offset; done() prints what the report needs as one JSON line (latencies in µs → ms).
WRK_SCRIPT = """
local bodies = {}
local counter = 0
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = os.getenv("WRK_AUTHORIZATION")
  counter = (id or 0) * 7919
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[counter % #bodies + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_s": %.6f, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f}\\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3))
end
"""
WRK_MARKER = "WRK_JSON "


# --- the load generator (child process) -----------------------------------------------------


class _Recorder:
    """Latencies, failures and worker pids of one run, filled by locust's request event."""

    def __init__(self, payloads: list[str]) -> None:
        """Start empty; ``payloads`` are sent in turn."""
        self.payloads = payloads
        self.sent = 0
        self.samples: list[tuple[float, float, bool]] = []
        self.by_worker: dict[str, int] = {}
        self.error_samples: list[str] = []

    def next_payload(self) -> str:
        """The next cart of the mix."""
        self.sent += 1
        return self.payloads[self.sent % len(self.payloads)]

    def on_request(
        self,
        response_time: float,
        exception: BaseException | None,
        start_time: float = 0.0,
        **_: object,
    ) -> None:
        """Locust's request event: keep start time, latency and success."""
        self.samples.append((start_time, response_time, exception is None))
        if exception is not None and len(self.error_samples) < 5:
            self.error_samples.append(str(exception)[:300])


def _generate(plan_path: pathlib.Path, out_path: pathlib.Path) -> None:
    """Run every planned load with locust and write raw latencies (the child process)."""
    # Importing locust monkey-patches the standard library with gevent (module docstring), so
    # time.sleep below yields to the simulated clients.
    from locust import FastHttpUser, constant, events, task  # noqa: PLC0415
    from locust.env import Environment  # noqa: PLC0415

    plan = json.loads(plan_path.read_text())
    payloads = pathlib.Path(plan["payloads"]).read_text().splitlines()
    results: list[dict[str, Any]] = []
    for spec in plan["runs"]:
        recorder = _Recorder(payloads)

        class Client(FastHttpUser):
            """One closed-loop client: send, wait for the answer, send again."""

            host = plan["base_url"]
            wait_time = constant(0)
            run_spec: dict[str, Any] = spec
            run_recorder = recorder

            @task
            def post(self) -> None:
                """Send the next cart of the mix."""
                with self.client.post(
                    self.run_spec["path"],
                    data=self.run_recorder.next_payload(),
                    headers={
                        "content-type": "application/json",
                        "authorization": plan["authorization"],
                    },
                    name=self.run_spec["target"],
                    catch_response=True,
                ) as response:
                    pid = (response.headers or {}).get("x-worker-pid", "?")
                    by_worker = self.run_recorder.by_worker
                    by_worker[pid] = by_worker.get(pid, 0) + 1
                    if response.status_code != 200:
                        response.failure(f"status {response.status_code}: {response.text[:200]}")

        environment = Environment(user_classes=[Client], events=events)
        # locust's event hooks are unannotated.
        environment.events.request.add_listener(recorder.on_request)  # type: ignore[no-untyped-call]
        runner = environment.create_local_runner()
        started = time.time()
        # All clients start within the first second, inside the unmeasured warm-up.
        runner.start(spec["concurrency"], spawn_rate=spec["concurrency"])
        time.sleep(spec["warmup_s"] + spec["seconds"])
        runner.quit()
        environment.events.request.remove_listener(recorder.on_request)  # type: ignore[no-untyped-call]
        measured_from = started + spec["warmup_s"]
        kept = [(t, ms, ok) for t, ms, ok in recorder.samples if t >= measured_from]
        results.append(
            {
                **spec,
                "latencies_ms": [ms for _, ms, ok in kept if ok],
                "errors": sum(not ok for _, _, ok in kept),
                "error_samples": recorder.error_samples,
                "by_worker": recorder.by_worker,
            }
        )
    out_path.write_text(json.dumps(results))


# --- wrk ------------------------------------------------------------------------------------


def _wrk_binary() -> str | None:
    """Path of wrk, installed from Debian's package when missing and running as root."""
    found = shutil.which("wrk")
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        sys.stderr.write("wrk is missing: install it (Debian: apt-get install wrk); locust only\n")
        return None
    for command in ([apt, "install", "-y", "wrk"], [apt, "update"], [apt, "install", "-y", "wrk"]):
        done = subprocess.run(command, capture_output=True, check=False)  # noqa: S603
        if command[1] == "install" and done.returncode == 0:
            break
    return shutil.which("wrk")


def _wrk(
    binary: str,
    spec: dict[str, Any],
    *,
    base_url: str,
    script: pathlib.Path,
    payloads: pathlib.Path,
    authorization: str,
    sampler: _Sampler,
) -> dict[str, Any]:
    """One wrk run (after an unmeasured one of ``warmup_s``): its figures from ``done()``."""
    figures: dict[str, Any] = {}
    for seconds in (spec.get("wrk_warmup_s", 0.0), spec["seconds"]):
        if seconds <= 0:
            continue
        # One thread: it keeps 16 connections busy and leaves the cores to the server. wrk
        # takes whole seconds.
        duration = f"-d{max(1, round(seconds))}s"
        command = [binary, "-t1", f"-c{spec['concurrency']}", duration, "--timeout", "10s"]
        command += ["-s", str(script), base_url + spec["path"], "--", str(payloads)]
        process = subprocess.Popen(  # noqa: S603 - wrk, found on PATH or just installed
            command,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "WRK_AUTHORIZATION": authorization},
        )
        sampler.watch(process.pid)
        out, _ = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"wrk exited with {process.returncode}: {out[-500:]}")
        line = next(x for x in out.splitlines() if x.startswith(WRK_MARKER))
        figures = json.loads(line.removeprefix(WRK_MARKER))
    errors = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    requests = int(figures["requests"])
    return {
        "generator": "wrk",
        "target": spec["target"],
        "path": spec["path"],
        "concurrency": spec["concurrency"],
        "seconds": round(float(figures["duration_s"]), 3),
        "requests": requests,
        "rps": round(requests / float(figures["duration_s"]), 1),
        **{key: round(float(figures[key]), 2) for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")},
        "errors": errors,
        "errors_by_kind": {
            k: figures[k] for k in ("connect", "read", "write", "status", "timeout") if figures[k]
        },
    }


# --- the driver (parent process) ------------------------------------------------------------


def _payloads(path: pathlib.Path, count: int) -> dict[str, Any]:
    """Write the realistic cart mix of the demo network as JSON lines; describe the network."""
    import scenarios  # noqa: PLC0415 - heavy imports only in the driver

    snapshot = scenarios.demo_snapshot()
    carts = scenarios.generate_carts(snapshot, count=count, seed=11)
    lines = [cart.model_dump_json(exclude_none=True) for cart in carts]
    path.write_text("\n".join(lines) + "\n")
    sizes = [len(cart.cart.lines) for cart in carts]
    return {
        "snapshot_version": snapshot.version,
        "nodes": len(snapshot.nodes),
        "skus": len(snapshot.items),
        "carts": count,
        "mean_lines": round(sum(sizes) / len(sizes), 2),
    }


def _summarise(run: dict[str, Any]) -> dict[str, Any]:
    """Throughput and latency percentiles of one run."""
    import numpy as np  # noqa: PLC0415

    latencies = np.asarray(run["latencies_ms"], dtype=np.float64)
    ok = int(latencies.size)
    total = ok + int(run["errors"])

    def pct(q: float) -> float:
        return round(float(np.percentile(latencies, q)), 2) if ok else float("nan")

    return {
        "generator": "locust",
        "target": run["target"],
        "path": run["path"],
        "concurrency": run["concurrency"],
        "seconds": run["seconds"],
        "requests": total,
        "rps": round(total / run["seconds"], 1),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(float(latencies.max()), 2) if ok else float("nan"),
        "errors": int(run["errors"]),
        "error_samples": run["error_samples"],
        "requests_by_worker_pid": run["by_worker"],
    }


def _metric_sums(text: str, name: str, label: str) -> dict[str, float]:
    """Sum of a counter's samples by one label, from Prometheus text."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels, _, value = line.rpartition(" ")
        marker = f'{label}="'
        start = labels.find(marker)
        if start < 0:
            continue
        key = labels[start + len(marker) : labels.index('"', start + len(marker))]
        out[key] = out.get(key, 0.0) + float(value)
    return out


def _markdown(report: dict[str, Any]) -> str:
    """The runs and memory as Markdown tables."""
    rows = [
        "| generator | target | concurrency | requests | rps | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {r['generator']} | {r['target']} | {r['concurrency']} | {r['requests']} | "
        f"{r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} |"
        for r in report["runs"]
    ]
    if report["wrk_missing"]:
        rows.append(f"\nwrk: {report['wrk_missing']}")
    rows += [
        "",
        f"p99 of response time − budget ({report['budget_ms']} ms), promises at concurrency 4:",
    ]
    rows += [f"- {name}: {value} ms" for name, value in report["over_budget_p99_ms_at_4"].items()]
    memory = report["memory"]
    rows += [
        "",
        "| worker pid | RSS start MiB | RSS end MiB | RSS max MiB |",
        "|---|---:|---:|---:|",
    ]
    rows += [
        f"| {pid} | {m['start_mib']} | {m['end_mib']} | {m['max_mib']} |"
        for pid, m in memory["workers"].items()
    ]
    rows.append(f"\nbackground CPU of other processes (cores): {report['background_cpu_cores']}")
    if report["soak"]:
        soak = report["soak"]
        rows.append(
            f"soak: {soak['seconds']} s of promises at concurrency {soak['concurrency']}: "
            f"{soak['requests']} requests, {soak['rps']} rps, p99 {soak['p99_ms']} ms, "
            f"{soak['errors']} errors"
        )
    checks = report["targets"]
    rows += ["", "| target | value | met |", "|---|---:|---|"]
    rows += [f"| {name} | {c['value']} | {c['met']} |" for name, c in checks.items()]
    return "\n".join(rows) + "\n"


def _busy_jiffies() -> tuple[int, int]:
    """Busy and total CPU time of the whole machine so far, in clock ticks."""
    fields = [int(v) for v in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - idle, total


def _process_jiffies(pid: int) -> int:
    """CPU time (user + system) a process used so far, in clock ticks (0 once it is gone)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class _Sampler:
    """Every second: worker RSS, and CPU used on this machine by processes not in the bench."""

    def __init__(self, workers: list[int], ours: list[int]) -> None:
        """Watch ``workers``' memory; ``ours`` are every process of the benchmark."""
        import threading  # noqa: PLC0415 - not at module level, see the module docstring

        self.workers = workers
        self.ours = list(ours)
        self.rss_kib: dict[int, list[int]] = {pid: [] for pid in workers}
        self.background_cores: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._ticks = os.sysconf("SC_CLK_TCK")

    def watch(self, pid: int) -> None:
        """Count ``pid``'s CPU as the benchmark's own (the load generator)."""
        self.ours.append(pid)

    def _loop(self) -> None:
        """Sample until stopped."""
        from tests.launcher import rss_kib  # noqa: PLC0415

        busy, _ = _busy_jiffies()
        own = sum(_process_jiffies(pid) for pid in self.ours)
        while not self._stop.wait(MEMORY_SAMPLE_S):
            for pid in self.workers:
                self.rss_kib[pid].append(rss_kib(pid)["VmRSS"])
            busy_now, _ = _busy_jiffies()
            own_now = sum(_process_jiffies(pid) for pid in self.ours)
            foreign = max(0, (busy_now - busy) - (own_now - own))
            self.background_cores.append(round(foreign / self._ticks / MEMORY_SAMPLE_S, 2))
            busy, own = busy_now, own_now

    def __enter__(self) -> _Sampler:
        """Start sampling."""
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()


def _plan(
    base_url: str, payloads: pathlib.Path, seconds: float, warmup_s: float, soak_s: float
) -> dict[str, Any]:
    """Every run of the load generator, in order; the soak run (if any) last."""
    runs = [
        {
            "target": target,
            "path": path,
            "concurrency": concurrency,
            "seconds": seconds,
            "warmup_s": warmup_s,
        }
        for concurrency in CONCURRENCY
        for target, path in TARGETS.items()
    ]
    if soak_s > 0:
        soak = {"target": "promise", "path": TARGETS["promise"], "concurrency": CONCURRENCY[-1]}
        runs.append({**soak, "seconds": soak_s, "warmup_s": 0.0, "soak": True})
    return {"base_url": base_url, "payloads": str(payloads), "runs": runs}


def _wrk_plan(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs wrk makes: locust's but the soak, each target warmed up before its first run.

    wrk's runs follow one another without pause, so one warm-up per target keeps it warm.
    """
    out: list[dict[str, Any]] = []
    warmed: set[str] = set()
    for spec in runs:
        if spec.get("soak"):
            continue
        first = spec["target"] not in warmed
        warmed.add(spec["target"])
        out.append({**spec, "wrk_warmup_s": spec["warmup_s"] if first else 0.0})
    return out


def _memory(
    pids: list[int],
    start: dict[int, dict[str, int]],
    end: dict[int, dict[str, int]],
    samples: dict[int, list[int]],
) -> dict[str, Any]:
    """Worker memory at start and end of the load, its maximum and its timeline."""
    workers = {
        str(pid): {
            "start_mib": round(start[pid]["VmRSS"] / 1024, 1),
            "end_mib": round(end[pid]["VmRSS"] / 1024, 1),
            "max_mib": round(max([end[pid]["VmRSS"], *samples[pid]]) / 1024, 1),
            "peak_hwm_mib": round(end[pid]["VmHWM"] / 1024, 1),
        }
        for pid in pids
    }
    return {
        "workers": workers,
        "limit_mib": RSS_LIMIT_MIB,
        "growth_mib": {pid: round(m["end_mib"] - m["start_mib"], 1) for pid, m in workers.items()},
        "rss_mib_every_s": {str(pid): [round(k / 1024, 1) for k in samples[pid]] for pid in pids},
    }


def _target(value: float, goal: float, *, at_most: bool) -> dict[str, Any]:
    """A figure and whether it meets its goal."""
    return {"value": value, "met": value <= goal if at_most else value >= goal}


def run(
    *, quick: bool, workers: int, seconds: float, warmup_s: float, soak_s: float
) -> dict[str, Any]:
    """Start the server, drive the load with wrk then a locust child process, report."""
    from bench._common import machine  # noqa: PLC0415
    from tests.launcher import ServerProcess  # noqa: PLC0415

    wrk = _wrk_binary()
    with tempfile.TemporaryDirectory(prefix="http-load-") as tmp:
        root = pathlib.Path(tmp)
        network = _payloads(root / "carts.jsonl", CARTS)
        (root / "carts.lua").write_text(WRK_SCRIPT)
        env = {"PROMISE_DEFAULT_TIME_BUDGET_MS": str(BUDGET_MS)}
        server = ServerProcess(data_dir=root / "data", workers=workers, env=env)
        with server.start():
            pids = sorted(server.worker_pids)
            server_pid = server.pid
            ours = [os.getpid(), *pids, *([server_pid] if server_pid else [])]
            plan = _plan(server.base_url, root / "carts.jsonl", seconds, warmup_s, soak_s)
            plan["authorization"] = server.auth_headers["Authorization"]
            (root / "plan.json").write_text(json.dumps(plan))
            start_memory = server.worker_memory()
            started = time.perf_counter()
            with _Sampler(pids, ours) as sampler:
                wrk_runs = [
                    _wrk(
                        wrk,
                        spec,
                        base_url=server.base_url,
                        script=root / "carts.lua",
                        payloads=root / "carts.jsonl",
                        authorization=plan["authorization"],
                        sampler=sampler,
                    )
                    for spec in _wrk_plan(plan["runs"])
                    if wrk is not None
                ]
                command = [sys.executable, "-m", "bench.http_load", "--generator"]
                generator = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    [*command, str(root / "plan.json"), str(root / "raw.json")],
                    # The child imports this checkout even when the project is not installed.
                    env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])},
                )
                sampler.watch(generator.pid)
                if generator.wait() != 0:
                    raise RuntimeError(f"load generator exited with {generator.returncode}")
            load_s = time.perf_counter() - started
            end_memory = server.worker_memory()
            metrics_text = server.fetch("/metrics")[1].decode()
        raw = json.loads((root / "raw.json").read_text())
    runs = wrk_runs + [_summarise(r) for r in raw if not r.get("soak")]
    soak = [_summarise(r) for r in raw if r.get("soak")]
    memory = _memory(pids, start_memory, end_memory, sampler.rss_kib)
    background = sampler.background_cores
    by_key = {(r["generator"], r["target"], r["concurrency"]): r for r in runs}
    measured = [g for g in GENERATORS if (g, "promise", 4) in by_key]
    over_budget = {g: round(by_key[(g, "promise", 4)]["p99_ms"] - BUDGET_MS, 2) for g in measured}
    # The targets are wrk's figures; locust's only when wrk could not run.
    judged = measured[0]
    p99_at_4 = by_key[(judged, "promise", 4)]["p99_ms"]
    rps_at_16 = by_key[(judged, "promise", 16)]["rps"]
    max_rss = max(m["max_mib"] for m in memory["workers"].values())
    return {
        "benchmark": "http_load",
        "quick": quick,
        "machine": machine(),
        "generators": {
            "wrk": "wrk, 1 thread, closed loop, Lua rotating the carts, in a separate process",
            "locust": "locust FastHttpUser, headless, closed loop, in a separate process",
        },
        "wrk_missing": None if wrk else "not installed (Debian: apt-get install wrk)",
        "server": {"workers": workers, **network},
        "budget_ms": BUDGET_MS,
        "load_seconds": round(load_s, 1),
        "runs": runs,
        # The carts carry no budget of their own, so response − budget is latency − BUDGET_MS.
        "over_budget_p99_ms_at_4": over_budget,
        "soak": soak[0] if soak else None,
        "memory": memory,
        # CPU that other processes on this machine used during the load, in cores: numbers
        # measured while this is high are not the service's own.
        "background_cpu_cores": {
            "mean": round(sum(background) / len(background), 2) if background else 0.0,
            "max": max(background, default=0.0),
        },
        "solves": {
            "by_status": _metric_sums(metrics_text, "promise_solves_total", "status"),
            "fallbacks": sum(
                float(line.rpartition(" ")[2])
                for line in metrics_text.splitlines()
                if line.startswith("promise_solve_fallbacks_total")
            ),
        },
        "targets": {
            f"{judged}: promise_p99_ms_at_concurrency_4 <= 35": _target(
                p99_at_4, TARGET_P99_MS_AT_4, at_most=True
            ),
            f"{judged}: promise_rps_at_concurrency_16 >= 400": _target(
                rps_at_16, TARGET_RPS_AT_16, at_most=False
            ),
            f"{judged}: p99 of response - budget at concurrency 4 <= 15 ms": _target(
                over_budget[judged], TARGET_OVER_BUDGET_P99_MS_AT_4, at_most=True
            ),
            "errors == 0": {
                "value": sum(r["errors"] for r in runs + soak),
                "met": all(r["errors"] == 0 for r in runs + soak),
            },
            "worker_rss_mib < 600": {"value": max_rss, "met": max_rss < RSS_LIMIT_MIB},
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=pathlib.Path, help="write the report here (and .md)")
    parser.add_argument("--quick", action="store_true", help="short runs: under 60 s in all")
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--seconds", type=float, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds before each run")
    parser.add_argument(
        "--soak", type=float, help="then promises at concurrency 16 for this long (memory)"
    )
    parser.add_argument("--generator", nargs=2, type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generator:
        _generate(*args.generator)
        return 0
    if args.json is None:
        parser.error("--json PATH is required")
    # Quick: 2 generators × 2 targets × 3 concurrencies × 2-3 s, and a server start: < 60 s.
    seconds = args.seconds or (2.0 if args.quick else 20.0)
    warmup_s = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    soak_s = args.soak if args.soak is not None else (0.0 if args.quick else 120.0)
    report = run(
        quick=args.quick, workers=args.workers, seconds=seconds, warmup_s=warmup_s, soak_s=soak_s
    )
    markdown = _markdown(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    args.json.with_suffix(".md").write_text(markdown)
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
