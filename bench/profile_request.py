"""Where a promise request's time goes: py-spy samples the full request in process.

The app runs in this process on the demo network (``create_app``, live stock, a promise key);
carts go through its ASGI interface one at a time (httpx's ASGI transport: no sockets, but the
guard, body parsing, validation, the solve in its worker thread and the JSON answer all run),
every service level quoted. Two workloads: the realistic cart mix and 20-line carts. py-spy
(a dev dependency) samples every thread of this process while each workload runs; the report
gives, per workload, the share of samples by module of the innermost project frame (what
dominates), and the top functions by self and by inclusive share. Usage::

    python -m bench.profile_request --json out/profile_request.json [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx
from litestar import Litestar

import scenarios
from bench._common import machine, percentiles, promise_key, write_outputs
from promise.app import create_app
from promise.settings import Settings

SAMPLE_RATE_HZ = 400
TOP = 15
TOP_INCLUSIVE = 40  # the first dozen are the request's own wrappers
# A py-spy frame: "function (path:line)"; the line is dropped so a function counts once.
FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")
PROJECT_PACKAGES = ("solver", "models", "promise", "scenarios")
# A sample counts when the server is in its stack: the rest is the in-process client (httpx)
# and threads waiting for work, which py-spy does not always recognise as idle.
SERVER_PACKAGES = (*PROJECT_PACKAGES, "litestar")


def _label(frame: str) -> tuple[str, str]:
    """(module, "module.function") of a raw frame; the module is a dotted path from the root."""
    match = FRAME.match(frame)
    if match is None:
        return frame, frame
    path = match["path"].replace("\\", "/")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/lib/python" in path:
        path = "stdlib/" + path.split("/lib/python", 1)[1].split("/", 1)[-1]
    else:
        for package in PROJECT_PACKAGES:
            marker = f"/{package}/"
            if marker in path:
                path = package + "/" + path.rsplit(marker, 1)[1]
                break
    module = path.removesuffix(".py").replace("/", ".")
    return module, f"{module}.{match['function']}"


def _bucket(modules: list[str]) -> str:
    """What a sample is spent on: the innermost project module, and the leaf's package below it.

    ``solver.mip > ortools`` is CP-SAT's own time under the model module, ``promise.observe >
    litestar`` the framework under the ASGI wrapper.
    """
    leaf = modules[-1].split(".", 1)[0] if modules else "?"
    for module in reversed(modules):
        if module.split(".", 1)[0] in PROJECT_PACKAGES:
            return module if module == modules[-1] else f"{module} > {leaf}"
    return leaf


def summarise(raw: str) -> dict[str, Any]:
    """Shares of the server's samples (``frame;frame;... count`` lines) by module and function."""
    by_module: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = skipped = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # The first frames name the process and thread; the rest run root to leaf.
        labels = [_label(frame) for frame in stack.split(";") if "(" in frame]
        if not any(module.split(".", 1)[0] in SERVER_PACKAGES for module, _ in labels):
            skipped += count
            continue
        total += count
        by_module[_bucket([module for module, _ in labels])] += count
        own[labels[-1][1]] += count
        # Inclusive shares of the project's own functions: wrappers (threads, the event loop)
        # would top the list at ~100 % and say nothing.
        for name in {name for module, name in labels if module.split(".", 1)[0] in SERVER_PACKAGES}:
            inclusive[name] += count

    def shares(counter: collections.Counter[str], top: int = TOP) -> dict[str, float]:
        return {name: round(100.0 * n / total, 1) for name, n in counter.most_common(top)}

    return {
        "samples": total,
        "client_or_idle_samples": skipped,
        "by_module_pct": shares(by_module),
        "self_pct": shares(own),
        "inclusive_pct": shares(inclusive, TOP_INCLUSIVE),
    }


def _py_spy() -> str:
    """The py-spy executable next to this interpreter, else on PATH."""
    here = pathlib.Path(sys.executable).with_name("py-spy")
    found = str(here) if here.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is missing: pip install py-spy (a dev dependency)")
    return found


async def _drive(app: Litestar, bodies: list[bytes], key: str) -> list[float]:
    """Send each body once, one at a time; latencies in ms."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    latencies: list[float] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://p") as client:
        for body in bodies:
            started = time.perf_counter()
            response = await client.post("/v1/promise", content=body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000.0)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
    return latencies


async def _profile(root: pathlib.Path, workloads: dict[str, list[bytes]]) -> dict[str, Any]:
    """Start the app, warm it, then record each workload under py-spy."""
    settings = Settings.from_env({}, data_dir=root / "data")
    app = create_app(settings, initial_snapshot=scenarios.generate_network)
    report: dict[str, Any] = {}
    async with app.lifespan():
        while not app.state.service.ready:
            await asyncio.sleep(0.05)
        key = promise_key(app)
        first = next(iter(workloads.values()))
        await _drive(app, first[:50], key)  # warm: calendars, the live stock view, the caches
        for name, bodies in workloads.items():
            out = root / f"{name}.txt"
            command = [_py_spy(), "record", "--pid", str(os.getpid()), "--format", "raw"]
            command += ["--rate", str(SAMPLE_RATE_HZ), "--output", str(out)]
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
            await asyncio.sleep(1.0)  # py-spy attaches
            latencies = await _drive(app, bodies, key)
            spy.send_signal(signal.SIGINT)
            _, errors = spy.communicate(timeout=60)
            if not out.exists():
                raise RuntimeError(f"py-spy wrote no profile: {errors.decode()[-500:]}")
            report[name] = {
                "requests": len(bodies),
                **percentiles(latencies),
                **summarise(out.read_text()),
            }
    return report


def _markdown(report: dict[str, Any]) -> str:
    """Per workload: latency, then the module and function shares."""
    parts: list[str] = []
    for name, figures in report["workloads"].items():
        parts.append(
            f"## {name}: {figures['requests']} requests, p50 {figures['p50_ms']} ms, "
            f"p99 {figures['p99_ms']} ms, {figures['samples']} samples\n"
        )
        for title, key in (
            ("module (innermost project frame)", "by_module_pct"),
            ("self", "self_pct"),
            ("inclusive (project and litestar functions)", "inclusive_pct"),
        ):
            parts.append(f"| {title} | % |\n|---|---:|")
            parts += [f"| `{k}` | {v} |" for k, v in figures[key].items()]
            parts.append("")
    return "# Promise request profile (py-spy, in process)\n\n" + "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, profile, write JSON and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=pathlib.Path, required=True, help="report path")
    parser.add_argument("--quick", action="store_true", help="fewer carts, under a minute")
    args = parser.parse_args(argv)
    count = 150 if args.quick else 1000
    snapshot = scenarios.demo_snapshot()
    workloads = {
        "realistic_mix": scenarios.generate_carts(snapshot, count=count, seed=11),
        "lines_20": scenarios.generate_carts(snapshot, count=count // 3, seed=12, lines=20),
    }
    bodies = {
        name: [cart.model_dump_json(exclude_none=True).encode() for cart in carts]
        for name, carts in workloads.items()
    }
    with tempfile.TemporaryDirectory(prefix="profile-request-") as tmp:
        profiled = asyncio.run(_profile(pathlib.Path(tmp), bodies))
    report = {"machine": machine(), "quick": args.quick, "workloads": profiled}
    markdown = _markdown(report)
    write_outputs(args.json, report, markdown)
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
