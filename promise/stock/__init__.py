"""Live inventory and reservations: idempotent events, serialised holds, zero oversell.

The backend (embedded SQLite by default, PostgreSQL for several instances) is the authority
for stock events and holds; each worker keeps a ``solver.Inventory`` derived from it.

Public surface: :class:`StockService` (what handlers and the promise service call),
:func:`stock_router` (for ``create_app``), :class:`StockSettings`, the request and answer
types, and the errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.lazy import lazy_exports

if TYPE_CHECKING:
    from promise.stock.config import StockSettings
    from promise.stock.connect import open_backend
    from promise.stock.errors import (
        EventNotFoundError,
        IdempotencyKeyReusedError,
        InsufficientStockError,
        InvalidPriceTableError,
        PricesMovedError,
        ReservationConflictError,
        ReservationNotFoundError,
        StockHTTPError,
        StockRequestError,
        StockUnavailableError,
        UnknownPromiseError,
        UnknownRowError,
    )
    from promise.stock.routes import stock_router
    from promise.stock.schemas import (
        EventBatch,
        EventOutcome,
        EventResult,
        EventsAnswer,
        EventType,
        InventoryEvent,
        PromiseHold,
        Reservation,
        ReservationLine,
        ReservationRequest,
        ReservationStatus,
        Shortfall,
        StockPosition,
    )
    from promise.stock.service import StockService

__all__ = [
    "EventBatch",
    "EventNotFoundError",
    "EventOutcome",
    "EventResult",
    "EventType",
    "EventsAnswer",
    "IdempotencyKeyReusedError",
    "InsufficientStockError",
    "InvalidPriceTableError",
    "InventoryEvent",
    "PricesMovedError",
    "PromiseHold",
    "Reservation",
    "ReservationConflictError",
    "ReservationLine",
    "ReservationNotFoundError",
    "ReservationRequest",
    "ReservationStatus",
    "Shortfall",
    "StockHTTPError",
    "StockPosition",
    "StockRequestError",
    "StockService",
    "StockSettings",
    "StockUnavailableError",
    "UnknownPromiseError",
    "UnknownRowError",
    "open_backend",
    "stock_router",
]

# The TYPE_CHECKING imports above load on first use (models.lazy).
lazy_exports(__name__)
