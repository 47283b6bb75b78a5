"""Shared benchmark plumbing: percentiles, warm-up, JSON and Markdown output."""

from __future__ import annotations

import datetime as dt
import gc
import json
import pathlib
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from litestar import Litestar

from models import PromiseRequest, Snapshot
from promise.access.keys import make_key
from promise.access.principal import Limits, Scope
from solver import PreparedNetwork, prepare, solve, warm_up

__all__ = ["machine", "percentiles", "promise_key", "timed", "warm_network", "write_outputs"]

T = TypeVar("T")


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """Median, p99 and mean of samples in milliseconds, rounded to microseconds."""
    data = np.asarray(samples_ms, dtype=np.float64)
    if data.size == 0:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
    return {
        "p50_ms": round(float(np.percentile(data, 50)), 3),
        "p99_ms": round(float(np.percentile(data, 99)), 3),
        "mean_ms": round(float(data.mean()), 3),
    }


def timed(call: Callable[[], T]) -> tuple[T, float]:
    """Run ``call`` and return its value and wall time in milliseconds."""
    started = time.perf_counter()
    value = call()
    return value, (time.perf_counter() - started) * 1000.0


def warm_network(snapshot: Snapshot, warm: Sequence[PromiseRequest]) -> PreparedNetwork:
    """Prepare ``snapshot``, warm the solver and the network's calendar memo, freeze the heap.

    A service does the same at start-up; freezing keeps the long-lived snapshot out of the
    garbage collector's full passes, which otherwise land in the latency tail.
    """
    warm_up()
    network = prepare(snapshot)
    for request in warm:
        solve(request, network)
    gc.collect()
    gc.freeze()
    return network


def promise_key(app: Litestar) -> str:
    """An unlimited promise key in the authority of an in-process ``app``."""
    made = make_key(
        "bench", [Scope.PROMISE], created_by="bench", limits=Limits(rate_per_s=1e6, burst=10**6)
    )
    app.state.service.stock.backend.create_key(made.record, lambda: dt.datetime.now(dt.UTC))
    return made.plaintext


def machine() -> dict[str, Any]:
    """Facts about where the numbers were measured."""
    import os  # noqa: PLC0415 - only needed here

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
    }


def write_outputs(path: pathlib.Path, payload: dict[str, Any], markdown: str) -> None:
    """Write the JSON report and a Markdown twin next to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    path.with_suffix(".md").write_text(markdown)
