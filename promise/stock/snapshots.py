"""The live snapshot: one pointer in the authority, followed by every worker on every host.

The stock backend (SQLite file or PostgreSQL) stores each snapshot's JSON once per content
digest and the live pointer as a *generation* counter beside the stock version; a swap stores
the body and moves the counter in one transaction. Each worker:

- at start loads the live snapshot, or, when the authority has none yet, seeds it with the
  start-up snapshot (file or demo network) — only if none is live, so starting, restarting or
  adding a server never reverts a swap;
- prepares a snapshot (``solver.prepare``: arrays, lookups, calendar memo; and the hold
  rule's ``StockRules``) and warms it (one small solve) before it serves it;
- follows the pointer: a background task polls the generation every ``poll_interval_s`` and
  loads a new one ahead of traffic, and every request that reads live stock checks the
  generation in the same query as the stock version and catches up before answering, so a
  request that starts after a swap returned sees the new network on every host;
- judges holds and events under the generation it serves: the authority refuses a write
  judged under another generation than the live one (``SnapshotMovedError``), and the stock
  service catches up and judges again.

A request keeps the :class:`LiveSnapshot` it started with, so one answer never mixes two
networks. What is prepared for a snapshot lives in its ``LiveSnapshot`` and goes with it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import socket
from collections.abc import Callable

import anyio
import anyio.to_thread

from models import Snapshot
from promise.errors import NotReadyError
from promise.stock._snapshot_queries import SnapshotQueries
from promise.stock.backend import Clock, LivePointer, snapshot_digest, utc_now
from promise.stock.holds import StockRules
from solver import PreparedNetwork, prepare

__all__ = ["LiveSnapshot", "SnapshotAuthority", "SnapshotStore", "origin_of_this_process"]

log = logging.getLogger(__name__)

# A failing poll is logged at most this often, not every interval.
POLL_LOG_EVERY_S = 30.0


# What the snapshot store needs of the stock backend: its snapshot queries (and the versions
# they inherit), named here so the store's signature says no more than it uses.
SnapshotAuthority = SnapshotQueries


@dataclasses.dataclass(frozen=True, slots=True)
class LiveSnapshot:
    """A loaded, prepared snapshot and the generation of the authority's pointer it is.

    ``prepared`` is what solves read (with live stock through ``with_inventory``) and
    ``rules`` what the hold rule reads; both are built once, when the snapshot is loaded.
    """

    prepared: PreparedNetwork
    rules: StockRules
    generation: int
    digest: str
    loaded_at: dt.datetime

    @classmethod
    def of(
        cls, prepared: PreparedNetwork, generation: int, digest: str, loaded_at: dt.datetime
    ) -> LiveSnapshot:
        """``prepared`` as generation ``generation``, with the hold rule's view of it."""
        return cls(prepared, StockRules(prepared.snapshot), generation, digest, loaded_at)

    @property
    def snapshot(self) -> Snapshot:
        """The validated snapshot."""
        return self.prepared.snapshot

    @property
    def token(self) -> str:
        """Names this generation and content (what ``GET /v1/snapshot`` reports)."""
        return f"g{self.generation}-{self.digest[:16]}"


def origin_of_this_process() -> str:
    """Who made a snapshot live: host and process, for the authority's history."""
    return f"{socket.gethostname()}:{os.getpid()}"


class SnapshotStore:
    """This worker's live snapshot, kept in step with the authority's pointer."""

    def __init__(
        self,
        authority: SnapshotAuthority,
        *,
        initial: Callable[[], Snapshot],
        warm: Callable[[PreparedNetwork], None],
        retry_after_s: int = 1,
        poll_interval_s: float = 0.25,
        on_reload: Callable[[LiveSnapshot], None] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """Follow ``authority``; ``initial`` seeds an empty one; ``warm`` runs a first solve."""
        self._authority = authority
        self._initial = initial
        self._warm = warm
        self._retry_after_s = retry_after_s
        self._poll_interval_s = poll_interval_s
        self._on_reload = on_reload
        self._clock = clock
        self._origin = origin_of_this_process()
        self._live: LiveSnapshot | None = None
        self._lock: anyio.Lock | None = None

    @property
    def ready(self) -> bool:
        """Whether a snapshot is loaded and warmed."""
        return self._live is not None

    @property
    def live(self) -> LiveSnapshot | None:
        """The snapshot this worker serves now (None before start-up finished)."""
        return self._live

    def _get_lock(self) -> anyio.Lock:
        """The load lock, created inside the event loop that uses it."""
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    def _warmed(self, snapshot: Snapshot) -> PreparedNetwork:
        """``snapshot`` prepared for solving and warmed (a thread)."""
        prepared = prepare(snapshot)
        self._warm(prepared)
        return prepared

    def _live_of(self, prepared: PreparedNetwork, pointer: LivePointer) -> LiveSnapshot:
        """A live snapshot of ``pointer`` loaded now."""
        return LiveSnapshot.of(prepared, pointer.generation, pointer.digest, self._clock())

    def _load(self) -> LiveSnapshot | None:
        """Load and warm the authority's live snapshot (None when there is none; a thread)."""
        found = self._authority.load_live_snapshot()
        if found is None:
            return None
        pointer, body = found
        return self._live_of(self._warmed(Snapshot.model_validate_json(body)), pointer)

    def _seed(self) -> LiveSnapshot:
        """The live snapshot, seeding the authority with the start-up one if it has none."""
        live = self._load()
        if live is not None:
            # The start-up snapshot only seeds an empty authority: a restart must not revert a
            # swap. PUT /v1/snapshot makes another network live.
            log.info(
                "serving the authority's live snapshot; the start-up snapshot is not used",
                extra={"generation": live.generation, "snapshot_version": live.snapshot.version},
            )
            return live
        snapshot = self._initial()
        prepared = self._warmed(snapshot)
        body = snapshot.model_dump_json().encode()
        pointer = self._authority.publish_snapshot(
            body, snapshot.version, self._origin, self._clock, only_if_none=True
        )
        if pointer.digest == snapshot_digest(body):
            return self._live_of(prepared, pointer)
        # Another server seeded a different network first: serve that one.
        live = self._load()
        assert live is not None
        return live

    async def start(self) -> LiveSnapshot:
        """Load and warm the live snapshot (seeding an empty authority with the start-up one)."""
        async with self._get_lock():
            live = await anyio.to_thread.run_sync(self._seed, abandon_on_cancel=True)
            self._install(live)
        log.info(
            "snapshot loaded",
            extra={"snapshot_version": live.snapshot.version, "generation": live.generation},
        )
        return live

    def _install(self, live: LiveSnapshot) -> bool:
        """Make ``live`` the live snapshot unless a newer one is; whether it was installed."""
        previous = self._live
        if previous is not None and previous.generation >= live.generation:
            return False
        self._live = live
        return True

    def current(self) -> LiveSnapshot:
        """The snapshot this worker serves (catching up is :meth:`sync`'s job)."""
        live = self._live
        if live is None:
            raise NotReadyError("the snapshot is still loading", self._retry_after_s)
        return live

    async def sync(self, at_least: int | None = None) -> LiveSnapshot:
        """The live snapshot after catching up with the authority's pointer.

        ``at_least`` is a generation the caller saw live (a refused hold says which); without
        it the pointer is read first.
        """
        live = self.current()
        if at_least is None:
            versions = await anyio.to_thread.run_sync(self._authority.versions)
            at_least = versions.snapshot
        if at_least <= live.generation:
            return live
        async with self._get_lock():
            # Another request of this worker may have caught up while this one waited.
            live = self.current()
            if at_least > live.generation:
                try:
                    loaded = await anyio.to_thread.run_sync(self._load)
                except Exception as exc:
                    # The writer validated and warmed it, so this worker cannot read what
                    # another wrote (an older build, a broken store): say so loudly and
                    # answer 503 rather than serve a network the authority no longer backs.
                    log.exception(
                        "could not load the live snapshot", extra={"generation": at_least}
                    )
                    raise NotReadyError(
                        f"this worker cannot load snapshot generation {at_least} "
                        f"({type(exc).__name__})",
                        self._retry_after_s,
                    ) from exc
                if loaded is not None and self._install(loaded):
                    log.info(
                        "snapshot reloaded after a swap",
                        extra={
                            "snapshot_version": loaded.snapshot.version,
                            "generation": loaded.generation,
                        },
                    )
                    if self._on_reload is not None:
                        self._on_reload(loaded)
        return self.current()

    async def follow(self) -> None:
        """Poll the pointer for the life of the worker and load new generations ahead of use."""
        last_logged = -POLL_LOG_EVERY_S
        while True:
            await anyio.sleep(self._poll_interval_s)
            if self._live is None:
                continue
            try:
                await self.sync()
            except Exception as exc:
                # The authority may be down: requests say so with 503s; the log says it once.
                now = anyio.current_time()
                if now - last_logged >= POLL_LOG_EVERY_S:
                    last_logged = now
                    log.warning("snapshot pointer poll failed", extra={"error": str(exc)})

    def _publish(self, snapshot: Snapshot, body: bytes, actor: str | None) -> LiveSnapshot:
        """Warm the snapshot, then make it live in the authority (a thread), audited."""
        prepared = self._warmed(snapshot)
        pointer = self._authority.publish_snapshot(
            body, snapshot.version, self._origin, self._clock, actor=actor
        )
        return self._live_of(prepared, pointer)

    async def replace(
        self, snapshot: Snapshot, content: bytes | None = None, *, actor: str | None = None
    ) -> LiveSnapshot:
        """Make ``snapshot`` live on every worker of every host; ``content`` is its JSON.

        ``actor`` is the principal the swap is audited under.
        """
        body = content if content is not None else snapshot.model_dump_json().encode()
        async with self._get_lock():
            live = await anyio.to_thread.run_sync(self._publish, snapshot, body, actor)
            self._install(live)
        log.info(
            "snapshot swapped",
            extra={"snapshot_version": snapshot.version, "generation": live.generation},
        )
        return live
