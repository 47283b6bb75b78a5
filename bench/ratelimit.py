"""Cost of one rate-limit decision: ``RedisRateLimiter.take`` and ``LocalRateLimiter.take``.

Each measurement is ``--takes`` sequential awaited takes (after 200 unmeasured ones that open
the connection and load the script) on one principal whose limit is never reached, so every
take runs the whole script and is allowed; refused takes run the same script. Measured on the
standard asyncio loop and on uvloop (what uvicorn picks when it is installed, as it is here).
For scale, ``ping`` is a bare redis-py PING on its own client, the round trip the limiter's
one EVALSHA cannot beat. Times are µs per call: median, p99, mean.

Usage::

    python -m bench.ratelimit --json out/ratelimit.json [--takes 2000] [--url redis://...]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import pathlib
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import redis.asyncio
import uvloop

from bench._common import machine, write_outputs
from promise.access.ratelimit import LocalRateLimiter, RedisRateLimiter

log = logging.getLogger("bench.ratelimit")

DEFAULT_URL = "redis://127.0.0.1:6379/0"
WARM_UP = 200
# A limit no sequential loop reaches: every take is allowed and the bucket never empties.
RATE_PER_S = 1e9
BURST = 10**9
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def _stats_us(samples_us: list[float]) -> dict[str, float]:
    """Median, p99 and mean of samples in µs, to a tenth of a µs."""
    data = np.asarray(samples_us, dtype=np.float64)
    return {
        "median_us": round(float(np.percentile(data, 50)), 1),
        "p99_us": round(float(np.percentile(data, 99)), 1),
        "mean_us": round(float(data.mean()), 1),
    }


async def _time_calls(call: Callable[[], Awaitable[object]], count: int) -> dict[str, float]:
    """Warm up, then time ``count`` sequential awaits of ``call``."""
    for _ in range(WARM_UP):
        await call()
    samples = []
    clock = time.perf_counter
    for _ in range(count):
        started = clock()
        await call()
        samples.append((clock() - started) * 1e6)
    return _stats_us(samples)


async def _measure(url: str, takes: int) -> dict[str, Any]:
    """Redis take, PING and local take on the running loop."""
    principal = f"bench-{uuid.uuid4().hex}"
    limiter = RedisRateLimiter(url, prefix="bench:rate:")
    local = LocalRateLimiter()
    ping_client = redis.asyncio.Redis.from_url(url)
    try:
        redis_take = await _time_calls(lambda: limiter.take(principal, RATE_PER_S, BURST), takes)
        ping = await _time_calls(ping_client.ping, takes)
        local_take = await _time_calls(lambda: local.take(principal, RATE_PER_S, BURST), takes)
    finally:
        await limiter.aclose()
        await ping_client.aclose()
    return {
        "redis_take": redis_take,
        "redis_ping": ping,
        "local_take": local_take,
        # Fail-open takes that Redis did not answer: they would be timed as free allowances.
        "redis_failures": limiter.failures,
    }


def _markdown(payload: dict[str, Any]) -> str:
    """The report as a Markdown table."""
    lines = [
        "# Rate limit decision cost",
        "",
        f"{payload['takes']} sequential takes per row; µs per call.",
        "",
        "| loop | call | median µs | p99 µs | mean µs |",
        "|---|---|---|---|---|",
    ]
    for loop_name in LOOPS:
        row = payload[loop_name]
        for call in ("redis_take", "redis_ping", "local_take"):
            stats = row[call]
            lines.append(
                f"| {loop_name} | {call} | {stats['median_us']} | {stats['p99_us']} "
                f"| {stats['mean_us']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure on both loops and write the JSON (and Markdown) report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=pathlib.Path, required=True, help="report path")
    parser.add_argument("--takes", type=int, default=2000, help="measured takes per row")
    parser.add_argument("--url", default=DEFAULT_URL, help="the Redis server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    payload: dict[str, Any] = {"machine": machine(), "takes": args.takes, "url": args.url}
    for loop_name, factory in LOOPS.items():
        log.info("%s ...", loop_name)
        with asyncio.Runner(loop_factory=factory) as runner:
            payload[loop_name] = runner.run(_measure(args.url, args.takes))
    write_outputs(args.json, payload, _markdown(payload))
    log.info(_markdown(payload))
    failed = any(payload[name]["redis_failures"] for name in LOOPS)
    if failed:
        log.error("Redis at %s did not answer every take; the Redis rows are not valid", args.url)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
