"""The orders behind holds, and moving holds to a new plan in one fenced transaction.

A hold made from a promise answer keeps its order (the request and the option held), so the
holds can be re-sourced later (docs/reservations.md, "Re-sourcing open orders"). Moving holds
is one write transaction over every row they leave or join, taken under the same locks as
``create_hold``; inside it the move is fenced twice and rolled back whole if either fails:

1. every moved hold is still open, unconsumed and holds exactly the lines it was planned from;
2. every row a hold joins keeps ``H ≤ ATP(c)`` for the channel c of each hold joining it, with
   the holds of every other order counted (the hold rule, judged under the rows' locks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from promise.stock._hold_queries import HoldQueries, reservation_body
from promise.stock.backend import Clock, HoldRecord, Key, RowOverlay
from promise.stock.outbox import Change
from promise.stock.schemas import ReservationStatus, Shortfall

__all__ = [
    "ORDERS_SCHEMA",
    "ConcurrentChangeError",
    "HoldMove",
    "MoveCheck",
    "OpenOrder",
    "ResourcingQueries",
    "lines_of",
]

ORDERS_SCHEMA = (
    """CREATE TABLE stock_hold_orders (
        hold_id TEXT PRIMARY KEY,
        request TEXT NOT NULL,
        option TEXT NOT NULL)""",
)
Lines = tuple[tuple[str, str, int], ...]  # (node_id, sku, quantity), one per row
# Shortfalls of the rows some moved holds join, given their overlays after the move and now.
MoveCheck = Callable[[Mapping[Key, RowOverlay], int], Sequence[Shortfall]]


@dataclasses.dataclass(frozen=True, slots=True)
class OpenOrder:
    """An open hold with the order it was made for (request and option as JSON)."""

    hold: HoldRecord
    request: str
    option: str


@dataclasses.dataclass(frozen=True, slots=True)
class HoldMove:
    """One hold's move: the lines it was planned from, its new lines and its new option."""

    hold_id: str
    before: Lines
    after: Lines
    option: str

    @property
    def keys(self) -> set[Key]:
        """Rows the move leaves or joins."""
        return {(node, sku) for node, sku, _ in (*self.before, *self.after)}


class ConcurrentChangeError(Exception):
    """A moved hold or a joined row changed since the plan; nothing was moved."""

    def __init__(self, reason: str, shortfalls: Sequence[Shortfall] = ()) -> None:
        """Say what changed."""
        super().__init__(reason)
        self.reason = reason
        self.shortfalls = tuple(shortfalls)


def lines_of(hold: HoldRecord) -> Lines:
    """A hold's units per row still held (quantity less consumed), in line order."""
    return tuple(
        (line.node_id, line.sku, line.quantity - line.consumed)
        for line in hold.lines
        if line.quantity > line.consumed
    )


def _moved(hold: HoldRecord, move: HoldMove, now: int) -> Change:
    """The outbox message of one moved hold (one message, its rows on every node it touches)."""
    return Change(
        kind="resource",
        node_id=move.after[0][0] if move.after else move.before[0][0],
        msg_id=f"resource:{hold.hold_id}:{now}",
        body={
            "reservation": reservation_body(hold, [list(line) for line in move.after]),
            "moved_from": [list(line) for line in move.before],
        },
        rows=tuple(sorted(move.keys)),
    )


class ResourcingQueries(HoldQueries):
    """Orders behind holds and fenced hold moves in the authority's database."""

    def record_order(self, hold_id: str, request: str, option: str, clock: Clock) -> None:
        """Keep the order a hold was made for, so that it can be re-sourced."""

        def work(cur: Any, _now: int) -> None:
            self._run(
                cur,
                "INSERT INTO stock_hold_orders (hold_id, request, option) VALUES (?, ?, ?) "
                "ON CONFLICT (hold_id) DO NOTHING",
                (hold_id, request, option),
            )

        self._write((), clock, work)

    def open_orders(self, now: int) -> list[OpenOrder]:
        """Open holds with a recorded order and nothing shipped yet, oldest first."""

        def work(cur: Any) -> list[OpenOrder]:
            rows = self._run(
                cur,
                "SELECT h.hold_id, o.request, o.option FROM stock_holds h "
                "JOIN stock_hold_orders o ON o.hold_id = h.hold_id "
                "WHERE (h.status = 'confirmed' OR (h.status = 'held' AND h.expires_at > ?)) "
                "AND NOT EXISTS (SELECT 1 FROM stock_hold_lines l "
                "WHERE l.hold_id = h.hold_id AND l.consumed > 0) "
                "ORDER BY h.created_at, h.hold_id",
                (now,),
            ).fetchall()
            out: list[OpenOrder] = []
            for hold_id, request, option in rows:
                hold = self._hold(cur, str(hold_id))
                assert hold is not None  # read in the same transaction
                out.append(OpenOrder(hold, str(request), str(option)))
            return out

        return self._read(work)

    def move_holds(
        self,
        moves: Sequence[HoldMove],
        check: MoveCheck,
        clock: Clock,
        generation: int | None,
        actor: str | None,
    ) -> int:
        """Move every hold of ``moves`` or none; the state version after the move.

        Raises ConcurrentChangeError (and changes nothing) when a fence fails.
        """
        keys = sorted(set().union(*(move.keys for move in moves)))

        def work(cur: Any, now: int) -> int:
            self._judged_under(cur, generation)
            joined: set[Key] = set()
            changes: list[Change] = []
            for move in moves:
                hold = self._hold(cur, move.hold_id, lock=True)
                # (1) The plan was made from these lines; anything else means it moved meanwhile.
                if (
                    hold is None
                    or hold.effective_status(now)
                    not in (ReservationStatus.HELD, ReservationStatus.CONFIRMED)
                    or any(line.consumed for line in hold.lines)
                    or lines_of(hold) != move.before
                ):
                    raise ConcurrentChangeError(f"reservation {move.hold_id!r} changed")
                self._run(cur, "DELETE FROM stock_hold_lines WHERE hold_id = ?", (move.hold_id,))
                cur.executemany(
                    self._sql(
                        "INSERT INTO stock_hold_lines (hold_id, line_no, node_id, sku, quantity, "
                        "consumed, status, expires_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)"
                    ),
                    [
                        (
                            move.hold_id,
                            number,
                            node,
                            sku,
                            quantity,
                            hold.status.value,
                            hold.expires_at,
                        )
                        for number, (node, sku, quantity) in enumerate(move.after)
                    ],
                )
                self._run(
                    cur,
                    "UPDATE stock_hold_orders SET option = ? WHERE hold_id = ?",
                    (move.option, move.hold_id),
                )
                self._audit(
                    cur,
                    now,
                    actor,
                    action="hold.resource",
                    subject=move.hold_id,
                    detail={
                        "from": [list(line) for line in move.before],
                        "to": [list(line) for line in move.after],
                    },
                )
                changes.append(_moved(hold, move, now))
                joined |= {(node, sku) for node, sku, _ in move.after}
            # (2) The hold rule on every joined row, with the moves applied.
            short = check(self._overlays_of(cur, sorted(joined)), now)
            if short:
                raise ConcurrentChangeError("stock was taken meanwhile", short)
            self._record(cur, now, changes)
            return self._bump(cur, keys)

        return self._write(keys, clock, work)
