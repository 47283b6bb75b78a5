"""The transactional outbox: every change to publish, written in the transaction that makes it.

A write transaction that applies an event, places, confirms, releases or expires a hold, or
makes a snapshot live also inserts one outbox row per message to publish (one per node a hold
touches), with the touched rows' new tiers and ATP per channel. A publisher
(:mod:`promise.events.publisher`) reads the rows in ``outbox_id`` order, publishes them with
their ``msg_id`` as the broker's de-duplication id, and deletes them once the broker has them.
A crash between commit and publish therefore loses nothing (the row is still there) and
publishes nothing twice (a re-published row carries the same ``msg_id``).

``outbox_id`` comes from the ``outbox`` counter of ``stock_meta``, taken just before the state
version: the counter row stays locked until commit, so ids are handed out in commit order and
the rows visible to a reader are always a prefix of the ids. Writers of one (node, SKU) are
serialised by that row's lock anyway, so per row the order is the commit order.

The outbox is written only when the service turns it on (``outbox_rows`` set): without a
publisher it would only grow.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from promise.stock.access import SqlPrimitives
from promise.stock.backend import Clock, Key, RowOverlay, from_us, to_us

__all__ = [
    "OUTBOX_SCHEMA",
    "Change",
    "OutboxEntry",
    "OutboxQueries",
    "OutboxStats",
    "RowState",
]

OUTBOX_SCHEMA = (
    """CREATE TABLE stock_outbox (
        outbox_id BIGINT PRIMARY KEY,
        msg_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        node_id TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL)""",
    # Which publisher drains the outbox: one at a time, so that the stream gets the rows in
    # order; another takes over when the holder stops renewing. (Other leases share the table
    # under names of their own, see ``lease``.)
    """CREATE TABLE stock_outbox_lease (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at BIGINT NOT NULL)""",
    "INSERT INTO stock_meta (key, value) VALUES ('outbox', 0) ON CONFLICT (key) DO NOTHING",
)
LEASE_NAME = "publisher"
# The node of a message that concerns the whole network (a snapshot swap).
ALL_NODES = "all"

# A row's published state (tiers and ATP per channel) from its overlay at an instant; None
# when the live snapshot does not know the row.
RowState = Callable[[Key, RowOverlay, int], Mapping[str, Any] | None]


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """One message to publish: what happened at one node, and the rows whose ATP it moved."""

    kind: str  # event, hold, confirm, release, expiry, snapshot
    node_id: str
    msg_id: str
    body: Mapping[str, Any]
    rows: tuple[Key, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An outbox row waiting to be published."""

    outbox_id: int
    msg_id: str
    kind: str
    node_id: str
    body: bytes
    created_at: int


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxStats:
    """How many rows wait and since when (None when the outbox is empty)."""

    depth: int
    oldest_at: int | None


class OutboxQueries(SqlPrimitives):
    """Writing, draining and leasing the outbox in the authority's database."""

    # Set by the service that turns publication on; None writes no outbox rows.
    outbox_rows: RowState | None = None

    @abc.abstractmethod
    def _overlays_of(self, cur: Any, keys: Sequence[Key]) -> dict[Key, RowOverlay]:
        """Overlays of ``keys`` inside the transaction (rows never touched come back empty)."""

    @abc.abstractmethod
    def _remember(self, work: Callable[[Any], None]) -> None:
        """Run ``work`` in a write transaction that need not survive a power loss."""

    @property
    def outbox_enabled(self) -> bool:
        """Whether changes are written to the outbox."""
        return self.outbox_rows is not None

    def _record(
        self,
        cur: Any,
        now: int,
        changes: Sequence[Change],
        *,
        overlays: Mapping[Key, RowOverlay] | None = None,
    ) -> None:
        """Write ``changes`` to the outbox in this transaction (nothing when it is off).

        ``overlays`` are the touched rows as this transaction leaves them, when the caller
        knows them; otherwise they are read. Call it after every other lock the transaction
        takes but the state version's: the outbox counter stays locked until commit, which
        orders the ids by commit.
        """
        row_state = self.outbox_rows
        if row_state is None or not changes:
            return
        keys = sorted({key for change in changes for key in change.rows})
        if overlays is None:
            overlays = self._overlays_of(cur, keys) if keys else {}
        states = {key: row_state(key, overlays[key], now) for key in keys}
        last = int(
            self._run(
                cur,
                "UPDATE stock_meta SET value = value + ? WHERE key = 'outbox' RETURNING value",
                (len(changes),),
            ).fetchone()[0]
        )
        first = last - len(changes) + 1
        at = from_us(now).isoformat().replace("+00:00", "Z")
        params = []
        for offset, change in enumerate(changes):
            outbox_id = first + offset
            rows = []
            for node_id, sku in change.rows:
                state = states[(node_id, sku)]
                if state is not None:
                    rows.append({"node_id": node_id, "sku": sku, **state})
            body = {
                "kind": change.kind,
                "msg_id": change.msg_id,
                "outbox_seq": outbox_id,
                "at": at,
                "node_id": change.node_id,
                **change.body,
                "rows": rows,
            }
            text = json.dumps(body, separators=(",", ":"), sort_keys=True)
            params.append((outbox_id, change.msg_id, change.kind, change.node_id, text, now))
        cur.executemany(
            self._sql(
                "INSERT INTO stock_outbox (outbox_id, msg_id, kind, node_id, body, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)"
            ),
            params,
        )

    def outbox_pending(self, limit: int) -> list[OutboxEntry]:
        """The oldest ``limit`` rows waiting, in commit order."""

        def work(cur: Any) -> list[OutboxEntry]:
            rows = self._run(
                cur,
                "SELECT outbox_id, msg_id, kind, node_id, body, created_at FROM stock_outbox "
                "ORDER BY outbox_id LIMIT ?",
                (limit,),
            ).fetchall()
            return [
                OutboxEntry(
                    int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]).encode(), int(r[5])
                )
                for r in rows
            ]

        return self._read(work)

    def outbox_done(self, outbox_ids: Sequence[int]) -> None:
        """Forget rows the broker has stored.

        No sync at commit: a deletion lost to a power cut only re-publishes rows under their
        old ids, which the broker drops as duplicates.
        """
        if not outbox_ids:
            return
        ids = list(outbox_ids)

        def work(cur: Any) -> None:
            marks = ", ".join("?" for _ in ids)
            self._run(cur, f"DELETE FROM stock_outbox WHERE outbox_id IN ({marks})", ids)  # noqa: S608 - only ? markers

        self._remember(work)

    def outbox_stats(self) -> OutboxStats:
        """Rows waiting and the commit time of the oldest."""

        def work(cur: Any) -> OutboxStats:
            row = self._run(cur, "SELECT count(*), min(created_at) FROM stock_outbox").fetchone()
            return OutboxStats(int(row[0]), None if row[1] is None else int(row[1]))

        return self._read(work)

    def lease(self, name: str, holder: str, lease_us: int, clock: Clock) -> bool:
        """Take or renew the lease ``name`` for ``lease_us``; whether ``holder`` has it now.

        One holder at a time per name (the publisher, the re-pricing job); another takes over
        when the holder stops renewing.
        """
        now = to_us(clock())
        taken: list[bool] = []

        def work(cur: Any) -> None:
            self._run(
                cur,
                "INSERT INTO stock_outbox_lease (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at "
                "WHERE stock_outbox_lease.holder = excluded.holder "
                "OR stock_outbox_lease.expires_at < ?",
                (name, holder, now + lease_us, now),
            )
            taken.append(cur.rowcount == 1)

        # A lease lost to a power cut only lets another holder take over early.
        self._remember(work)
        return taken[0]
