"""Metrics of the price table and the re-pricing job.

Registered in the app's registry; with several workers prometheus_client writes them to the
server's multiprocess directory like every other metric.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["PricingMetrics"]


class PricingMetrics:
    """Which table the workers charge, and what the re-pricing job did."""

    def __init__(self, registry: CollectorRegistry) -> None:
        """Create the metrics in ``registry``."""
        self.version = Gauge(
            "promise_prices_version",
            "Version of the price table a worker charges (the lowest of the live workers).",
            multiprocess_mode="livemin",
            registry=registry,
        )
        self.checks = Counter(
            "promise_pricing_checks",
            "Times the re-pricing job's lease holder looked whether a re-pricing was due.",
            registry=registry,
        )
        self.runs = Counter(
            "promise_pricing_runs",
            "Re-pricing runs by outcome (written; beaten: another wrote first; failed).",
            ("outcome",),
            registry=registry,
        )
