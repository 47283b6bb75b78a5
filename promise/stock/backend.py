"""The plain records that cross the storage of live stock (``sql.SqlStockBackend``).

A backend keeps, durably and atomically: the event journal (one row per recorded event_id),
per (node, SKU) the event-derived :class:`~promise.stock.events.CountState` and in-transit lots,
the holds and their lines, stored answers per Idempotency-Key, remembered promise allocations,
and a state version that grows with every change a promise could see. Rows are keyed by
(node_id, sku); the snapshot supplies each row's starting tiers, the backend what happened
since. Times cross it as integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence

from promise.stock.events import CountState
from promise.stock.schemas import Reservation, ReservationStatus, ReservedLine, Shortfall

__all__ = [
    "EMPTY_OVERLAY",
    "Changes",
    "Clock",
    "HeldLine",
    "HoldCheck",
    "HoldPlan",
    "HoldRecord",
    "HoldRender",
    "Key",
    "KnownRow",
    "LivePointer",
    "RowOverlay",
    "StoredAnswer",
    "Versions",
    "from_us",
    "snapshot_digest",
    "to_us",
    "utc_now",
]

Key = tuple[str, str]  # (node_id, sku)
Clock = Callable[[], dt.datetime]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def utc_now() -> dt.datetime:
    """The wall clock in UTC (the default clock of every stock operation)."""
    return dt.datetime.now(dt.UTC)


def to_us(instant: dt.datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (instant - _EPOCH) // dt.timedelta(microseconds=1)


def snapshot_digest(body: bytes) -> str:
    """Content address of a snapshot's JSON in the authority."""
    return hashlib.sha256(body).hexdigest()


def from_us(micros: int) -> dt.datetime:
    """Aware UTC datetime of microseconds since the epoch."""
    return _EPOCH + dt.timedelta(microseconds=micros)


@dataclasses.dataclass(frozen=True, slots=True)
class HeldLine:
    """Units of one hold line still claimed at a row (quantity less consumed)."""

    quantity: int
    confirmed: bool
    expires_at: int

    def active(self, now: int) -> bool:
        """A confirmed line holds until consumed; a soft hold until it expires."""
        return self.confirmed or self.expires_at > now


@dataclasses.dataclass(frozen=True, slots=True)
class RowOverlay:
    """What the backend knows of one (node, SKU) beyond the snapshot's row."""

    count: CountState
    lots: tuple[tuple[int, int], ...]  # open event lots: (quantity, eta ordinal)
    holds: tuple[HeldLine, ...]

    def held(self, now: int) -> int:
        """Units claimed by active holds and confirmed reservations at ``now``."""
        return sum(line.quantity for line in self.holds if line.active(now))

    def next_expiry(self, now: int) -> int | None:
        """When the next active soft hold of this row lapses (None if none will)."""
        times = [h.expires_at for h in self.holds if not h.confirmed and h.expires_at > now]
        return min(times) if times else None


EMPTY_OVERLAY = RowOverlay(count=CountState(), lots=(), holds=())


@dataclasses.dataclass(frozen=True, slots=True)
class Changes:
    """Overlays of some rows as of state ``version``."""

    version: int
    rows: dict[Key, RowOverlay]


@dataclasses.dataclass(frozen=True, slots=True)
class Versions:
    """The stock state version, the live snapshot generation and the price table's version.

    Read in one statement: every cache a worker keeps is fenced on one of them.
    """

    stock: int
    snapshot: int  # 0 until a first snapshot is made live
    prices: int = 0  # 0 until a first price table is written


@dataclasses.dataclass(frozen=True, slots=True)
class LivePointer:
    """Which snapshot is live in the authority: its generation, content digest and version."""

    generation: int
    digest: str
    version: str
    made_live_at: int
    origin: str


@dataclasses.dataclass(frozen=True, slots=True)
class HoldPlan:
    """A hold to place: lines aggregated per row, channel, lifetime and provenance."""

    lines: tuple[tuple[str, str, int], ...]  # (node_id, sku, quantity), one per row
    channel: str
    ttl_us: int
    promise_id: str | None = None
    service_level: str | None = None
    idempotency_key: str | None = None
    request_digest: str = ""
    # The snapshot generation the hold was judged under; the authority refuses a hold judged
    # under any other than the live one (None: judged outside a service, not checked).
    snapshot_generation: int | None = None
    # Who asks for the hold (audited, and counted against its limits; None: unlimited).
    principal: str | None = None
    max_open_holds: int | None = None
    max_held_units: int | None = None

    @property
    def keys(self) -> list[Key]:
        """Rows the hold touches."""
        return [(node, sku) for node, sku, _ in self.lines]

    @property
    def units(self) -> int:
        """Units the hold asks for, over all its lines."""
        return sum(quantity for _, _, quantity in self.lines)


@dataclasses.dataclass(frozen=True, slots=True)
class HoldRecord:
    """A hold as stored: its status column and lines."""

    hold_id: str
    status: ReservationStatus
    channel: str
    created_at: int
    expires_at: int
    confirmed_at: int | None
    ended_at: int | None
    promise_id: str | None
    service_level: str | None
    lines: tuple[ReservedLine, ...]
    snapshot_generation: int | None = None
    principal: str | None = None

    def effective_status(self, now: int) -> ReservationStatus:
        """The stored status, with a soft hold past its expiry read as expired."""
        if self.status is ReservationStatus.HELD and self.expires_at <= now:
            return ReservationStatus.EXPIRED
        return self.status

    def to_reservation(self, now: int) -> Reservation:
        """The API view at ``now`` (expiry applied lazily)."""
        status = self.effective_status(now)
        ended = self.ended_at
        if status is ReservationStatus.EXPIRED and ended is None:
            ended = self.expires_at
        firm = status in (ReservationStatus.CONFIRMED, ReservationStatus.CONSUMED)
        return Reservation.model_validate(
            {
                "reservation_id": self.hold_id,
                "status": status,
                "channel": self.channel,
                "lines": self.lines,
                "created_at": from_us(self.created_at),
                "expires_at": None if firm and self.confirmed_at else from_us(self.expires_at),
                "confirmed_at": None if self.confirmed_at is None else from_us(self.confirmed_at),
                "ended_at": None if ended is None else from_us(ended),
                "promise_id": self.promise_id,
                "service_level": self.service_level,
                "snapshot_generation": self.snapshot_generation,
                "principal": self.principal,
            }
        )


@dataclasses.dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The answer recorded for a hold attempt; ``replayed`` when an earlier request made it."""

    status_code: int
    body: str
    replayed: bool = False


# Decides a hold under the rows' locks: overlays of the plan's rows and the time → shortfalls.
HoldCheck = Callable[[Mapping[Key, RowOverlay], int], Sequence[Shortfall]]
# Renders the answer to store: the new hold, or the shortfalls → (HTTP status, JSON body).
HoldRender = Callable[[HoldRecord | None, Sequence[Shortfall], int], tuple[int, str]]
# Why an event's node or SKU cannot be stocked (None when it can).
KnownRow = Callable[[str, str], str | None]
