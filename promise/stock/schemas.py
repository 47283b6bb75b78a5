"""Request and answer bodies of the inventory-event and reservation endpoints."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator, Field, StringConstraints, model_validator

from models import Day, Frozen, Instant, IntegerOnly, Many, Problem, ServiceLevel, at_most

__all__ = [
    "MAX_HOLD_QUANTITY",
    "EventBatch",
    "EventOutcome",
    "EventResult",
    "EventType",
    "EventsAnswer",
    "InventoryEvent",
    "LotView",
    "PromiseHold",
    "RecordedEvent",
    "Reservation",
    "ReservationLine",
    "ReservationRequest",
    "ReservationStatus",
    "ReservedLine",
    "Shortfall",
    "StockPosition",
    "StockProblem",
]

# Ids follow the rule of the domain's identifiers: short and printable, safe in URLs and logs.
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
]
NonNegInt = Annotated[int, Field(ge=0, le=10**9)]
PosInt = Annotated[int, Field(gt=0, le=10**9)]
# One hold line above this is a wholesale allocation, not a checkout hold.
MAX_HOLD_QUANTITY = 1_000_000
# Sequence numbers come from the producer (a WMS or POS counter per node and SKU).
# Integers of requests are strict: JSON true is not the quantity 1.
Seq = Annotated[int, Field(ge=0, le=2**62), IntegerOnly]
SignedQuantity = Annotated[int, Field(ge=-(10**9), le=10**9), IntegerOnly]
MAX_EVENT_BATCH = 5000
MAX_HOLD_LINES = 500


class EventType(enum.StrEnum):
    """What happened to the stock of one SKU at one node."""

    RECEIPT = "receipt"  # units arrived: on hand + quantity
    SALE = "sale"  # units sold: on hand − quantity
    SHIPMENT = "shipment"  # units shipped to a customer: on hand − quantity
    ADJUSTMENT = "adjustment"  # signed correction: on hand + quantity
    COUNT = "count"  # absolute on-hand quantity from a cycle count
    TRANSFER_OUT = "transfer_out"  # units left for another node: on hand − quantity
    TRANSFER_IN = "transfer_in"  # units arrived from another node: on hand + quantity
    IN_TRANSIT = "in_transit"  # units on their way, due at ``eta``


# On-hand sign of each delta type; counts and in-transit lots are not deltas.
DELTA_SIGN: dict[EventType, int] = {
    EventType.RECEIPT: 1,
    EventType.TRANSFER_IN: 1,
    EventType.ADJUSTMENT: 1,
    EventType.SALE: -1,
    EventType.SHIPMENT: -1,
    EventType.TRANSFER_OUT: -1,
}
CONSUMING = frozenset({EventType.SALE, EventType.SHIPMENT})
ARRIVING = frozenset({EventType.RECEIPT, EventType.TRANSFER_IN})


class InventoryEvent(Frozen):
    """One stock event of one (node, SKU), identified by ``event_id`` for idempotency."""

    event_id: Identifier = Field(description="Unique per event: a retry with it is ignored.")
    node_id: Identifier
    sku: Identifier
    type: EventType
    quantity: SignedQuantity = Field(
        description=(
            "Units: positive for receipt, sale, shipment, transfers and in_transit; signed for "
            "adjustment (non-zero); the absolute on-hand quantity (>= 0) for count."
        )
    )
    occurred_at: Instant
    seq: Seq = Field(description="Per (node, sku) sequence number from the producer.")
    eta: Day | None = Field(default=None, description="Arrival date (in_transit only).")
    reservation_id: Identifier | None = Field(
        default=None, description="Reservation this sale or shipment consumes."
    )
    lot_id: Identifier | None = Field(
        default=None,
        description="event_id of the in_transit event whose units this receipt or transfer_in "
        "brings in (closes that lot).",
    )

    @model_validator(mode="after")
    def _fields_fit_type(self) -> InventoryEvent:
        """Quantity sign, eta, reservation and lot fit the event type."""
        kind = self.type
        if kind is EventType.COUNT:
            if self.quantity < 0:
                raise ValueError("a count's quantity is the on-hand quantity: must be >= 0")
        elif kind is EventType.ADJUSTMENT:
            if self.quantity == 0:
                raise ValueError("an adjustment's quantity must not be 0")
        elif self.quantity <= 0:
            raise ValueError(f"a {kind.value} event's quantity must be > 0")
        if (kind is EventType.IN_TRANSIT) != (self.eta is not None):
            raise ValueError("eta is required for in_transit events and only for them")
        if self.reservation_id is not None and kind not in CONSUMING:
            raise ValueError("reservation_id is only for sale and shipment events")
        if self.lot_id is not None and kind not in ARRIVING:
            raise ValueError("lot_id is only for receipt and transfer_in events")
        return self

    @property
    def delta(self) -> int | None:
        """Change of on hand, or None for counts and in-transit lots."""
        sign = DELTA_SIGN.get(self.type)
        return None if sign is None else sign * self.quantity


class EventBatch(Frozen):
    """Body of ``POST /v1/inventory/events``."""

    # A batch is refused whole, so its validation stops at the first invalid event: 5,000
    # invalid events would otherwise cost up to 85,000 field errors (200 MiB).
    events: Annotated[tuple[InventoryEvent, ...], Many(MAX_EVENT_BATCH, at_least=1)]


class EventOutcome(enum.StrEnum):
    """What became of one event."""

    APPLIED = "applied"  # recorded and changed the stock
    DUPLICATE = "duplicate"  # its event_id was recorded before: ignored
    STALE = "stale"  # recorded, but already reflected in a newer count: not applied
    REJECTED = "rejected"  # not recorded (see reason); a corrected retry may use the same id


class EventResult(Frozen):
    """Outcome of one event of a batch."""

    event_id: str
    outcome: EventOutcome
    reason: str | None = None


class EventsAnswer(Frozen):
    """Answer of ``POST /v1/inventory/events``: one result per event, in order."""

    results: tuple[EventResult, ...]
    applied: int
    duplicate: int
    stale: int
    rejected: int
    state_version: int = Field(description="Stock state version after this batch.")


class RecordedEvent(Frozen):
    """An event as the journal recorded it."""

    event_id: str
    node_id: str
    sku: str
    type: EventType
    quantity: int
    seq: int
    outcome: EventOutcome
    reason: str | None = None
    recorded_at: AwareDatetime
    snapshot_generation: int | None = Field(
        default=None,
        description="Generation of the live snapshot the event was judged under.",
    )


class ReservationStatus(enum.StrEnum):
    """Life cycle of a reservation."""

    HELD = "held"  # soft hold, expires at expires_at
    CONFIRMED = "confirmed"  # firm until sale or shipment events consume it
    RELEASED = "released"
    EXPIRED = "expired"
    CONSUMED = "consumed"


class ReservationLine(Frozen):
    """Units of one SKU to hold at one node."""

    node_id: Identifier
    sku: Identifier
    quantity: Annotated[int, Field(gt=0, le=MAX_HOLD_QUANTITY), IntegerOnly]


class ReservationRequest(Frozen):
    """Body of ``POST /v1/reservations``: a promise option, or explicit lines and a channel."""

    promise_id: uuid.UUID | None = Field(
        default=None, description="Hold the allocation of this promise answer."
    )
    service_level: ServiceLevel | None = Field(
        default=None,
        description="Option of the promise to hold; default its recommended level.",
    )
    lines: (
        Annotated[tuple[ReservationLine, ...], BeforeValidator(at_most(MAX_HOLD_LINES))] | None
    ) = Field(
        default=None,
        min_length=1,
        max_length=MAX_HOLD_LINES,
        description="Explicit lines to hold.",
    )
    channel: Identifier | None = Field(
        default=None, description="Channel whose buffers apply (explicit lines only)."
    )
    ttl_s: Annotated[int, Field(ge=1, le=7 * 86400), IntegerOnly] | None = Field(
        default=None, description="Seconds the soft hold lasts; default the service's."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ReservationRequest:
        """Either a promise option or explicit lines with their channel."""
        if (self.promise_id is None) == (self.lines is None):
            raise ValueError("give either promise_id or lines")
        if self.lines is not None:
            if self.channel is None:
                raise ValueError("channel is required with explicit lines")
            if self.service_level is not None:
                raise ValueError("service_level is only for a promise_id")
        elif self.channel is not None:
            raise ValueError("channel comes from the promise; omit it with promise_id")
        return self


class ReservedLine(Frozen):
    """A held line and how much of it sales or shipments consumed."""

    node_id: str
    sku: str
    quantity: PosInt
    consumed: NonNegInt = 0


class Reservation(Frozen):
    """A hold or firm reservation of stock."""

    reservation_id: str
    status: ReservationStatus
    channel: str
    lines: tuple[ReservedLine, ...]
    created_at: AwareDatetime
    expires_at: AwareDatetime | None = Field(
        description="When a soft hold lapses; None once confirmed."
    )
    confirmed_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = Field(
        default=None, description="When it was released, expired or fully consumed."
    )
    promise_id: uuid.UUID | None = None
    service_level: ServiceLevel | None = None
    snapshot_generation: int | None = Field(
        default=None,
        description="Generation of the live snapshot the hold was judged under (GET /v1/snapshot).",
    )
    principal: str | None = Field(
        default=None,
        description="The caller that made the hold: an API key id or 'jwt:' + a token's subject.",
    )


class Shortfall(Frozen):
    """A line that could not be held: units asked and units the channel may still promise."""

    node_id: str
    sku: str
    requested: int
    available: int


class StockProblem(Problem):
    """A problem document of the stock endpoints; a 409 on a hold lists its shortfalls."""

    shortfalls: tuple[Shortfall, ...] = ()


class PromiseHold(Frozen):
    """What ``POST /v1/promise`` with ``reserve: true`` held (or could not hold)."""

    held: bool
    service_level: ServiceLevel | None = Field(description="The option the hold covers.")
    reservation: Reservation | None = None
    shortfalls: tuple[Shortfall, ...] = ()
    detail: str = ""


class LotView(Frozen):
    """An in-transit lot of a live position."""

    quantity: int
    eta: dt.date


class StockPosition(Frozen):
    """Live tiers of one (node, SKU) and what a channel may still hold there."""

    node_id: str
    sku: str
    channel: str
    on_hand: int
    reserved: int
    safety_stock: int
    buffer: int
    in_transit: tuple[LotView, ...]
    held: int = Field(description="Units in active holds and confirmed reservations.")
    available: int = Field(description="Units this channel may still hold (never negative).")
    state_version: int
