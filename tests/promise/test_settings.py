"""The PROMISE_* variables: their names and defaults, how they are read, how a bad one fails.

README and docs name these variables and their defaults, so the table below is a contract: a
change to it is a visible diff in review.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from promise.events.config import EventSettings
from promise.pricing.config import PricingSettings
from promise.settings import EnvSettings, Settings, SettingsError
from promise.stock.config import StockSettings

# Every variable each settings class reads, with its default (None: unset).
VARIABLES: dict[type[EnvSettings], dict[str, Any]] = {
    Settings: {
        "PROMISE_HOST": "127.0.0.1",
        "PROMISE_PORT": 8000,
        "PROMISE_WORKERS": 2,
        "PROMISE_SNAPSHOT_PATH": None,
        "PROMISE_DATA_DIR": Path("data"),
        "PROMISE_CAPTURE_PATH": None,
        "PROMISE_MAX_BODY_BYTES": 4194304,
        "PROMISE_MAX_SNAPSHOT_BYTES": 67108864,
        "PROMISE_MAX_BODY_MEMORY_MIB": 160,
        "PROMISE_MAX_SNAPSHOT_MEMORY_MIB": 1536,
        "PROMISE_MAX_HEAD_BYTES": 65536,
        "PROMISE_MAX_CART_LINES": 100,
        "PROMISE_MAX_TIME_BUDGET_MS": 2000,
        "PROMISE_DEFAULT_TIME_BUDGET_MS": 50,
        "PROMISE_MAX_CONCURRENT_SOLVES": 1,
        "PROMISE_MAX_QUEUED_SOLVES": 64,
        "PROMISE_SWITCH_INTERVAL_MS": 1.0,
        "PROMISE_RETRY_AFTER_S": 1,
        "PROMISE_SNAPSHOT_POLL_MS": 200,
        "PROMISE_LOG_LEVEL": "INFO",
        "PROMISE_CORS_ORIGINS": "",
        "PROMISE_INLINE_SNAPSHOTS": False,
        "PROMISE_MAX_INLINE_SNAPSHOT_NODES": 500,
        "PROMISE_MAX_INLINE_SNAPSHOT_ROWS": 100000,
        "PROMISE_AUTH_KEY_CACHE_S": 5.0,
        "PROMISE_JWT_AUDIENCE": None,
        "PROMISE_JWT_ISSUER": None,
        "PROMISE_JWT_PUBLIC_KEY_FILE": None,
        "PROMISE_JWT_JWKS_FILE": None,
        "PROMISE_OPEN_NETWORKS": "",
        "PROMISE_RATE_LIMIT_PER_S": 100.0,
        "PROMISE_RATE_LIMIT_BURST": 200,
        "PROMISE_RATE_LIMIT_REDIS_URL": "",
        "PROMISE_RATE_LIMIT_REDIS_TIMEOUT_MS": 200,
    },
    StockSettings: {
        "PROMISE_DATABASE_URL": None,
        "PROMISE_DATA_DIR": Path("data"),
        "PROMISE_STOCK_PATH": None,
        "PROMISE_SQLITE_SYNCHRONOUS": "FULL",
        "PROMISE_SQLITE_BUSY_TIMEOUT_S": 30.0,
        "PROMISE_HOLD_TTL_S": 900,
        "PROMISE_MAX_HOLD_TTL_S": 3600,
        "PROMISE_MAX_OPEN_HOLDS": 20000,
        "PROMISE_MAX_HELD_UNITS": 200000,
        "PROMISE_PROMISE_TTL_S": 1800,
        "PROMISE_IDEMPOTENCY_TTL_S": 86400,
        "PROMISE_SWEEP_INTERVAL_S": 5.0,
        "PROMISE_MAX_EVENT_BATCH": 1000,
        "PROMISE_POOL_SIZE": 4,
        "PROMISE_DATABASE_CONNECT_TIMEOUT_S": 2,
        "PROMISE_DATABASE_START_WAIT_S": 30.0,
        "PROMISE_DATABASE_ACQUIRE_TIMEOUT_S": 0.5,
        "PROMISE_LIVE_MAX_STALENESS_MS": 0,
        "PROMISE_PRICES_POLL_MS": 1000,
    },
    EventSettings: {
        "PROMISE_NATS_URL": "nats://127.0.0.1:4222",
        "PROMISE_EVENTS_CONSUME": False,
        "PROMISE_EVENTS_PUBLISH": False,
        "PROMISE_EVENTS_STREAM": "INVENTORY",
        "PROMISE_EVENTS_STREAM_MEMORY": False,
        "PROMISE_EVENTS_SUBJECT": "inventory.events",
        "PROMISE_EVENTS_DURABLE": "promise-stock",
        "PROMISE_EVENTS_DLQ_STREAM": "INVENTORY_DLQ",
        "PROMISE_EVENTS_DLQ_SUBJECT": "inventory.dlq",
        "PROMISE_EVENTS_OUT_STREAM": "PROMISE",
        "PROMISE_EVENTS_OUT_SUBJECT": "promise",
        "PROMISE_EVENTS_BATCH": 500,
        "PROMISE_EVENTS_FETCH_WAIT_MS": 500,
        "PROMISE_EVENTS_ACK_WAIT_S": 30.0,
        "PROMISE_EVENTS_MAX_BACKOFF_S": 5.0,
        "PROMISE_EVENTS_POISON_DELIVERIES": 20,
        "PROMISE_EVENTS_DEDUP_WINDOW_S": 600.0,
        "PROMISE_OUTBOX_BATCH": 1000,
        "PROMISE_OUTBOX_POLL_MS": 20,
        "PROMISE_OUTBOX_LEASE_S": 5.0,
    },
    PricingSettings: {
        "PROMISE_PRICING_EVERY_ORDERS": None,
        "PROMISE_PRICING_EVERY_S": None,
        "PROMISE_PRICING_FORECAST": None,
        "PROMISE_PRICING_SCENARIOS": None,
        "PROMISE_PRICING_CHANNEL": "web",
        "PROMISE_PRICING_HORIZON_S": 86400.0,
        "PROMISE_PRICING_LOOKBACK_S": 604800.0,
        "PROMISE_PRICING_CELL_DEG": 1.0,
        "PROMISE_PRICING_LP": "units",
        "PROMISE_PRICING_BASKETS": 400,
        "PROMISE_PRICING_NEAREST": 8,
        "PROMISE_PRICING_CHECK_S": 5.0,
        "PROMISE_PRICING_LEASE_S": 30.0,
        "PROMISE_PRICING_TIMEOUT_S": 900.0,
    },
}
# One value of each class that is not its default, as the environment would spell it.
NOT_DEFAULT = {
    Settings: ("PROMISE_MAX_CART_LINES", "7", "max_cart_lines", 7),
    StockSettings: ("PROMISE_HOLD_TTL_S", "61", "hold_ttl_s", 61),
    EventSettings: ("PROMISE_EVENTS_CONSUME", "true", "events_consume", True),
    PricingSettings: ("PROMISE_PRICING_CHANNEL", "app", "pricing_channel", "app"),
}


@pytest.mark.parametrize("cls", list(VARIABLES), ids=lambda cls: cls.__name__)
def test_variable_names_and_defaults_are_the_documented_ones(cls: type[EnvSettings]) -> None:
    """Each class reads exactly the variables of the table, with the table's defaults."""
    defaults = cls.from_env({})
    read = {f"PROMISE_{name.upper()}": getattr(defaults, name) for name in cls.model_fields}
    assert read == VARIABLES[cls]


@pytest.mark.parametrize("cls", list(VARIABLES), ids=lambda cls: cls.__name__)
def test_the_process_environment_reads_as_a_given_mapping(
    cls: type[EnvSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """from_env() reads os.environ exactly as from_env(mapping) reads the mapping."""
    variable, text, field, value = NOT_DEFAULT[cls]
    monkeypatch.setenv(variable, text)
    monkeypatch.setenv("PROMISE_LOG_LEVEL", "")  # empty is unset, as in a mapping
    from_process = cls.from_env()
    assert getattr(from_process, field) == value
    assert from_process == cls.from_env({variable: text, "PROMISE_LOG_LEVEL": ""})


def test_settings_built_in_code_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A settings object made in code is its arguments and defaults, whatever is exported."""
    monkeypatch.setenv("PROMISE_DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("PROMISE_PORT", "9001")
    assert StockSettings(stock_path=Path("x.sqlite3")).database_url is None
    assert Settings().port == 8000
    assert StockSettings.from_env().database_url == "postgresql://elsewhere/db"


def test_overrides_win_over_the_environment_unless_none() -> None:
    """Command-line options override variables; an option left unset (None) does not."""
    environ = {"PROMISE_PORT": "9001", "PROMISE_WORKERS": "3"}
    settings = Settings.from_env(environ, port=9002, workers=None)
    assert (settings.port, settings.workers) == (9002, 3)


@pytest.mark.parametrize(
    ("cls", "environ", "named"),
    [
        # a number that is not one
        (Settings, {"PROMISE_PORT": "eighty"}, "PROMISE_PORT"),
        # out of range: libpq waits at least 2 s
        (StockSettings, {"PROMISE_DATABASE_CONNECT_TIMEOUT_S": "1"}, "PROMISE_DATABASE_CONNECT"),
        # not one of the enumeration's names, in any case
        (StockSettings, {"PROMISE_SQLITE_SYNCHRONOUS": "off"}, "PROMISE_SQLITE_SYNCHRONOUS"),
        # a stream name with a NATS separator in it
        (EventSettings, {"PROMISE_EVENTS_STREAM": "a.b"}, "PROMISE_EVENTS_STREAM"),
        # re-pricing every zero orders
        (PricingSettings, {"PROMISE_PRICING_EVERY_ORDERS": "0"}, "PROMISE_PRICING_EVERY_ORDERS"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(
    cls: type[EnvSettings], environ: dict[str, str], named: str
) -> None:
    """The error names the variable, so an operator knows which one to fix."""
    with pytest.raises(SettingsError, match=named):
        cls.from_env(environ)


def test_enumerations_are_read_in_any_case() -> None:
    """Log level and SQLite sync mode are names, accepted as an operator may type them."""
    assert Settings.from_env({"PROMISE_LOG_LEVEL": "warning"}).log_level == "WARNING"
    stock = StockSettings.from_env({"PROMISE_SQLITE_SYNCHRONOUS": "normal"})
    assert stock.sqlite_synchronous == "NORMAL"


def test_a_bad_variable_stops_serve_at_start_naming_it(tmp_path: Path) -> None:
    """`promise serve` with a bad PROMISE_* value exits before serving, naming the variable."""
    done = subprocess.run(  # our own interpreter and module
        [sys.executable, "-m", "promise.cli", "serve", "--data-dir", str(tmp_path)],
        env={"PROMISE_MAX_CART_LINES": "many", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "PROMISE_MAX_CART_LINES" in done.stderr
