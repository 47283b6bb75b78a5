"""The live-stock authority's schema, as numbered migrations (SQLite and PostgreSQL alike).

Migration 1 is the schema as first shipped (``IF NOT EXISTS`` adopts a store made before the
runner); never edit a shipped migration, add the next one.
"""

from __future__ import annotations

from promise.stock._price_queries import PRICES_SCHEMA
from promise.stock._resourcing_queries import ORDERS_SCHEMA
from promise.stock.access import ACCESS_SCHEMA
from promise.stock.outbox import OUTBOX_SCHEMA
from scenarios.migrations import Migration

__all__ = ["MIGRATIONS"]

_SHIPPED_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS stock_meta (
        key TEXT PRIMARY KEY,
        value BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS stock_rows (
        node_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        count_seq BIGINT,
        count_value BIGINT NOT NULL DEFAULT 0,
        delta_sum BIGINT NOT NULL DEFAULT 0,
        changed_version BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (node_id, sku))""",
    "CREATE INDEX IF NOT EXISTS stock_rows_changed ON stock_rows (changed_version)",
    """CREATE TABLE IF NOT EXISTS stock_events (
        event_id TEXT PRIMARY KEY,
        node_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        type TEXT NOT NULL,
        quantity BIGINT NOT NULL,
        delta BIGINT,
        seq BIGINT NOT NULL,
        occurred_at BIGINT NOT NULL,
        eta BIGINT,
        reservation_id TEXT,
        lot_id TEXT,
        outcome TEXT NOT NULL,
        reason TEXT,
        digest TEXT NOT NULL,
        recorded_at BIGINT NOT NULL)""",
    # A count sums the deltas recorded after it: one index range per count.
    """CREATE INDEX IF NOT EXISTS stock_events_deltas ON stock_events (node_id, sku, seq)
        WHERE delta IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS stock_lots (
        lot_id TEXT PRIMARY KEY,
        node_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        quantity BIGINT,
        eta BIGINT,
        closed SMALLINT NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS stock_lots_row ON stock_lots (node_id, sku, closed)",
    """CREATE TABLE IF NOT EXISTS stock_holds (
        hold_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        channel TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        confirmed_at BIGINT,
        ended_at BIGINT,
        promise_id TEXT,
        service_level TEXT,
        idempotency_key TEXT)""",
    """CREATE INDEX IF NOT EXISTS stock_holds_lapsing ON stock_holds (expires_at)
        WHERE status = 'held'""",
    """CREATE TABLE IF NOT EXISTS stock_hold_lines (
        hold_id TEXT NOT NULL,
        line_no INTEGER NOT NULL,
        node_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        quantity BIGINT NOT NULL,
        consumed BIGINT NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (hold_id, line_no))""",
    # Live lines of a row are one index range per status, however many lines it ever had.
    """CREATE INDEX IF NOT EXISTS stock_hold_lines_row
        ON stock_hold_lines (node_id, sku, status)""",
    """CREATE TABLE IF NOT EXISTS stock_idempotency (
        key TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        status_code INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS stock_promises (
        promise_id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        expires_at BIGINT NOT NULL)""",
    "INSERT INTO stock_meta (key, value) VALUES ('version', 0) ON CONFLICT (key) DO NOTHING",
)
# The live network in the authority: bodies stored once per content digest, one history row
# per generation made live; the live generation is the 'snapshot' counter of stock_meta, read
# in the same statement as the stock version. Holds and events record the generation they
# were judged under.
_SNAPSHOT_AUTHORITY = (
    """CREATE TABLE snapshot_bodies (
        digest TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        body BYTEA NOT NULL,
        raw_bytes BIGINT NOT NULL,
        stored_at BIGINT NOT NULL)""",
    """CREATE TABLE snapshot_history (
        generation BIGINT PRIMARY KEY,
        digest TEXT NOT NULL,
        version TEXT NOT NULL,
        made_live_at BIGINT NOT NULL,
        origin TEXT NOT NULL)""",
    "INSERT INTO stock_meta (key, value) VALUES ('snapshot', 0) ON CONFLICT (key) DO NOTHING",
    "ALTER TABLE stock_holds ADD COLUMN snapshot_generation BIGINT",
    "ALTER TABLE stock_events ADD COLUMN snapshot_generation BIGINT",
)
MIGRATIONS = (
    Migration(1, "stock rows, events, lots, holds, idempotency, promises", _SHIPPED_SCHEMA),
    Migration(
        2,
        "live snapshot in the authority; judged generation on holds and events",
        _SNAPSHOT_AUTHORITY,
    ),
    Migration(3, "api keys, audit trail, principal on holds", ACCESS_SCHEMA),
    Migration(4, "transactional outbox of changes to publish", OUTBOX_SCHEMA),
    Migration(5, "the orders behind holds, for re-sourcing", ORDERS_SCHEMA),
    Migration(6, "versioned opportunity-cost price table", PRICES_SCHEMA),
)
