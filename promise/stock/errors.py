"""Problems of live inventory and reservations; docs/problems.md lists every kind.

Hierarchy (every class a :class:`solver.errors.ProblemError`)::

    solver.errors.PromiseError            family: the request cannot be answered as asked (422)
    ├── StockRequestError                 a stock request names something that cannot be used
    │   ├── UnknownPromiseError           promise_id is unknown or its answer expired
    │   ├── IdempotencyKeyReusedError     the Idempotency-Key was used with another body
    │   └── InvalidPriceTableError        an uploaded price table names what the network lacks
    ├── InvalidCursorError                a page cursor is not one this service handed out
    └── UnknownRowError                   a position query names an unknown node or SKU
    StockHTTPError                        family: answered with a StockProblem document
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
from promise.stock.schemas import Shortfall, StockProblem
from solver.errors import ProblemError, PromiseError

__all__ = [
    "EventNotFoundError",
    "HoldLimitError",
    "IdempotencyKeyReusedError",
    "InsufficientStockError",
    "InvalidCursorError",
    "InvalidPriceTableError",
    "PricesMovedError",
    "ReservationConflictError",
    "ReservationNotFoundError",
    "SnapshotMovedError",
    "StockHTTPError",
    "StockRequestError",
    "StockUnavailableError",
    "UnknownPromiseError",
    "UnknownRowError",
]


class StockRequestError(PromiseError):
    """A reservation or event request names something that cannot be used (422)."""

    type = "urn:promise-engine:problem:stock-request"
    status = 422
    title = "Stock request"


class UnknownPromiseError(StockRequestError):
    """The promise_id was never answered here, or its remembered allocation expired."""

    type = "urn:promise-engine:problem:unknown-promise"
    status = 422
    title = "Unknown promise"

    field = ("promise_id",)


class IdempotencyKeyReusedError(StockRequestError):
    """An Idempotency-Key already answered a request with a different body."""

    type = "urn:promise-engine:problem:idempotency-key-reused"
    status = 422
    title = "Idempotency key reused"
    field = ("Idempotency-Key",)
    source = "header"

    def __init__(self, key: str) -> None:
        """Name the key that was reused."""
        super().__init__(
            f"Idempotency-Key {key!r} was already used with a different request body; "
            "use a new key for a new request"
        )


class InvalidPriceTableError(StockRequestError):
    """A price table row names a node or SKU the live network lacks, or a pair twice."""

    type = "urn:promise-engine:problem:invalid-price-table"
    status = 422
    title = "Invalid price table"


class InvalidCursorError(PromiseError):
    """A page cursor is not one this service handed out."""

    type = "urn:promise-engine:problem:invalid-cursor"
    status = 422
    title = "Invalid cursor"
    source = "query"


class UnknownRowError(PromiseError):
    """A position query names a node or a SKU the live snapshot does not have."""

    type = "urn:promise-engine:problem:unknown-row"
    status = 422
    title = "Unknown row"
    source = "query"


class StockHTTPError(ProblemError, family=True):
    """A stock problem answered with a :class:`StockProblem` (a refused hold's shortfalls)."""

    shortfalls: tuple[Shortfall, ...] = ()

    def document(self, request_id: str | None = None) -> StockProblem:
        """The problem document, with the lines a refused hold fell short on."""
        problem = super().document(request_id)
        return StockProblem(**problem.model_dump(), shortfalls=self.shortfalls)


class EventNotFoundError(StockHTTPError):
    """No event with this id was recorded."""

    type = "urn:promise-engine:problem:event-not-found"
    status = 404
    title = "Event not found"

    def __init__(self, event_id: str) -> None:
        """Name the id that was not found."""
        super().__init__(f"no recorded event {event_id!r}")


class ReservationNotFoundError(StockHTTPError):
    """No reservation has this id."""

    type = "urn:promise-engine:problem:reservation-not-found"
    status = 404
    title = "Reservation not found"

    def __init__(self, reservation_id: str) -> None:
        """Name the id that was not found."""
        super().__init__(f"no reservation {reservation_id!r}")


class ReservationConflictError(StockHTTPError):
    """The reservation's state does not allow the requested transition."""

    type = "urn:promise-engine:problem:reservation-conflict"
    status = 409
    title = "Reservation state does not allow this"


class InsufficientStockError(StockHTTPError):
    """A hold would exceed what the channel may promise; nothing was held."""

    type = "urn:promise-engine:problem:insufficient-stock"
    status = 409
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

    type = "urn:promise-engine:problem:hold-limit"
    status = 409
    title = "Hold limit of this caller reached"


class PricesMovedError(StockHTTPError):
    """A price table was to replace one version, but another is current; nothing was written."""

    type = "urn:promise-engine:problem:prices-moved"
    status = 409
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

    type = "urn:promise-engine:problem:stock-unavailable"
    status = 503
    title = "Stock unavailable"


class SnapshotMovedError(StockUnavailableError):
    """The request was judged under an older snapshot than the live one; nothing was written.

    The service catches up with the live snapshot and judges again; only when the snapshot keeps
    moving does a client see it, as a 503 to retry.
    """

    type = "urn:promise-engine:problem:snapshot-moved"
    status = 503
    title = "Snapshot moved"

    def __init__(self, judged: int, live: int) -> None:
        """Keep the generation the request was judged under and the live one."""
        super().__init__(
            f"snapshot generation {live} went live while this request was judged under "
            f"{judged}; nothing was written, retry",
            1,
        )
        self.judged = judged
        self.live = live
