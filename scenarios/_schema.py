"""The scenario store's schema: tables, numbered migrations and the fixed statements.

What the tables hold is described in ``scenarios._store``; this module is their definition.
Schema changes are numbered migrations (``MIGRATIONS``), applied in order, each in its own
transaction, and recorded in ``schema_version``. Every statement is parameterised.

Tables::

    networks   version (content hash) | label | as_of | nodes | skus | body (gzip JSON) | created
    scenarios  id | network_version | snapshot_version | as_of | requested_at | channel | lines
               | units | request (JSON) | inventory (JSON rows) | decision (JSON, nullable)
               | tags | captured_at | prices (JSON, nullable: the opportunity-cost prices of the
               cart's SKUs the decision was made with)
    runs       run_id | label | engine | policy_name | policy_hash | policy (TOML-equivalent
               JSON) | code_version | selection | levels | workers | started | duration_s
               | scenario_count
    results    run_id | scenario_id | level | status | fallback | shipping | handling | labour
               | total_cost | revenue | margin | objective | split_count | shipments
               | promised_days | unfilled_units | solve_ms | recommended | checker_ok
               | violations | error
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import duckdb

from scenarios.migrations import Migration, MigrationError, StatementSession
from scenarios.migrations import migrate as run_migrations

__all__ = [
    "INSERT_BATCH",
    "INSERT_NETWORKS",
    "INSERT_RESULTS",
    "INSERT_SCENARIOS",
    "MEMORY",
    "MIGRATIONS",
    "NETWORK_NAMES",
    "PRICES_SCHEMA",
    "RESULT_COLUMNS",
    "SCENARIO_NAMES",
    "SCENARIO_NAMES_UNPRICED",
    "SCENARIO_TABLE",
    "SELECTED_NETWORKS",
    "SELECT_WHERE",
    "StoreError",
    "default_store_path",
    "first_row",
    "migrate",
    "one_row",
]

DATA_DIR_ENV: Final = "PROMISE_DATA_DIR"
STORE_FILE: Final = "scenarios.duckdb"
MEMORY: Final = ":memory:"
# Rows per INSERT statement: big enough to amortise the statement, small enough for memory.
INSERT_BATCH = 5_000

_MIGRATION_SQL: Final[tuple[str, ...]] = (
    # 1: the four tables.
    """
    CREATE TABLE networks (
        version VARCHAR PRIMARY KEY,
        label VARCHAR NOT NULL,
        as_of TIMESTAMPTZ NOT NULL,
        nodes INTEGER NOT NULL,
        skus INTEGER NOT NULL,
        body BLOB NOT NULL,
        created TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE scenarios (
        id VARCHAR PRIMARY KEY,
        network_version VARCHAR NOT NULL,
        snapshot_version VARCHAR NOT NULL,
        as_of TIMESTAMPTZ NOT NULL,
        requested_at TIMESTAMPTZ NOT NULL,
        channel VARCHAR NOT NULL,
        lines INTEGER NOT NULL,
        units INTEGER NOT NULL,
        request JSON NOT NULL,
        inventory JSON NOT NULL,
        decision JSON,
        tags VARCHAR[] NOT NULL,
        captured_at TIMESTAMPTZ NOT NULL
    );
    CREATE SEQUENCE run_ids START 1;
    CREATE TABLE runs (
        run_id BIGINT PRIMARY KEY,
        label VARCHAR NOT NULL,
        engine VARCHAR NOT NULL,
        policy_name VARCHAR NOT NULL,
        policy_hash VARCHAR NOT NULL,
        policy JSON NOT NULL,
        code_version VARCHAR NOT NULL,
        selection VARCHAR NOT NULL,
        levels VARCHAR NOT NULL,
        workers INTEGER NOT NULL,
        started TIMESTAMPTZ NOT NULL,
        duration_s DOUBLE NOT NULL,
        scenario_count INTEGER NOT NULL
    );
    CREATE TABLE results (
        run_id BIGINT NOT NULL,
        scenario_id VARCHAR NOT NULL,
        level VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        fallback BOOLEAN NOT NULL,
        shipping BIGINT NOT NULL,
        handling BIGINT NOT NULL,
        labour BIGINT NOT NULL,
        total_cost BIGINT NOT NULL,
        revenue BIGINT NOT NULL,
        margin BIGINT NOT NULL,
        objective BIGINT NOT NULL,
        split_count INTEGER NOT NULL,
        shipments INTEGER NOT NULL,
        promised_days INTEGER,
        unfilled_units INTEGER NOT NULL,
        solve_ms DOUBLE NOT NULL,
        recommended BOOLEAN NOT NULL,
        checker_ok BOOLEAN NOT NULL,
        violations VARCHAR,
        error VARCHAR,
        PRIMARY KEY (run_id, scenario_id, level)
    );
    """,
    # 2: one row per result with the facts KPIs group by (cart size, completeness).
    """
    CREATE VIEW result_facts AS
    SELECT r.*,
           s.lines,
           s.units,
           s.channel,
           r.status IN ('optimal', 'feasible', 'fallback') AS complete
    FROM results r
    JOIN scenarios s ON s.id = r.scenario_id;
    """,
    # 3: the price slice a captured decision was charged (its check needs the same table).
    "ALTER TABLE scenarios ADD COLUMN prices JSON;",
)
_MIGRATION_SUMMARIES: Final = (
    "networks, scenarios, runs and results",
    "result_facts view: results with the facts KPIs group by",
    "scenarios: the opportunity-cost prices of the cart's SKUs",
)
# The first schema whose scenarios carry their prices: older stores read them as none.
PRICES_SCHEMA: Final = 3
MIGRATIONS: Final[tuple[Migration, ...]] = tuple(
    Migration(number, summary, (sql,))
    for number, (summary, sql) in enumerate(
        zip(_MIGRATION_SUMMARIES, _MIGRATION_SQL, strict=True), start=1
    )
)

# Result columns and types in insertion order (after run_id).
_RESULT_SCHEMA: Final[tuple[tuple[str, str], ...]] = (
    ("scenario_id", "VARCHAR"),
    ("level", "VARCHAR"),
    ("status", "VARCHAR"),
    ("fallback", "BOOLEAN"),
    ("shipping", "BIGINT"),
    ("handling", "BIGINT"),
    ("labour", "BIGINT"),
    ("total_cost", "BIGINT"),
    ("revenue", "BIGINT"),
    ("margin", "BIGINT"),
    ("objective", "BIGINT"),
    ("split_count", "INTEGER"),
    ("shipments", "INTEGER"),
    ("promised_days", "INTEGER"),
    ("unfilled_units", "INTEGER"),
    ("solve_ms", "DOUBLE"),
    ("recommended", "BOOLEAN"),
    ("checker_ok", "BOOLEAN"),
    ("violations", "VARCHAR"),
    ("error", "VARCHAR"),
)
RESULT_COLUMNS: Final[tuple[str, ...]] = tuple(name for name, _ in _RESULT_SCHEMA)
_SCENARIO_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("id", "VARCHAR"),
    ("network_version", "VARCHAR"),
    ("snapshot_version", "VARCHAR"),
    ("as_of", "TIMESTAMPTZ"),
    ("requested_at", "TIMESTAMPTZ"),
    ("channel", "VARCHAR"),
    ("lines", "INTEGER"),
    ("units", "INTEGER"),
    ("request", "JSON"),
    ("inventory", "JSON"),
    ("decision", "JSON"),
    ("tags", "VARCHAR[]"),
    ("captured_at", "TIMESTAMPTZ"),
    ("prices", "JSON"),
)
_NETWORK_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("version", "VARCHAR"),
    ("label", "VARCHAR"),
    ("as_of", "TIMESTAMPTZ"),
    ("nodes", "INTEGER"),
    ("skus", "INTEGER"),
    ("body", "BLOB"),
    ("created", "TIMESTAMPTZ"),
)


def _unnest_insert(table: str, columns: Sequence[tuple[str, str]], *, ignore: bool) -> str:
    """An INSERT that takes one list parameter per column (rows zipped by ``unnest``).

    Only table and column names from the constants above are interpolated; values are always
    bound parameters.
    """
    names = ", ".join(name for name, _ in columns)
    values = ", ".join(f"unnest(?::{kind}[])" for _, kind in columns)
    verb = "INSERT OR IGNORE INTO" if ignore else "INSERT INTO"
    return f"{verb} {table} ({names}) SELECT {values}"


INSERT_SCENARIOS: Final = _unnest_insert("scenarios", _SCENARIO_COLUMNS, ignore=True)
INSERT_NETWORKS: Final = _unnest_insert("networks", _NETWORK_COLUMNS, ignore=True)
INSERT_RESULTS: Final = _unnest_insert(
    "results",
    (("run_id", "BIGINT"), *_RESULT_SCHEMA),
    ignore=False,
)
SCENARIO_NAMES: Final = ", ".join(name for name, _ in _SCENARIO_COLUMNS)
# The same columns from a store or an export made before scenarios had prices.
SCENARIO_NAMES_UNPRICED: Final = SCENARIO_NAMES.replace("prices", "NULL AS prices")
NETWORK_NAMES: Final = ", ".join(name for name, _ in _NETWORK_COLUMNS)
SELECT_WHERE: Final = """
    ($ids::VARCHAR[] IS NULL OR id IN (SELECT unnest($ids::VARCHAR[])))
    AND ($tag::VARCHAR IS NULL OR list_contains(tags, $tag::VARCHAR))
    AND ($since::TIMESTAMPTZ IS NULL OR requested_at >= $since::TIMESTAMPTZ)
    AND ($until::TIMESTAMPTZ IS NULL OR requested_at < $until::TIMESTAMPTZ)
"""

# Only constant identifiers and the fixed WHERE clause are interpolated into these queries.
SCENARIO_TABLE: Final = (
    "SELECT id, network_version, snapshot_version, requested_at, channel, lines, units, "  # noqa: S608
    "decision IS NOT NULL AS has_decision, tags, captured_at FROM scenarios "
    f"WHERE {SELECT_WHERE} ORDER BY id"
)
SELECTED_NETWORKS: Final = (
    "SELECT DISTINCT network_version FROM scenarios "  # noqa: S608
    f"WHERE {SELECT_WHERE} ORDER BY network_version"
)


class StoreError(RuntimeError):
    """The store file cannot be used (newer schema, missing network, corrupt import)."""


def first_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a query result, reading the result to its end.

    DuckDB refuses further relation work on a connection with an unfinished result.
    """
    rows = result.fetchall()
    return rows[0] if rows else None


def one_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The row of a query that always returns one (aggregates, nextval)."""
    row = first_row(result)
    if row is None:
        raise StoreError("query returned no row")
    return row


def default_store_path() -> Path:
    """``$PROMISE_DATA_DIR/scenarios.duckdb``, else ``data/scenarios.duckdb``."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data") / STORE_FILE


class _DuckSession(StatementSession):
    """A DuckDB connection as the migration runner drives it."""

    begin_statement = "BEGIN TRANSACTION"

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Wrap ``connection``."""
        self._con = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (a migration may hold several); its rows."""
        cursor = self._con.execute(sql, list(params)) if params else self._con.execute(sql)
        try:
            return cursor.fetchall()
        except duckdb.InvalidInputException:
            return []  # DDL has no result set


def migrate(connection: duckdb.DuckDBPyConnection, *, upto: int | None = None) -> int:
    """Apply pending migrations (up to ``upto``), each in a transaction; the new version."""
    try:
        return run_migrations(
            _DuckSession(connection), MIGRATIONS, store="scenario store", upto=upto
        )
    except MigrationError as exc:
        raise StoreError(str(exc)) from exc
