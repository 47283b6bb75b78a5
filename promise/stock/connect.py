"""Which stock backend the settings select, opened: PostgreSQL for a DSN, else embedded SQLite."""

from __future__ import annotations

from promise.stock.config import StockSettings
from promise.stock.sql import StockBackend

__all__ = ["open_backend"]


def open_backend(settings: StockSettings) -> StockBackend:
    """The backend the settings select: PostgreSQL for a DSN, else the embedded SQLite file."""
    if settings.database_url:
        from promise.stock.postgres import PostgresStockBackend  # noqa: PLC0415 - optional

        return PostgresStockBackend(
            settings.database_url,
            pool_size=settings.pool_size,
            connect_timeout_s=settings.database_connect_timeout_s,
            acquire_timeout_s=settings.database_acquire_timeout_s,
        )
    from promise.stock.sqlite import SqliteStockBackend  # noqa: PLC0415

    return SqliteStockBackend(
        settings.sqlite_path,
        synchronous=settings.sqlite_synchronous,
        busy_timeout_s=settings.sqlite_busy_timeout_s,
    )
