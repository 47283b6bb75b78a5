"""A named lease in the authority, held by one process at a time and renewed as it runs.

The outbox publisher and the re-pricing job each run on every worker of every host, and only
the holder of their lease acts; another takes over once the holder stops renewing (it died,
or lost the authority). A lease lost to a power cut only lets another holder take over early.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio.to_thread

from promise.stock.backend import Clock

__all__ = ["Lease", "LeaseTaker"]


class LeaseTaker(Protocol):
    """The authority's lease primitive (``OutboxQueries.lease``)."""

    def __call__(self, name: str, holder: str, lease_us: int, clock: Clock) -> bool:
        """Take or renew the lease ``name`` for ``lease_us``; whether ``holder`` has it now."""
        ...


class Lease:
    """One holder's view of a lease: taken, then renewed once a third of it has passed."""

    def __init__(
        self, take: LeaseTaker, name: str, holder: str, lease_s: float, clock: Clock
    ) -> None:
        """Hold lease ``name`` as ``holder`` for ``lease_s`` at a time."""
        self._take = take
        self.name = name
        self.holder = holder
        self.lease_s = lease_s
        self._clock = clock
        self._until = 0.0

    async def hold(self) -> bool:
        """Whether this process holds the lease now (asks the authority when due to renew)."""
        now = time.monotonic()
        if now < self._until - 2 * self.lease_s / 3:
            return True
        held = await anyio.to_thread.run_sync(
            self._take, self.name, self.holder, int(self.lease_s * 1_000_000), self._clock
        )
        self._until = now + self.lease_s if held else 0.0
        return held
