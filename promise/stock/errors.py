"""Errors of live inventory and reservations.

Hierarchy (422s reuse the solver's domain error, so the service's one handler maps them)::

    solver.errors.PromiseError            the request cannot be answered as asked (422)
    └── StockRequestError                 a stock request names something invalid (422)
        ├── UnknownPromiseError           promise_id is unknown or its answer expired
        ├── IdempotencyKeyReusedError     the Idempotency-Key was used with another body
        └── InvalidPriceTableError        an uploaded price table names what the network lacks
    StockHTTPError                        carries its own HTTP status (see ``status_code``)
    ├── EventNotFoundError                no recorded event with that id (404)
    ├── ReservationNotFoundError          no reservation with that id (404)
    ├── ReservationConflictError          the transition is not allowed from its state (409)
    ├── InsufficientStockError            a hold would exceed available-to-promise (409)
    ├── HoldLimitError                    a hold would exceed its principal's limits (409)
    └── PricesMovedError                  another price table was written since (409)
    promise.errors.ServiceUnavailableError
    └── StockUnavailableError             the stock database is busy or unreachable (503)
        └── SnapshotMovedError            another snapshot went live while a request was judged
"""

from __future__ import annotations

from collections.abc import Sequence

from promise.errors import ServiceUnavailableError
from promise.stock.schemas import Shortfall
from solver.errors import PromiseError

__all__ = [
    "EventNotFoundError",
    "HoldLimitError",
    "IdempotencyKeyReusedError",
    "InsufficientStockError",
    "InvalidPriceTableError",
    "PricesMovedError",
    "ReservationConflictError",
    "ReservationNotFoundError",
    "SnapshotMovedError",
    "StockHTTPError",
    "StockRequestError",
    "StockUnavailableError",
    "UnknownPromiseError",
]


class StockRequestError(PromiseError):
    """A reservation or event request names something that cannot be used (422)."""


class UnknownPromiseError(StockRequestError):
    """The promise_id was never answered here, or its remembered allocation expired."""

    field = ("promise_id",)


class IdempotencyKeyReusedError(StockRequestError):
    """An Idempotency-Key already answered a request with a different body."""

    field = ("Idempotency-Key",)

    def __init__(self, key: str) -> None:
        """Name the key that was reused."""
        super().__init__(
            f"Idempotency-Key {key!r} was already used with a different request body; "
            "use a new key for a new request"
        )


class InvalidPriceTableError(StockRequestError):
    """A price table row names a node or SKU the live network lacks, or a pair twice."""


class StockHTTPError(Exception):
    """A stock error with its own HTTP status; ``kind`` names the problem type."""

    status_code = 400
    kind = "stock-error"
    title = "Stock error"

    def __init__(self, message: str) -> None:
        """Keep the message."""
        super().__init__(message)
        self.message = message


class EventNotFoundError(StockHTTPError):
    """No event with this id was recorded."""

    status_code = 404
    kind = "event-not-found"
    title = "Event not found"

    def __init__(self, event_id: str) -> None:
        """Name the id that was not found."""
        super().__init__(f"no recorded event {event_id!r}")


class ReservationNotFoundError(StockHTTPError):
    """No reservation has this id."""

    status_code = 404
    kind = "reservation-not-found"
    title = "Reservation not found"

    def __init__(self, reservation_id: str) -> None:
        """Name the id that was not found."""
        super().__init__(f"no reservation {reservation_id!r}")


class ReservationConflictError(StockHTTPError):
    """The reservation's state does not allow the requested transition."""

    status_code = 409
    kind = "reservation-conflict"
    title = "Reservation state does not allow this"


class InsufficientStockError(StockHTTPError):
    """A hold would exceed what the channel may promise; nothing was held."""

    status_code = 409
    kind = "insufficient-stock"
    title = "Insufficient stock to hold"

    def __init__(self, shortfalls: Sequence[Shortfall]) -> None:
        """Keep the lines that could not be held."""
        short = ", ".join(
            f"{s.sku} at {s.node_id}: {s.requested} requested, {s.available} available"
            for s in shortfalls[:5]
        )
        super().__init__(f"nothing was held; short on {short}")
        self.shortfalls = tuple(shortfalls)


class HoldLimitError(StockHTTPError):
    """A hold would take its principal over its open-hold or held-unit limit; nothing held."""

    status_code = 409
    kind = "hold-limit"
    title = "Hold limit of this caller reached"


class PricesMovedError(StockHTTPError):
    """A price table was to replace one version, but another is current; nothing was written."""

    status_code = 409
    kind = "prices-moved"
    title = "The price table changed"

    def __init__(self, expected: int, current: int) -> None:
        """Keep the version the caller expected and the current one."""
        super().__init__(
            f"price table version {current} is current, not {expected}; nothing was written"
        )
        self.expected = expected
        self.current = current


class StockUnavailableError(ServiceUnavailableError):
    """The stock database is locked for too long or unreachable; retry shortly."""


class SnapshotMovedError(StockUnavailableError):
    """The request was judged under an older snapshot than the live one; nothing was written.

    The service catches up with the live snapshot and judges again; only when the snapshot keeps
    moving does a client see it, as a 503 to retry.
    """

    def __init__(self, judged: int, live: int) -> None:
        """Keep the generation the request was judged under and the live one."""
        super().__init__(
            f"snapshot generation {live} went live while this request was judged under "
            f"{judged}; nothing was written, retry",
            1,
        )
        self.judged = judged
        self.live = live
