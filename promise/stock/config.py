"""Settings of live inventory and reservations, read from ``PROMISE_*`` environment variables.

They sit beside :class:`promise.settings.Settings` (same prefix; ``data_dir`` is in both and
means the same), so every worker process reads them from the environment it inherits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from promise.settings import EnvSettings, upper_case

__all__ = ["StockSettings"]


class StockSettings(EnvSettings):
    """Where the stock state lives and how long holds and remembered promises last."""

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL DSN (postgresql://...); None keeps the state in embedded SQLite.",
    )
    data_dir: Path = Field(default=Path("data"), description="Holds the embedded database.")
    stock_path: Path | None = Field(
        default=None, description="Embedded database file; default <data_dir>/stock.sqlite3."
    )
    # FULL syncs the WAL on every commit, so an acknowledged hold or event survives a power
    # loss as well as a crash; NORMAL survives a process crash only, at a lower commit cost.
    sqlite_synchronous: Annotated[Literal["FULL", "NORMAL"], BeforeValidator(upper_case)] = "FULL"
    sqlite_busy_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    hold_ttl_s: Annotated[int, Field(ge=1, le=7 * 86400)] = 900
    max_hold_ttl_s: Annotated[int, Field(ge=1, le=7 * 86400)] = Field(
        default=3600, description="The longest soft hold a caller may ask for (ttl_s)."
    )
    max_open_holds: Annotated[int, Field(ge=1)] = Field(
        default=20_000,
        description="Open holds (soft and firm) one principal may have, unless its key says.",
    )
    max_held_units: Annotated[int, Field(ge=1)] = Field(
        default=200_000,
        description="Units one principal may hold at once, unless its key says.",
    )
    promise_ttl_s: Annotated[int, Field(ge=1, le=7 * 86400)] = 1800
    idempotency_ttl_s: Annotated[int, Field(ge=60, le=30 * 86400)] = 86400
    sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    max_event_batch: Annotated[int, Field(ge=1, le=5000)] = 1000
    pool_size: Annotated[int, Field(ge=1, le=64)] = Field(
        default=4, description="PostgreSQL connections per worker process, at most."
    )
    # libpq counts whole seconds and treats anything below 2 as 2; a refused connection
    # fails at once whatever this is, so it only bounds a server that does not answer.
    database_connect_timeout_s: Annotated[int, Field(ge=2, le=60)] = Field(
        default=2,
        description="Give up connecting to PostgreSQL after this many seconds (503 meanwhile).",
    )
    database_start_wait_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=30.0,
        description=(
            "How long a starting worker waits for an unreachable PostgreSQL database, "
            "retrying, before it exits (promise serve itself checks once and exits at once)."
        ),
    )
    database_acquire_timeout_s: Annotated[float, Field(gt=0, le=30)] = Field(
        default=0.5,
        description="Answer 503 when every PostgreSQL connection stayed busy this long.",
    )
    live_max_staleness_ms: Annotated[int, Field(ge=0, le=60_000)] = Field(
        default=0,
        description="Serve a worker's live view this long without checking the version.",
    )
    prices_poll_ms: Annotated[int, Field(ge=10, le=600_000)] = Field(
        default=1000,
        description=(
            "How often each worker polls the authority for a new price table, to load it ahead "
            "of traffic (a promise that reads live stock catches up with it at once anyway)."
        ),
    )

    @property
    def sqlite_path(self) -> Path:
        """The embedded database file."""
        return self.stock_path or self.data_dir / "stock.sqlite3"
