"""Holds in the authority: place all lines or none, confirm, release, consume, expire.

A hold's transaction locks its (node, SKU) rows first and reads the clock after them, so a
decision about expiry is made under the same locks as any competing hold, confirm or release of
those rows. Promise answers are remembered here too, so that any worker can hold one by id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from promise.stock._rows import Cursor, RowQueries
from promise.stock.access import Charges
from promise.stock.backend import (
    Clock,
    HoldCheck,
    HoldPlan,
    HoldRecord,
    HoldRender,
    StoredAnswer,
    from_us,
    to_us,
)
from promise.stock.errors import IdempotencyKeyReusedError, ReservationConflictError
from promise.stock.holds import consume
from promise.stock.outbox import Change
from promise.stock.schemas import InventoryEvent, ReservationStatus, ReservedLine

__all__ = ["HoldQueries", "reservation_body"]

# Lapsed holds expired per sweep transaction.
SWEEP_BATCH = 500
HOLD_SELECT = (
    "SELECT hold_id, status, channel, created_at, expires_at, confirmed_at, ended_at, "
    "promise_id, service_level, snapshot_generation, principal FROM stock_holds WHERE hold_id = ?"
)


def reservation_body(hold: HoldRecord, lines: Sequence[Any]) -> dict[str, Any]:
    """The reservation part of a hold's outbox message, with ``lines`` as JSON-ready values."""
    return {
        "reservation_id": hold.hold_id,
        "status": hold.status.value,
        "channel": hold.channel,
        "principal": hold.principal,
        "expires_at": from_us(hold.expires_at).isoformat(),
        "lines": list(lines),
    }


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
                "reservation": reservation_body(
                    hold, [line.model_dump(mode="json") for line in lines]
                )
            },
            rows=tuple(sorted({(node_id, line.sku) for line in lines})) if with_rows else (),
        )
        for node_id, lines in sorted(nodes.items())
    ]


class HoldQueries(RowQueries):
    """Holds, their lines and the Idempotency-Key answers stored with them."""

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

    def get_hold(self, hold_id: str) -> HoldRecord | None:
        """A hold by id."""
        return self._read(lambda cur: self._hold(cur, hold_id))

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
