"""The re-pricing job: a new price table every k orders or m seconds, by one host at a time.

Every worker of every host runs this loop; only the holder of the ``pricing`` lease in the
authority acts (the publisher's lease table, another name). Every ``pricing_check_s`` the
holder reads the current table's version and when it was written, and counts the holds placed
since (an index range in the authority, so orders on every host count). When the table is
``pricing_every_s`` old, or ``pricing_every_orders`` holds were placed since, it runs
``promise price`` in a child process, told to write only if that version is still current:
a second holder taking over after a stall cannot write a second table from the same version.

The run is a child process because a pricing LP over a large network takes tens of seconds
and hundreds of MiB: in a serving worker it would hold the GIL against the solves and push
the worker's memory past its ceiling (docs/limits.md). The child runs at a lower CPU priority,
is killed after ``pricing_timeout_s``, and the lease is renewed while it runs.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import uuid
from pathlib import Path

import anyio
import anyio.to_thread

from promise.pricing.cli import BEATEN_EXIT
from promise.pricing.config import PricingSettings
from promise.pricing.metrics import PricingMetrics
from promise.stock._price_queries import PriceTable
from promise.stock.backend import Clock, to_us, utc_now
from promise.stock.errors import StockUnavailableError
from promise.stock.lease import Lease
from promise.stock.sql import StockBackend

__all__ = ["LEASE_NAME", "PricingJob"]

log = logging.getLogger(__name__)

LEASE_NAME = "pricing"
# The child's CPU priority below the serving worker's.
CHILD_NICE = 10
# After a failed run the next waits this long at first, doubling up to the longest.
FIRST_BACKOFF_S = 30.0
MAX_BACKOFF_S = 3600.0
KEPT_OUTPUT_CHARS = 2000


class PricingJob:
    """Re-prices stock when due, while this worker holds the job's lease."""

    def __init__(
        self,
        backend: StockBackend,
        settings: PricingSettings,
        *,
        data_dir: Path,
        metrics: PricingMetrics,
        clock: Clock = utc_now,
    ) -> None:
        """Check ``backend``'s table with ``settings``; the child opens the same ``data_dir``."""
        self._backend = backend
        self._settings = settings
        self._data_dir = data_dir
        self._metrics = metrics
        self._clock = clock
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lease = Lease(backend.lease, LEASE_NAME, self.holder, settings.pricing_lease_s, clock)
        self._not_before = 0.0
        self._backoff_s = 0.0

    def command(self, expect: int, reason: str) -> list[str]:
        """The ``promise price`` command line of one run replacing version ``expect``."""
        s = self._settings
        if s.pricing_forecast is not None:
            source = ["--forecast", str(s.pricing_forecast)]
        else:
            source = ["--from-scenarios", str(s.pricing_scenarios)]
        return [
            sys.executable,
            "-m",
            "promise.cli",
            "price",
            *source,
            "--channel",
            s.pricing_channel,
            "--horizon",
            f"{s.pricing_horizon_s:g}s",
            "--lookback",
            f"{s.pricing_lookback_s:g}s",
            "--cell-deg",
            f"{s.pricing_cell_deg:g}",
            "--nearest",
            str(s.pricing_nearest),
            "--lp",
            s.pricing_lp,
            "--baskets",
            str(s.pricing_baskets),
            "--data-dir",
            str(self._data_dir),
            "--if-version",
            str(expect),
            "--origin",
            "job",
            "--actor",
            f"job:pricing@{self.holder}",
            "--note",
            f"re-priced: {reason}",
            "--nice",
            str(CHILD_NICE),
            "--json",
        ]

    def due(self, table: PriceTable | None, now_us: int) -> str | None:
        """Why a re-pricing is due now (None when it is not); reads the authority."""
        s = self._settings
        written = 0 if table is None else table.written_at
        if s.pricing_every_s is not None:
            age_s = (now_us - written) / 1_000_000
            if table is None or age_s >= s.pricing_every_s:
                return "no table yet" if table is None else f"table {age_s:.0f} s old"
        if s.pricing_every_orders is not None:
            orders = self._backend.holds_since(written)
            if orders >= s.pricing_every_orders:
                return f"{orders} orders since version {0 if table is None else table.version}"
        return None

    async def _keep_lease(self) -> None:
        """Renew the lease while a run goes on."""
        while True:
            await anyio.sleep(self._settings.pricing_lease_s / 3)
            try:
                await self._lease.hold()
            except StockUnavailableError as exc:
                log.warning("pricing lease renewal failed", extra={"reason": str(exc)})

    async def check(self) -> str | None:
        """One look, if this worker holds the lease: the run's outcome, or None when none ran."""
        if anyio.current_time() < self._not_before or not await self._lease.hold():
            return None
        self._metrics.checks.inc()

        def look() -> tuple[PriceTable | None, str | None]:
            table = self._backend.price_table()
            return table, self.due(table, to_us(self._clock()))

        table, reason = await anyio.to_thread.run_sync(look)
        if reason is None:
            return None
        outcome = await self._run_once(0 if table is None else table.version, reason)
        self._metrics.runs.labels(outcome).inc()
        if outcome == "failed":
            self._backoff_s = min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, 2 * self._backoff_s))
            self._not_before = anyio.current_time() + self._backoff_s
        else:
            self._backoff_s = 0.0
        return outcome

    async def _run_once(self, expect: int, reason: str) -> str:
        """Run ``promise price`` replacing ``expect``; written, beaten or failed."""
        command = self.command(expect, reason)
        log.info("re-pricing", extra={"reason": reason, "replaces": expect})
        done = None
        with anyio.move_on_after(self._settings.pricing_timeout_s):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._keep_lease)
                # Cancelled by the timeout or at shutdown, anyio kills the child.
                done = await anyio.run_process(command, check=False)
                tasks.cancel_scope.cancel()
        if done is None:
            log.error(
                "re-pricing timed out; the run was killed",
                extra={"timeout_s": self._settings.pricing_timeout_s},
            )
            return "failed"
        if done.returncode == 0:
            figures = json.loads(done.stdout or b"{}")
            log.info("re-priced", extra={"figures": figures})
            return "written"
        if done.returncode == BEATEN_EXIT:
            log.info("re-pricing skipped: another table was written first")
            return "beaten"
        log.error(
            "re-pricing failed",
            extra={
                "returncode": done.returncode,
                "stderr": done.stderr.decode(errors="replace")[-KEPT_OUTPUT_CHARS:],
            },
        )
        return "failed"

    async def run(self) -> None:
        """Check every ``pricing_check_s`` for the life of the worker."""
        while True:
            await anyio.sleep(self._settings.pricing_check_s)
            try:
                await self.check()
            except StockUnavailableError as exc:
                # The authority is down: promises say so with 503s; the job tries again.
                log.warning("re-pricing check failed", extra={"reason": str(exc)})
