"""The SQL both backends share: schema, queries and every transaction's body.

A backend subclass supplies connections, how a write transaction starts and locks its rows
(SQLite: ``BEGIN IMMEDIATE``, one writer at a time; PostgreSQL: ``SELECT ... FOR UPDATE`` of
the (node, SKU) rows in key order), the placeholder style and which errors are retried.

Every write transaction takes its locks first and reads the clock after them, so a decision
about expiry is made under the same locks as any competing hold, confirm or release of those
rows. Writers that change what a promise could see end by bumping the state version (a counter
row, always locked last, so versions are committed in order) and stamping the rows they
touched with it; a reader that saw version V fetches the rows stamped after V.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from promise.stock.access import ACCESS_SCHEMA, AccessQueries, Charges
from promise.stock.backend import (
    EMPTY_OVERLAY,
    Changes,
    Clock,
    HeldLine,
    HoldCheck,
    HoldPlan,
    HoldRecord,
    HoldRender,
    Key,
    KnownRow,
    LivePointer,
    RowOverlay,
    StoredAnswer,
    Versions,
    from_us,
    snapshot_digest,
    to_us,
)
from promise.stock.errors import (
    IdempotencyKeyReusedError,
    ReservationConflictError,
    SnapshotMovedError,
)
from promise.stock.events import CountState, after, digest, judge
from promise.stock.holds import consume
from promise.stock.outbox import ALL_NODES, OUTBOX_SCHEMA, Change, OutboxQueries
from promise.stock.schemas import (
    EventOutcome,
    EventResult,
    EventType,
    InventoryEvent,
    RecordedEvent,
    ReservationStatus,
    ReservedLine,
)
from scenarios.migrations import Migration

__all__ = ["MIGRATIONS", "Cursor", "SqlStockBackend", "chunks", "key_filter"]

T = TypeVar("T")
# Rows per key filter: well under every driver's parameter limit.
KEY_CHUNK = 400
# Lapsed holds expired per sweep transaction.
SWEEP_BATCH = 500
# Snapshot bodies of this many latest generations are kept (a live one is never dropped).
RETAINED_SNAPSHOTS = 8
VERSIONS_SELECT = "SELECT key, value FROM stock_meta WHERE key IN ('version', 'snapshot')"

# Migration 1 is the schema as first shipped (``IF NOT EXISTS`` adopts a store made before the
# runner); never edit a shipped migration, add the next one.
_SHIPPED_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS stock_meta (
        key TEXT PRIMARY KEY,
        value BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS stock_rows (
        node_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        count_seq BIGINT,
        count_value BIGINT NOT NULL DEFAULT 0,
        delta_sum BIGINT NOT NULL DEFAULT 0,
        changed_version BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (node_id, sku))""",
    "CREATE INDEX IF NOT EXISTS stock_rows_changed ON stock_rows (changed_version)",
    """CREATE TABLE IF NOT EXISTS stock_events (
        event_id TEXT PRIMARY KEY,
        node_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        type TEXT NOT NULL,
        quantity BIGINT NOT NULL,
        delta BIGINT,
        seq BIGINT NOT NULL,
        occurred_at BIGINT NOT NULL,
        eta BIGINT,
        reservation_id TEXT,
        lot_id TEXT,
        outcome TEXT NOT NULL,
        reason TEXT,
        digest TEXT NOT NULL,
        recorded_at BIGINT NOT NULL)""",
    # A count sums the deltas recorded after it: one index range per count.
    """CREATE INDEX IF NOT EXISTS stock_events_deltas ON stock_events (node_id, sku, seq)
        WHERE delta IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS stock_lots (
        lot_id TEXT PRIMARY KEY,
        node_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        quantity BIGINT,
        eta BIGINT,
        closed SMALLINT NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS stock_lots_row ON stock_lots (node_id, sku, closed)",
    """CREATE TABLE IF NOT EXISTS stock_holds (
        hold_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        channel TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        confirmed_at BIGINT,
        ended_at BIGINT,
        promise_id TEXT,
        service_level TEXT,
        idempotency_key TEXT)""",
    """CREATE INDEX IF NOT EXISTS stock_holds_lapsing ON stock_holds (expires_at)
        WHERE status = 'held'""",
    """CREATE TABLE IF NOT EXISTS stock_hold_lines (
        hold_id TEXT NOT NULL,
        line_no INTEGER NOT NULL,
        node_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        quantity BIGINT NOT NULL,
        consumed BIGINT NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (hold_id, line_no))""",
    # Live lines of a row are one index range per status, however many lines it ever had.
    """CREATE INDEX IF NOT EXISTS stock_hold_lines_row
        ON stock_hold_lines (node_id, sku, status)""",
    """CREATE TABLE IF NOT EXISTS stock_idempotency (
        key TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        status_code INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS stock_promises (
        promise_id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        expires_at BIGINT NOT NULL)""",
    "INSERT INTO stock_meta (key, value) VALUES ('version', 0) ON CONFLICT (key) DO NOTHING",
)
# The live network in the authority: bodies stored once per content digest, one history row
# per generation made live; the live generation is the 'snapshot' counter of stock_meta, read
# in the same statement as the stock version. Holds and events record the generation they
# were judged under.
_SNAPSHOT_AUTHORITY = (
    """CREATE TABLE snapshot_bodies (
        digest TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        body BYTEA NOT NULL,
        raw_bytes BIGINT NOT NULL,
        stored_at BIGINT NOT NULL)""",
    """CREATE TABLE snapshot_history (
        generation BIGINT PRIMARY KEY,
        digest TEXT NOT NULL,
        version TEXT NOT NULL,
        made_live_at BIGINT NOT NULL,
        origin TEXT NOT NULL)""",
    "INSERT INTO stock_meta (key, value) VALUES ('snapshot', 0) ON CONFLICT (key) DO NOTHING",
    "ALTER TABLE stock_holds ADD COLUMN snapshot_generation BIGINT",
    "ALTER TABLE stock_events ADD COLUMN snapshot_generation BIGINT",
)
MIGRATIONS = (
    Migration(1, "stock rows, events, lots, holds, idempotency, promises", _SHIPPED_SCHEMA),
    Migration(
        2,
        "live snapshot in the authority; judged generation on holds and events",
        _SNAPSHOT_AUTHORITY,
    ),
    Migration(3, "api keys, audit trail, principal on holds", ACCESS_SCHEMA),
    Migration(4, "transactional outbox of changes to publish", OUTBOX_SCHEMA),
)

HOLD_SELECT = (
    "SELECT hold_id, status, channel, created_at, expires_at, confirmed_at, ended_at, "
    "promise_id, service_level, snapshot_generation, principal FROM stock_holds WHERE hold_id = ?"
)


class Cursor(Protocol):
    """The DB-API cursor surface both drivers share."""

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed."""
        ...

    def execute(self, query: Any, params: Any = ..., /) -> Any:
        """Run one statement."""
        ...

    def executemany(self, query: Any, params_seq: Any, /) -> Any:
        """Run one statement per parameter row."""
        ...

    def fetchone(self) -> Any:
        """Next row or None."""
        ...

    def fetchall(self) -> list[Any]:
        """Remaining rows."""
        ...


def chunks(keys: Sequence[Key]) -> Iterator[Sequence[Key]]:
    """Key lists small enough for one statement."""
    for start in range(0, len(keys), KEY_CHUNK):
        yield keys[start : start + KEY_CHUNK]


def key_filter(keys: Sequence[Key], extra: str = "") -> tuple[str, list[str]]:
    """A predicate matching the rows of ``keys`` (each also meeting ``extra``), and parameters.

    Written as ORed key equalities rather than ``(node_id, sku) IN (VALUES ...)``: SQLite
    answers the OR form with one index search per key but scans the table for the IN form;
    ``extra`` sits inside each term so that the search also narrows on the status column.
    """
    terms = " OR ".join(f"(node_id = ? AND sku = ?{extra})" for _ in keys)
    return f"({terms})", [part for key in keys for part in key]


# Which rows an overlay read covers: extra condition per table → (predicate, parameters).
RowFilter = Callable[[str], tuple[str, Sequence[Any]]]
LOT_OPEN = " AND closed = 0"
LINE_LIVE = " AND status IN ('held', 'confirmed')"


class _Journal:
    """The journal rows of one batch: digests known so far, and the rows still to insert."""

    def __init__(self, digests: dict[str, str]) -> None:
        """Start from the digests of the batch's events already recorded."""
        self.digests = digests
        self.pending: list[tuple[Any, ...]] = []

    def record(self, row: tuple[Any, ...]) -> None:
        """Add a new event's row (``row[0]`` its id, ``row[13]`` its digest)."""
        self.digests[str(row[0])] = str(row[13])
        self.pending.append(row)


def _event_change(event: InventoryEvent, result: EventResult) -> Change:
    """The message of an applied event: the event as recorded and its row's new ATP."""
    return Change(
        kind="event",
        node_id=event.node_id,
        msg_id=f"event:{event.event_id}",
        body={
            "event": event.model_dump(mode="json", exclude_none=True),
            "outcome": result.outcome.value,
            "reason": result.reason,
        },
        rows=((event.node_id, event.sku),),
    )


def _hold_changes(kind: str, hold: HoldRecord, *, with_rows: bool = True) -> list[Change]:
    """One message per node of a hold: its lines there and (``with_rows``) their new ATP."""
    nodes: dict[str, list[ReservedLine]] = {}
    for line in hold.lines:
        nodes.setdefault(line.node_id, []).append(line)
    return [
        Change(
            kind=kind,
            node_id=node_id,
            msg_id=f"{kind}:{hold.hold_id}:{node_id}",
            body={
                "reservation": {
                    "reservation_id": hold.hold_id,
                    "status": hold.status.value,
                    "channel": hold.channel,
                    "principal": hold.principal,
                    "expires_at": from_us(hold.expires_at).isoformat(),
                    "lines": [line.model_dump(mode="json") for line in lines],
                }
            },
            rows=tuple(sorted({(node_id, line.sku) for line in lines})) if with_rows else (),
        )
        for node_id, lines in sorted(nodes.items())
    ]


def _result(event: InventoryEvent, outcome: EventOutcome, reason: str | None) -> EventResult:
    """One event's result."""
    return EventResult(event_id=event.event_id, outcome=outcome, reason=reason)


class SqlStockBackend(AccessQueries, OutboxQueries):
    """Live stock in a SQL database; subclasses bring connections and locking."""

    for_update = ""  # row-lock suffix of a SELECT inside a write transaction
    for_share = ""  # shared row-lock suffix (SQLite's one writer needs neither)
    schema_version = 0  # set when the store is opened and migrated

    # --- what a subclass provides ---------------------------------------------------------

    @abc.abstractmethod
    def _remember(self, work: Callable[[Cursor], None]) -> None:
        """Run ``work`` in a write transaction that need not survive a power loss."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise StockUnavailableError unless the store answers a trivial query now (cheap)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    # --- helpers --------------------------------------------------------------------------

    def _key_filter(self, keys: Sequence[Key], extra: str = "") -> tuple[str, list[Any]]:
        """A predicate matching the rows of ``keys`` (each also meeting ``extra``)."""
        return key_filter(keys, extra)

    def _bump(self, cur: Cursor, keys: Iterable[Key]) -> int:
        """Next state version, stamped on ``keys``; the counter row is always locked last."""
        row = self._run(
            cur, "UPDATE stock_meta SET value = value + 1 WHERE key = 'version' RETURNING value"
        ).fetchone()
        version = int(row[0])
        for chunk in chunks(sorted(keys)):
            # One statement per chunk of rows (they are locked already, in key order).
            where, params = self._key_filter(chunk)
            self._run(
                cur,
                f"UPDATE stock_rows SET changed_version = ? WHERE {where}",  # noqa: S608 - only constant fragments and ? markers
                [version, *params],
            )
        return version

    def _version(self, cur: Cursor) -> int:
        """The state version."""
        row = self._run(cur, "SELECT value FROM stock_meta WHERE key = 'version'").fetchone()
        return int(row[0])

    @staticmethod
    def _versions_of(rows: Sequence[tuple[Any, Any]]) -> Versions:
        """Versions from the rows of ``VERSIONS_SELECT``."""
        values = {str(key): int(value) for key, value in rows}
        return Versions(stock=values["version"], snapshot=values.get("snapshot", 0))

    def _live_generation(self, cur: Cursor, suffix: str) -> int:
        """The live snapshot generation, read with a row-lock ``suffix`` (or none)."""
        row = self._run(
            cur,
            "SELECT value FROM stock_meta WHERE key = 'snapshot'" + suffix,  # noqa: S608 - a constant lock suffix
        ).fetchone()
        return int(row[0])

    def _judged_under(self, cur: Cursor, generation: int | None) -> int | None:
        """Refuse to write what was judged under another snapshot than the live one.

        The shared lock on the generation row makes a swap wait for the holds and events being
        judged now, and a hold that starts after a swap read the new generation.
        """
        if generation is None:
            return None
        live = self._live_generation(cur, self.for_share)
        if live != generation:
            raise SnapshotMovedError(generation, live)
        return generation

    def _overlays(self, cur: Cursor, rows: RowFilter) -> dict[Key, RowOverlay]:
        """Overlays of the rows ``rows`` selects in each table."""
        counts: dict[Key, CountState] = {}
        where, params = rows("")
        for node, sku, seq, value, delta_sum in self._run(
            cur,
            f"SELECT node_id, sku, count_seq, count_value, delta_sum FROM stock_rows WHERE {where}",  # noqa: S608 - only constant fragments and ? markers
            params,
        ).fetchall():
            counts[(node, sku)] = CountState(
                None if seq is None else int(seq), int(value), int(delta_sum)
            )
        lots: dict[Key, list[tuple[int, int]]] = {}
        where, params = rows(LOT_OPEN)
        for node, sku, quantity, eta in self._run(
            cur,
            "SELECT node_id, sku, quantity, eta FROM stock_lots "  # noqa: S608 - only constant fragments and ? markers
            f"WHERE {where} AND quantity IS NOT NULL",
            params,
        ).fetchall():
            lots.setdefault((node, sku), []).append((int(quantity), int(eta)))
        holds: dict[Key, list[HeldLine]] = {}
        where, params = rows(LINE_LIVE)
        for node, sku, quantity, status, expires_at in self._run(
            cur,
            "SELECT node_id, sku, quantity - consumed, status, expires_at FROM stock_hold_lines "  # noqa: S608 - only constant fragments and ? markers
            f"WHERE {where}",
            params,
        ).fetchall():
            holds.setdefault((node, sku), []).append(
                HeldLine(int(quantity), status == "confirmed", int(expires_at))
            )
        return {
            key: RowOverlay(
                count=counts.get(key, CountState()),
                lots=tuple(lots.get(key, ())),
                holds=tuple(holds.get(key, ())),
            )
            for key in counts.keys() | lots.keys() | holds.keys()
        }

    def _overlays_of(self, cur: Cursor, keys: Sequence[Key]) -> dict[Key, RowOverlay]:
        """Overlays of ``keys``; rows never touched come back empty."""
        out: dict[Key, RowOverlay] = {}
        for chunk in chunks(keys):
            out.update(self._overlays(cur, functools.partial(self._key_filter, chunk)))
        return {key: out.get(key, EMPTY_OVERLAY) for key in keys}

    def _hold(self, cur: Cursor, hold_id: str, *, lock: bool = False) -> HoldRecord | None:
        """A hold and its lines (row-locked when ``lock``, in a write transaction)."""
        row = self._run(
            cur,
            HOLD_SELECT + (self.for_update if lock else ""),
            (hold_id,),
        ).fetchone()
        if row is None:
            return None
        lines = self._run(
            cur,
            "SELECT node_id, sku, quantity, consumed FROM stock_hold_lines "
            "WHERE hold_id = ? ORDER BY line_no",
            (hold_id,),
        ).fetchall()
        return HoldRecord(
            hold_id=row[0],
            status=ReservationStatus(row[1]),
            channel=row[2],
            created_at=int(row[3]),
            expires_at=int(row[4]),
            confirmed_at=None if row[5] is None else int(row[5]),
            ended_at=None if row[6] is None else int(row[6]),
            promise_id=row[7],
            service_level=row[8],
            snapshot_generation=None if row[9] is None else int(row[9]),
            principal=row[10],
            lines=tuple(
                ReservedLine(node_id=n, sku=s, quantity=int(q), consumed=int(c))
                for n, s, q, c in lines
            ),
        )

    def _set_status(self, cur: Cursor, hold_id: str, status: str, *, only: str) -> None:
        """Move a hold's lines that are in status ``only`` to ``status``."""
        self._run(
            cur,
            "UPDATE stock_hold_lines SET status = ? WHERE hold_id = ? AND status = ?",
            (status, hold_id, only),
        )

    # --- reads ----------------------------------------------------------------------------

    def state_version(self) -> int:
        """The current state version (one cheap query)."""
        return self.versions().stock

    def versions(self) -> Versions:
        """The stock version and the live snapshot generation (one cheap query)."""
        return self._read(lambda cur: self._versions_of(self._run(cur, VERSIONS_SELECT).fetchall()))

    def changes(self, since: int, keys: Sequence[Key] = ()) -> Changes:
        """Overlays of every row changed after version ``since`` and of ``keys``, consistently."""

        def work(cur: Cursor) -> Changes:
            version = self._version(cur)
            changed = (
                "(node_id, sku) IN (SELECT node_id, sku FROM stock_rows WHERE changed_version > ?)"
            )
            rows = self._overlays(cur, lambda extra: (changed + extra, (since,)))
            extra = [key for key in keys if key not in rows]
            if extra:
                rows.update(self._overlays_of(cur, extra))
            return Changes(version, rows)

        return self._read(work)

    def overlays(self, keys: Sequence[Key]) -> Changes:
        """Overlays of the given rows (rows never touched come back empty)."""
        return self._read(lambda cur: Changes(self._version(cur), self._overlays_of(cur, keys)))

    def get_hold(self, hold_id: str) -> HoldRecord | None:
        """A hold by id."""
        return self._read(lambda cur: self._hold(cur, hold_id))

    def recorded_event(self, event_id: str) -> RecordedEvent | None:
        """An event as the journal recorded it."""

        def work(cur: Cursor) -> RecordedEvent | None:
            row = self._run(
                cur,
                "SELECT event_id, node_id, sku, type, quantity, seq, outcome, reason, "
                "recorded_at, snapshot_generation FROM stock_events WHERE event_id = ?",
                (event_id,),
            ).fetchone()
            if row is None:
                return None
            return RecordedEvent(
                event_id=row[0],
                node_id=row[1],
                sku=row[2],
                type=EventType(row[3]),
                quantity=int(row[4]),
                seq=int(row[5]),
                outcome=EventOutcome(row[6]),
                reason=row[7],
                recorded_at=from_us(int(row[8])),
                snapshot_generation=None if row[9] is None else int(row[9]),
            )

        return self._read(work)

    def recall_promise(self, promise_id: str, now: int) -> str | None:
        """A remembered promise's allocations, unless unknown or expired."""

        def work(cur: Cursor) -> str | None:
            row = self._run(
                cur,
                "SELECT body FROM stock_promises WHERE promise_id = ? AND expires_at > ?",
                (promise_id, now),
            ).fetchone()
            return None if row is None else str(row[0])

        return self._read(work)

    # --- the live snapshot ----------------------------------------------------------------

    @staticmethod
    def _pointer_of(row: Sequence[Any]) -> LivePointer:
        """A pointer from a ``snapshot_history`` row."""
        return LivePointer(
            generation=int(row[0]),
            digest=str(row[1]),
            version=str(row[2]),
            made_live_at=int(row[3]),
            origin=str(row[4]),
        )

    def _pointer(self, cur: Cursor, generation: int) -> LivePointer | None:
        """The history row of ``generation`` (None for generation 0)."""
        row = self._run(
            cur,
            "SELECT generation, digest, version, made_live_at, origin FROM snapshot_history "
            "WHERE generation = ?",
            (generation,),
        ).fetchone()
        return None if row is None else self._pointer_of(row)

    def load_live_snapshot(self) -> tuple[LivePointer, bytes] | None:
        """The live snapshot's pointer and JSON, read together (None before the first)."""

        def work(cur: Cursor) -> tuple[LivePointer, bytes] | None:
            pointer = self._pointer(cur, self._live_generation(cur, ""))
            if pointer is None:
                return None
            row = self._run(
                cur, "SELECT body FROM snapshot_bodies WHERE digest = ?", (pointer.digest,)
            ).fetchone()
            return pointer, zlib.decompress(bytes(row[0]))

        return self._read(work)

    def publish_snapshot(
        self,
        body: bytes,
        version: str,
        origin: str,
        clock: Clock,
        *,
        only_if_none: bool = False,
        actor: str | None = None,
    ) -> LivePointer:
        """Store a snapshot's JSON and make it live as the next generation; the live pointer.

        With ``only_if_none`` the snapshot is made live only when none is (start-up seeding)
        and the pointer returned is whichever is live after the call.
        """
        digest = snapshot_digest(body)
        packed = zlib.compress(body, 6)  # outside the transaction: it takes a while

        def work(cur: Cursor, now: int) -> LivePointer:
            current = self._live_generation(cur, self.for_update)
            if only_if_none and current > 0:
                pointer = self._pointer(cur, current)
                assert pointer is not None
                return pointer
            self._run(
                cur,
                "INSERT INTO snapshot_bodies (digest, version, body, raw_bytes, stored_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING",
                (digest, version, packed, len(body), now),
            )
            pointer = LivePointer(current + 1, digest, version, now, origin)
            self._run(
                cur,
                "INSERT INTO snapshot_history (generation, digest, version, made_live_at, origin) "
                "VALUES (?, ?, ?, ?, ?)",
                (pointer.generation, digest, version, now, origin),
            )
            self._run(
                cur,
                "UPDATE stock_meta SET value = ? WHERE key = 'snapshot'",
                (pointer.generation,),
            )
            # Bodies no recent generation names go; the history rows stay as the audit trail.
            self._run(
                cur,
                "DELETE FROM snapshot_bodies WHERE digest NOT IN (SELECT digest FROM "
                "snapshot_history WHERE generation > ?)",
                (pointer.generation - RETAINED_SNAPSHOTS,),
            )
            self._record(
                cur,
                now,
                [
                    Change(
                        kind="snapshot",
                        node_id=ALL_NODES,
                        msg_id=f"snapshot:{pointer.generation}",
                        body={
                            "snapshot": {
                                "generation": pointer.generation,
                                "version": version,
                                "digest": digest,
                                "origin": origin,
                            }
                        },
                    )
                ],
            )
            self._audit(
                cur,
                now,
                actor,
                action="snapshot.swap",
                subject=str(pointer.generation),
                detail={"version": version, "digest": digest, "bytes": len(body), "origin": origin},
            )
            return pointer

        return self._write((), clock, work)

    # --- events ---------------------------------------------------------------------------

    def apply_events(
        self,
        events: Sequence[InventoryEvent],
        known: KnownRow,
        clock: Clock,
        generation: int | None = None,
        actor: str | None = None,
    ) -> tuple[tuple[EventResult, ...], int]:
        """Record and apply a batch judged under snapshot ``generation``; results and version.

        ``actor`` (when given) gets one audit entry for the batch, written with it.
        """
        results: dict[int, EventResult] = {}
        todo: list[int] = []
        for i, event in enumerate(events):
            reason = known(event.node_id, event.sku)
            if reason is None:
                todo.append(i)
            else:
                results[i] = _result(event, EventOutcome.REJECTED, reason)
        keys = sorted({(events[i].node_id, events[i].sku) for i in todo})
        if not keys:
            # Nothing to write, but the rejections must have been judged on the live network.
            versions = self.versions()
            if generation is not None and versions.snapshot != generation:
                raise SnapshotMovedError(generation, versions.snapshot)
            if actor is not None:
                self._write((), clock, lambda cur, now: self._audit_batch(cur, now, actor, results))
            return tuple(results[i] for i in range(len(events))), versions.stock

        def work(cur: Cursor, now: int) -> int:
            judged = self._judged_under(cur, generation)
            before = self._overlays_of(cur, keys)
            states = {key: o.count for key, o in before.items()}
            touched: set[Key] = set()
            charges: Charges = {}
            changes: list[Change] = []
            journal = self._journal_of(cur, [events[i].event_id for i in todo])
            for i in todo:
                results[i] = self._apply_one(
                    cur,
                    events[i],
                    states,
                    touched,
                    now,
                    judged=judged,
                    charges=charges,
                    journal=journal,
                )
                if results[i].outcome is EventOutcome.APPLIED and self.outbox_enabled:
                    changes.append(_event_change(events[i], results[i]))
            self._write_journal(cur, journal)
            cur.executemany(
                self._sql(
                    "UPDATE stock_rows SET count_seq = ?, count_value = ?, delta_sum = ? "
                    "WHERE node_id = ? AND sku = ?"
                ),
                [
                    (states[k].count_seq, states[k].count_value, states[k].delta_sum, *k)
                    for k in sorted(touched)
                ],
            )
            self._audit_batch(cur, now, actor, results)
            self._settle(cur, charges)
            # Plain deltas and counts change only the count state: the rows' overlays are
            # known without reading them again. Lots and consumed holds are read afresh.
            plain = not any(
                events[i].lot_id or events[i].reservation_id or events[i].eta for i in todo
            )
            after_batch = (
                {key: dataclasses.replace(before[key], count=states[key]) for key in keys}
                if plain
                else None
            )
            self._record(cur, now, changes, overlays=after_batch)
            return self._bump(cur, touched) if touched else self._version(cur)

        version = self._write(keys, clock, work)
        return tuple(results[i] for i in range(len(events))), version

    def _audit_batch(
        self, cur: Cursor, now: int, actor: str | None, results: dict[int, EventResult]
    ) -> None:
        """One audit entry for a batch of events: its size, outcomes and first and last ids."""
        if actor is None or not results:
            return
        ordered = [results[i] for i in sorted(results)]
        outcomes: dict[str, int] = {}
        for result in ordered:
            outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
        self._audit(
            cur,
            now,
            actor,
            action="events.apply",
            subject=f"{ordered[0].event_id}..{ordered[-1].event_id}",
            detail={"events": len(ordered), "outcomes": outcomes},
        )

    def _apply_one(
        self,
        cur: Cursor,
        event: InventoryEvent,
        states: dict[Key, CountState],
        touched: set[Key],
        now: int,
        *,
        judged: int | None,
        charges: Charges,
        journal: _Journal,
    ) -> EventResult:
        """Record one event and apply it to ``states`` (the batch's rows, locked)."""
        key = (event.node_id, event.sku)
        hold: HoldRecord | None = None
        if event.reservation_id is not None:
            hold = self._hold(cur, event.reservation_id, lock=True)
            if hold is None:
                why = f"unknown reservation {event.reservation_id!r}"
                return _result(event, EventOutcome.REJECTED, why)
            if not any((line.node_id, line.sku) == key for line in hold.lines):
                why = f"reservation {hold.hold_id!r} holds no {event.sku} at {event.node_id}"
                return _result(event, EventOutcome.REJECTED, why)
        lot_id = event.event_id if event.type is EventType.IN_TRANSIT else event.lot_id
        if lot_id is not None:
            row = self._run(
                cur, "SELECT node_id, sku FROM stock_lots WHERE lot_id = ?", (lot_id,)
            ).fetchone()
            if row is not None and (row[0], row[1]) != key:
                why = f"lot {lot_id!r} is of {row[1]} at {row[0]}"
                return _result(event, EventOutcome.REJECTED, why)
        state = states[key]
        outcome, reason = judge(event, state)
        fingerprint = digest(event)
        known = journal.digests.get(event.event_id)
        if known is not None:
            same = known == fingerprint
            what = "already recorded" if same else "already recorded with different content"
            return _result(event, EventOutcome.DUPLICATE, f"event_id {what}; ignored")
        journal.record(
            (
                event.event_id,
                event.node_id,
                event.sku,
                event.type.value,
                event.quantity,
                event.delta,
                event.seq,
                to_us(event.occurred_at),
                None if event.eta is None else event.eta.toordinal(),
                event.reservation_id,
                event.lot_id,
                outcome.value,
                reason,
                fingerprint,
                now,
                judged,
            )
        )
        if outcome is EventOutcome.APPLIED:
            touched.add(key)
            if event.type is EventType.IN_TRANSIT:
                self._open_lot(cur, event)
            else:
                states[key] = after(
                    event, state, lambda seq: self._deltas_after(cur, key, seq, journal)
                )
        if event.lot_id is not None:
            # Units that arrived have left transit, whether or not a count already has them.
            self._close_lot(cur, event.lot_id, key)
            touched.add(key)
        if hold is not None:
            note = self._consume(cur, hold, event, now, charges)
            if note is None:
                touched.add(key)
            else:
                reason = "; ".join(part for part in (reason, note) if part)
        return _result(event, outcome, reason)

    def _deltas_after(self, cur: Cursor, key: Key, seq: int, journal: _Journal) -> int:
        """Sum of the recorded deltas of a row with a seq after ``seq`` (this batch's too)."""
        self._write_journal(cur, journal)
        row = self._run(
            cur,
            "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM stock_events "
            "WHERE node_id = ? AND sku = ? AND delta IS NOT NULL AND seq > ?",
            (*key, seq),
        ).fetchone()
        return int(row[0])

    def _journal_of(self, cur: Cursor, event_ids: Sequence[str]) -> _Journal:
        """The digests of the batch's events already in the journal (the rest are new)."""
        ids = sorted(set(event_ids))
        found: dict[str, str] = {}
        for start in range(0, len(ids), KEY_CHUNK):
            chunk = ids[start : start + KEY_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for event_id, fingerprint in self._run(
                cur,
                f"SELECT event_id, digest FROM stock_events WHERE event_id IN ({marks})",  # noqa: S608 - only ? markers
                chunk,
            ).fetchall():
                found[str(event_id)] = str(fingerprint)
        return _Journal(found)

    def _write_journal(self, cur: Cursor, journal: _Journal) -> None:
        """Insert the batch's new journal rows gathered so far, in one round of statements.

        The batch's rows are locked, so no other transaction records an event of them; one
        reusing an event_id for another row may, and its primary key conflict rolls this
        transaction back to be tried again (PostgreSQL), where the id reads as a duplicate.
        """
        if not journal.pending:
            return
        cur.executemany(
            self._sql(
                "INSERT INTO stock_events (event_id, node_id, sku, type, quantity, delta, seq, "
                "occurred_at, eta, reservation_id, lot_id, outcome, reason, digest, "
                "recorded_at, snapshot_generation) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            journal.pending,
        )
        journal.pending = []

    def _open_lot(self, cur: Cursor, event: InventoryEvent) -> None:
        """Add an in-transit lot (a receipt that closed it earlier keeps it closed)."""
        assert event.eta is not None
        self._run(
            cur,
            "INSERT INTO stock_lots (lot_id, node_id, sku, quantity, eta, closed) "
            "VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (lot_id) DO UPDATE "
            "SET quantity = excluded.quantity, eta = excluded.eta",
            (event.event_id, event.node_id, event.sku, event.quantity, event.eta.toordinal()),
        )

    def _close_lot(self, cur: Cursor, lot_id: str, key: Key) -> None:
        """Close a lot (recorded ahead of its in_transit event if that is still to come)."""
        self._run(
            cur,
            "INSERT INTO stock_lots (lot_id, node_id, sku, quantity, eta, closed) "
            "VALUES (?, ?, ?, NULL, NULL, 1) ON CONFLICT (lot_id) DO UPDATE SET closed = 1",
            (lot_id, *key),
        )

    def _consume(
        self, cur: Cursor, hold: HoldRecord, event: InventoryEvent, now: int, charges: Charges
    ) -> str | None:
        """Consume a reservation's units with a sale (its owner's usage in ``charges``)."""
        status = hold.effective_status(now)
        if status not in (ReservationStatus.HELD, ReservationStatus.CONFIRMED):
            return f"reservation {hold.hold_id!r} is {status.value}: not consumed"
        lines, used = consume(hold.lines, event.node_id, event.sku, event.quantity)
        if used == 0:
            return f"reservation {hold.hold_id!r} has nothing left to consume here"
        cur.executemany(
            self._sql("UPDATE stock_hold_lines SET consumed = ? WHERE hold_id = ? AND line_no = ?"),
            [
                (line.consumed, hold.hold_id, number)
                for number, (line, old) in enumerate(zip(lines, hold.lines, strict=True))
                if line.consumed != old.consumed
            ],
        )
        done = all(line.consumed == line.quantity for line in lines)
        if hold.principal is not None:
            charge = charges.setdefault(hold.principal, [0, 0])
            charge[0] -= int(done)
            charge[1] -= used
        if done:
            self._run(
                cur,
                "UPDATE stock_holds SET status = 'consumed', ended_at = ? WHERE hold_id = ?",
                (now, hold.hold_id),
            )
            self._run(
                cur,
                "UPDATE stock_hold_lines SET status = 'consumed' "
                "WHERE hold_id = ? AND status IN ('held', 'confirmed')",
                (hold.hold_id,),
            )
        return None

    # --- holds ----------------------------------------------------------------------------

    def create_hold(
        self, plan: HoldPlan, check: HoldCheck, render: HoldRender, clock: Clock
    ) -> StoredAnswer:
        """Place a hold if ``check`` finds no shortfall, all lines or none; store the answer."""

        def work(cur: Cursor, now: int) -> StoredAnswer:
            key = plan.idempotency_key
            if key is not None:
                stored = self._claim(cur, key, plan.request_digest, now)
                if stored is not None:
                    return stored
            # After the claim: a replayed answer stands whatever went live since.
            self._judged_under(cur, plan.snapshot_generation)
            overlays = self._overlays_of(cur, plan.keys)
            short = check(overlays, now)
            record: HoldRecord | None = None
            if not short:
                record = self._insert_hold(cur, plan, now)
                self._audit(
                    cur,
                    now,
                    plan.principal,
                    action="hold.create",
                    subject=record.hold_id,
                    detail={
                        "channel": plan.channel,
                        "lines": len(plan.lines),
                        "units": plan.units,
                        "expires_at": record.expires_at,
                    },
                )
            status_code, body = render(record, short, now)
            if key is not None:
                self._run(
                    cur,
                    "UPDATE stock_idempotency SET status_code = ?, body = ? WHERE key = ?",
                    (status_code, body, key),
                )
            if record is not None:
                if plan.principal is not None:
                    # Last before the version: the principal's row is locked only briefly.
                    self._charge(
                        cur,
                        plan.principal,
                        1,
                        plan.units,
                        max_open_holds=plan.max_open_holds,
                        max_held_units=plan.max_held_units,
                    )
                self._record(cur, now, _hold_changes("hold", record))
                self._bump(cur, plan.keys)
            return StoredAnswer(status_code, body)

        return self._write(sorted(plan.keys), clock, work)

    def stored_answer(self, key: str, request_digest: str) -> StoredAnswer | None:
        """The answer already stored under an Idempotency-Key (None when there is none yet)."""

        def work(cur: Cursor) -> StoredAnswer | None:
            row = self._run(
                cur, "SELECT digest, status_code, body FROM stock_idempotency WHERE key = ?", (key,)
            ).fetchone()
            if row is None or int(row[1]) == 0:
                return None  # unknown, or claimed by a transaction still deciding
            if row[0] != request_digest:
                raise IdempotencyKeyReusedError(key)
            return StoredAnswer(int(row[1]), str(row[2]), replayed=True)

        return self._read(work)

    def _claim(self, cur: Cursor, key: str, request_digest: str, now: int) -> StoredAnswer | None:
        """Claim an Idempotency-Key, or the answer stored under it (same body only)."""
        # A concurrent claim of the same key waits here until the first one commits.
        self._run(
            cur,
            "INSERT INTO stock_idempotency (key, digest, status_code, body, created_at) "
            "VALUES (?, ?, 0, '', ?) ON CONFLICT (key) DO NOTHING",
            (key, request_digest, now),
        )
        if cur.rowcount == 1:
            return None
        row = self._run(
            cur, "SELECT digest, status_code, body FROM stock_idempotency WHERE key = ?", (key,)
        ).fetchone()
        if row[0] != request_digest:
            raise IdempotencyKeyReusedError(key)
        return StoredAnswer(int(row[1]), str(row[2]), replayed=True)

    def _insert_hold(self, cur: Cursor, plan: HoldPlan, now: int) -> HoldRecord:
        """Write a new soft hold and its lines."""
        hold_id = str(uuid.uuid4())
        expires_at = now + plan.ttl_us
        self._run(
            cur,
            "INSERT INTO stock_holds (hold_id, status, channel, created_at, expires_at, "
            "confirmed_at, ended_at, promise_id, service_level, idempotency_key, "
            "snapshot_generation, principal) "
            "VALUES (?, 'held', ?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?)",
            (
                hold_id,
                plan.channel,
                now,
                expires_at,
                plan.promise_id,
                plan.service_level,
                plan.idempotency_key,
                plan.snapshot_generation,
                plan.principal,
            ),
        )
        cur.executemany(
            self._sql(
                "INSERT INTO stock_hold_lines (hold_id, line_no, node_id, sku, quantity, "
                "consumed, status, expires_at) VALUES (?, ?, ?, ?, ?, 0, 'held', ?)"
            ),
            [
                (hold_id, number, node, sku, quantity, expires_at)
                for number, (node, sku, quantity) in enumerate(plan.lines)
            ],
        )
        return HoldRecord(
            hold_id=hold_id,
            status=ReservationStatus.HELD,
            channel=plan.channel,
            created_at=now,
            expires_at=expires_at,
            confirmed_at=None,
            ended_at=None,
            promise_id=plan.promise_id,
            service_level=plan.service_level,
            lines=tuple(
                ReservedLine(node_id=node, sku=sku, quantity=quantity)
                for node, sku, quantity in plan.lines
            ),
            snapshot_generation=plan.snapshot_generation,
            principal=plan.principal,
        )

    def _transition(
        self,
        hold_id: str,
        clock: Clock,
        change: Callable[[Cursor, int, HoldRecord], bool],
        settled: ReservationStatus,
        verb: str,
        *,
        actor: str | None,
        owner: str | None,
    ) -> HoldRecord | None:
        """Run a conditional status change under the hold's row locks; the hold after it.

        None when no hold has the id. ``change`` gets the hold as read before the transaction
        (its owner and lines never change) and returns whether its conditional update won;
        when it did not, a hold already ``settled`` is answered as is and any other state is
        a conflict.
        """
        found = self.get_hold(hold_id)
        # Another principal's hold is not there for this caller (its id is not even confirmed).
        if found is None or (owner is not None and found.principal != owner):
            return None
        keys = sorted({(line.node_id, line.sku) for line in found.lines})

        def work(cur: Cursor, now: int) -> HoldRecord:
            changed = change(cur, now, found)
            record = self._hold(cur, hold_id)
            assert record is not None
            if changed:
                self._audit(
                    cur,
                    now,
                    actor,
                    action=f"hold.{verb}",
                    subject=hold_id,
                    detail={"status": settled.value},
                )
            else:
                status = record.effective_status(now)
                if status is not settled:
                    raise ReservationConflictError(
                        f"reservation {hold_id!r} is {status.value}; cannot {verb} it"
                    )
            return record

        return self._write(keys, clock, work)

    def confirm(
        self, hold_id: str, clock: Clock, *, actor: str | None = None, owner: str | None = None
    ) -> HoldRecord | None:
        """Make a live soft hold firm (a firm one stays); None when unknown or not ``owner``'s."""

        def change(cur: Cursor, now: int, _found: HoldRecord) -> bool:
            self._run(
                cur,
                "UPDATE stock_holds SET status = 'confirmed', confirmed_at = ? "
                "WHERE hold_id = ? AND status = 'held' AND expires_at > ?",
                (now, hold_id, now),
            )
            if cur.rowcount != 1:
                return False
            # A firm line never lapses: no quantity changes, so no new state version.
            self._set_status(cur, hold_id, "confirmed", only="held")
            if self.outbox_enabled:
                record = self._hold(cur, hold_id)
                assert record is not None
                # Nothing changed in stock, so the messages carry no rows.
                self._record(cur, now, _hold_changes("confirm", record, with_rows=False))
            return True

        return self._transition(
            hold_id,
            clock,
            change,
            ReservationStatus.CONFIRMED,
            "confirm",
            actor=actor,
            owner=owner,
        )

    def release(
        self, hold_id: str, clock: Clock, *, actor: str | None = None, owner: str | None = None
    ) -> HoldRecord | None:
        """Give back a live hold or firm reservation; None when unknown or not ``owner``'s."""

        def change(cur: Cursor, now: int, found: HoldRecord) -> bool:
            self._run(
                cur,
                "UPDATE stock_holds SET status = 'released', ended_at = ? WHERE hold_id = ? "
                "AND (status = 'confirmed' OR (status = 'held' AND expires_at > ?))",
                (now, hold_id, now),
            )
            if cur.rowcount != 1:
                return False
            live = self._run(
                cur,
                "SELECT node_id, sku, quantity - consumed FROM stock_hold_lines "
                "WHERE hold_id = ? AND status IN ('held', 'confirmed')",
                (hold_id,),
            ).fetchall()
            keys = [(node, sku) for node, sku, _ in live]
            self._run(
                cur,
                "UPDATE stock_hold_lines SET status = 'released' "
                "WHERE hold_id = ? AND status IN ('held', 'confirmed')",
                (hold_id,),
            )
            if found.principal is not None:
                self._charge(cur, found.principal, -1, -sum(int(left) for _, _, left in live))
            if self.outbox_enabled:
                record = self._hold(cur, hold_id)
                assert record is not None
                self._record(cur, now, _hold_changes("release", record))
            self._bump(cur, set(keys))
            return True

        return self._transition(
            hold_id,
            clock,
            change,
            ReservationStatus.RELEASED,
            "release",
            actor=actor,
            owner=owner,
        )

    def sweep(self, clock: Clock, idempotency_ttl_us: int) -> int:
        """Mark lapsed soft holds expired and drop stale memos; the number of holds expired."""
        now = to_us(clock())

        def lapsed(cur: Cursor) -> list[tuple[str, str, str]]:
            rows: list[tuple[str, str, str]] = self._run(
                cur,
                "SELECT l.hold_id, l.node_id, l.sku FROM stock_hold_lines l "
                "WHERE l.hold_id IN (SELECT hold_id FROM stock_holds "
                "WHERE status = 'held' AND expires_at <= ? ORDER BY expires_at LIMIT ?)",
                (now, SWEEP_BATCH),
            ).fetchall()
            return rows

        found = self._read(lapsed)
        expired = 0
        if found:
            ids = sorted({hold_id for hold_id, _, _ in found})
            keys = sorted({(node, sku) for _, node, sku in found})

            def work(cur: Cursor, now: int) -> int:
                marks = ", ".join("?" for _ in ids)
                done = self._run(
                    cur,
                    "UPDATE stock_holds SET status = 'expired', ended_at = expires_at "  # noqa: S608 - only constant fragments and ? markers
                    f"WHERE hold_id IN ({marks}) AND status = 'held' AND expires_at <= ? "
                    "RETURNING hold_id",
                    (*ids, now),
                ).fetchall()
                done_ids = [row[0] for row in done]
                if not done_ids:
                    return 0
                marks = ", ".join("?" for _ in done_ids)
                owned = self._run(
                    cur,
                    "SELECT h.principal, count(DISTINCT h.hold_id), sum(l.quantity - l.consumed) "  # noqa: S608 - only constant fragments and ? markers
                    "FROM stock_holds h JOIN stock_hold_lines l ON l.hold_id = h.hold_id "
                    f"WHERE h.hold_id IN ({marks}) AND l.status = 'held' "
                    "AND h.principal IS NOT NULL GROUP BY h.principal",
                    done_ids,
                ).fetchall()
                self._run(
                    cur,
                    "UPDATE stock_hold_lines SET status = 'expired' "  # noqa: S608 - only constant fragments and ? markers
                    f"WHERE hold_id IN ({marks}) AND status = 'held'",
                    done_ids,
                )
                self._settle(cur, {str(p): [-int(n), -int(u)] for p, n, u in owned})
                if self.outbox_enabled:
                    expired_holds = [self._hold(cur, hold_id) for hold_id in done_ids]
                    self._record(
                        cur,
                        now,
                        [
                            change
                            for hold in expired_holds
                            if hold is not None
                            for change in _hold_changes("expiry", hold)
                        ],
                    )
                done_set = set(done_ids)
                self._bump(cur, {(n, s) for hold_id, n, s in found if hold_id in done_set})
                return len(done_ids)

            expired = self._write(keys, clock, work)

        def tidy(cur: Cursor) -> None:
            self._run(cur, "DELETE FROM stock_promises WHERE expires_at <= ?", (now,))
            self._run(
                cur,
                "DELETE FROM stock_idempotency WHERE created_at <= ?",
                (now - idempotency_ttl_us,),
            )

        self._remember(tidy)
        return expired

    # --- promises -------------------------------------------------------------------------

    def remember_promise(self, promise_id: str, memo: str, expires_at: int) -> None:
        """Keep a promise answer's allocations (JSON) until ``expires_at``."""

        def work(cur: Cursor) -> None:
            self._run(
                cur,
                "INSERT INTO stock_promises (promise_id, body, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (promise_id) DO UPDATE "
                "SET body = excluded.body, expires_at = excluded.expires_at",
                (promise_id, memo, expires_at),
            )

        self._remember(work)
