"""Prometheus metrics of the service, aggregated across worker processes.

With several workers each process writes its samples to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` (the CLI sets it, to a directory of this server's own, before any
worker imports prometheus_client; see :mod:`promise.metrics_dir`) and ``/metrics`` sums them, so
any worker answers for the whole server. Without that variable the
metrics live in this instance's own registry, which keeps apps created in tests independent.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector

from models import PromiseResult

__all__ = ["MULTIPROC_ENV", "Metrics"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Checkout answers in milliseconds; the tail buckets catch swaps and overload.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.035,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class Metrics:
    """Counters and histograms of one app instance."""

    def __init__(self) -> None:
        """Create the metrics in a private registry."""
        self.registry = CollectorRegistry()
        # The mode prometheus_client chose when it was imported, whatever the environment says now.
        self.multiprocess = prometheus_values.ValueClass is not prometheus_values.MutexValue
        self.requests = Counter(
            "promise_http_requests",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "promise_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ("route", "method", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.solves = Counter(
            "promise_solves",
            "Promise solves by engine and overall solver status.",
            ("engine", "status"),
            registry=self.registry,
        )
        self.options = Counter(
            "promise_options",
            "Options answered, by service level and option status.",
            ("service_level", "status"),
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "promise_solve_fallbacks",
            "Solves answered with the greedy fallback because time ran out.",
            registry=self.registry,
        )
        self.model_errors = Counter(
            "promise_solver_model_errors",
            "Models CP-SAT refused or found infeasible: a bug in the model, never a time-out.",
            registry=self.registry,
        )
        self.solve_seconds = Histogram(
            "promise_solve_duration_seconds",
            "Wall time of solve() as the solver reports it.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.solve_queue = Gauge(
            "promise_solve_queue",
            "Solves running or waiting for a solver thread, summed over live workers.",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.rejections = Counter(
            "promise_overload_rejections",
            "Requests answered 503 because every solve slot and queue place was taken.",
            registry=self.registry,
        )
        self.snapshot_loads = Counter(
            "promise_snapshot_loads",
            "Snapshots made live in a worker, by how (start, swap, reload).",
            ("how",),
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request and record its latency."""
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def observe_solve(self, result: PromiseResult) -> None:
        """Count one solve, its options and whether it fell back."""
        stats = result.solver
        self.solves.labels(stats.engine.value, stats.status.value).inc()
        self.solve_seconds.observe(stats.wall_ms / 1000.0)
        if stats.fallback:
            self.fallbacks.inc()
        if stats.model_errors:
            self.model_errors.inc(len(stats.model_errors))
        for option in result.options:
            self.options.labels(option.service_level.value, option.status.value).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text of every worker (or of this instance) and its content type."""
        if self.multiprocess:
            registry = CollectorRegistry()
            # prometheus_client leaves this constructor unannotated.
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
