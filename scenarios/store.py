"""The scenario store: networks, scenarios, replay runs and their results in one DuckDB file.

A *scenario* is a promise request plus the slice of the snapshot it needs: a reference to the
network (nodes, services, catalog, channel policies; stored once per content version) and only
the inventory rows of the cart's SKUs, so a scenario replays on its own. The recorded decision
is kept where it is known (captured traffic). A *run* replays a set of scenarios under an
engine and a policy; *results* hold one row per scenario, service level and run.

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

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any, Final, Generic, TypeVar

import duckdb
import numpy as np
from pydantic import AwareDatetime, Field, TypeAdapter

from models import (
    MAX_PRICE_CENTS,
    NO_PRICES,
    CarrierService,
    CatalogItem,
    ChannelPolicy,
    Frozen,
    InTransitLot,
    InventoryPosition,
    Node,
    PerSnapshot,
    PromiseRequest,
    PromiseResult,
    Snapshot,
    StockPrices,
)
from scenarios.migrations import Migration, MigrationError, StatementSession
from scenarios.migrations import migrate as run_migrations
from solver import Inventory

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DATA_DIR_ENV",
    "MEMORY",
    "MIGRATIONS",
    "RESULT_COLUMNS",
    "Network",
    "RowBoundedCache",
    "RunInfo",
    "Scenario",
    "ScenarioPrices",
    "ScenarioRecord",
    "ScenarioStore",
    "Selection",
    "StoreError",
    "base_snapshot",
    "decode_network",
    "default_store_path",
    "inventory_lines",
    "inventory_text",
    "migrate",
    "network_body",
    "network_version",
    "new_scenario_id",
    "parse_inventory",
    "parse_line",
    "record_of",
    "scenario_prices",
    "scenario_snapshot",
]

log = logging.getLogger(__name__)

V = TypeVar("V")

DATA_DIR_ENV: Final = "PROMISE_DATA_DIR"
STORE_FILE: Final = "scenarios.duckdb"
MEMORY: Final = ":memory:"
# Rows per INSERT statement: big enough to amortise the statement, small enough for memory.
_INSERT_BATCH = 5_000

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
_PRICES_SCHEMA: Final = 3
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


_INSERT_SCENARIOS: Final = _unnest_insert("scenarios", _SCENARIO_COLUMNS, ignore=True)
_INSERT_NETWORKS: Final = _unnest_insert("networks", _NETWORK_COLUMNS, ignore=True)
_INSERT_RESULTS: Final = _unnest_insert(
    "results",
    (("run_id", "BIGINT"), *_RESULT_SCHEMA),
    ignore=False,
)
_SCENARIO_NAMES: Final = ", ".join(name for name, _ in _SCENARIO_COLUMNS)
# The same columns from a store or an export made before scenarios had prices.
_SCENARIO_NAMES_UNPRICED: Final = _SCENARIO_NAMES.replace("prices", "NULL AS prices")
_NETWORK_NAMES: Final = ", ".join(name for name, _ in _NETWORK_COLUMNS)
_SELECT_WHERE: Final = """
    ($ids::VARCHAR[] IS NULL OR id IN (SELECT unnest($ids::VARCHAR[])))
    AND ($tag::VARCHAR IS NULL OR list_contains(tags, $tag::VARCHAR))
    AND ($since::TIMESTAMPTZ IS NULL OR requested_at >= $since::TIMESTAMPTZ)
    AND ($until::TIMESTAMPTZ IS NULL OR requested_at < $until::TIMESTAMPTZ)
"""

# Only constant identifiers and the fixed WHERE clause are interpolated into these queries.
_SCENARIO_TABLE: Final = (
    "SELECT id, network_version, snapshot_version, requested_at, channel, lines, units, "  # noqa: S608
    "decision IS NOT NULL AS has_decision, tags, captured_at FROM scenarios "
    f"WHERE {_SELECT_WHERE} ORDER BY id"
)
_SELECTED_NETWORKS: Final = (
    "SELECT DISTINCT network_version FROM scenarios "  # noqa: S608
    f"WHERE {_SELECT_WHERE} ORDER BY network_version"
)


class StoreError(RuntimeError):
    """The store file cannot be used (newer schema, missing network, corrupt import)."""


def _first(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a query result, reading the result to its end.

    DuckDB refuses further relation work on a connection with an unfinished result.
    """
    rows = result.fetchall()
    return rows[0] if rows else None


def _one(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The row of a query that always returns one (aggregates, nextval)."""
    row = _first(result)
    if row is None:
        raise StoreError("query returned no row")
    return row


def default_store_path() -> Path:
    """``$PROMISE_DATA_DIR/scenarios.duckdb``, else ``data/scenarios.duckdb``."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data") / STORE_FILE


# --------------------------------------------------------------------------------------------
# Networks: the part of a snapshot that is not inventory, stored once per content version.


class Network(Frozen):
    """Nodes, carrier services, catalog and channel policies: a snapshot without stock."""

    nodes: tuple[Node, ...] = Field(min_length=1)
    services: tuple[CarrierService, ...] = Field(min_length=1)
    items: tuple[CatalogItem, ...] = ()
    policies: tuple[ChannelPolicy, ...] = Field(min_length=1)

    @classmethod
    def of(cls, snapshot: Snapshot) -> Network:
        """The network of ``snapshot``."""
        return cls(
            nodes=snapshot.nodes,
            services=snapshot.services,
            items=snapshot.items,
            policies=snapshot.policies,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _NetworkFacts:
    """What the store needs about one snapshot object's network, computed once."""

    version: str
    body: bytes
    rows_by_sku: dict[str, tuple[int, ...]]  # SKU → positions in snapshot.inventory
    fragments: dict[str, str]  # SKU → its line of the inventory text (filled lazily)


# Keyed by id(snapshot) and confirmed by a weak reference: hashing a 2,000-SKU network costs
# tens of milliseconds, and a capture sees the same snapshot object for thousands of requests.
_FACTS: PerSnapshot[_NetworkFacts] = PerSnapshot(8)


def _digest(body_json: bytes) -> str:
    """Content version of a network's canonical JSON."""
    return "net-" + hashlib.sha256(body_json).hexdigest()[:20]


def _facts(snapshot: Snapshot) -> _NetworkFacts:
    """The cached network facts of ``snapshot``."""
    return _FACTS.get(snapshot, _build_facts)


def _build_facts(snapshot: Snapshot) -> _NetworkFacts:
    """Version, compressed body and row positions by SKU of ``snapshot``'s network."""
    body_json = Network.of(snapshot).model_dump_json().encode()
    by_sku: dict[str, list[int]] = {}
    for position, row in enumerate(snapshot.inventory):
        by_sku.setdefault(row.sku, []).append(position)
    return _NetworkFacts(
        version=_digest(body_json),
        # mtime=0 keeps the compressed body a pure function of the network.
        body=gzip.compress(body_json, compresslevel=6, mtime=0),
        rows_by_sku={sku: tuple(rows) for sku, rows in by_sku.items()},
        fragments={},
    )


def network_version(snapshot: Snapshot) -> str:
    """Content version of ``snapshot``'s network (equal networks share it, stock aside)."""
    return _facts(snapshot).version


def network_body(snapshot: Snapshot) -> bytes:
    """Gzipped canonical JSON of ``snapshot``'s network."""
    return _facts(snapshot).body


def decode_network(body: bytes) -> Network:
    """Parse a stored network body."""
    return Network.model_validate_json(gzip.decompress(body))


# Parsed networks by content version: a version names immutable content, so entries never go
# stale; a replay worker parses each network once.
_PARSED: dict[str, Snapshot] = {}
_PARSED_SIZE = 4
_PARSED_LOCK = threading.Lock()


def base_snapshot(version: str, body: bytes, *, label: str, as_of: dt.datetime) -> Snapshot:
    """The network of ``version`` as a snapshot without inventory, parsed once per process."""
    with _PARSED_LOCK:
        found = _PARSED.get(version)
    if found is not None:
        return found
    raw = gzip.decompress(body)
    if _digest(raw) != version:
        raise StoreError(f"network body does not match its version {version}")
    network = Network.model_validate_json(raw)
    snapshot = Snapshot(
        version=label,
        as_of=as_of,
        nodes=network.nodes,
        services=network.services,
        items=network.items,
        inventory=(),
        policies=network.policies,
    )
    with _PARSED_LOCK:
        _PARSED[version] = snapshot
        while len(_PARSED) > _PARSED_SIZE:
            del _PARSED[next(iter(_PARSED))]
    return snapshot


def scenario_snapshot(
    base: Snapshot,
    inventory: tuple[InventoryPosition, ...],
    *,
    version: str,
    as_of: dt.datetime,
    skus: Iterable[str] | None = None,
) -> Snapshot:
    """The snapshot a scenario replays on: ``base``'s network with only its inventory slice.

    With ``skus`` (the cart's), the catalog is cut down to those SKUs too: a solve or a check
    of that cart reads nothing else, and per-snapshot lookups stay small.

    ``model_copy`` skips validation, so what a full validation would check of the rows (known
    nodes and SKUs, no repeated row) is checked here against lookups cached with the base.
    """
    nodes, items = _known(base)
    unknown = {row.node_id for row in inventory} - nodes.keys()
    unknown |= {row.sku for row in inventory} - items.keys()
    if unknown:
        raise StoreError(f"inventory slice names unknown nodes or SKUs: {sorted(unknown)[:5]}")
    if len({(row.node_id, row.sku) for row in inventory}) != len(inventory):
        raise StoreError("inventory slice repeats a (node_id, sku) row")
    update: dict[str, object] = {"inventory": inventory, "version": version, "as_of": as_of}
    if skus is not None:
        wanted = set(skus) | {row.sku for row in inventory}
        update["items"] = tuple(items[sku] for sku in sorted(wanted) if sku in items)
    return base.model_copy(update=update)


_KNOWN: PerSnapshot[tuple[dict[str, Node], dict[str, CatalogItem]]] = PerSnapshot(_PARSED_SIZE * 2)


def _known(base: Snapshot) -> tuple[dict[str, Node], dict[str, CatalogItem]]:
    """Nodes and catalog items of a base snapshot by id (cached per object)."""
    return _KNOWN.get(
        base,
        lambda snapshot: (
            {node.node_id: node for node in snapshot.nodes},
            {item.sku: item for item in snapshot.items},
        ),
    )


# --------------------------------------------------------------------------------------------
# Scenarios: the domain form (validated) and the serialized form (one table row).


# Inventory slices are stored as a JSON array of rows, one SKU's rows per text line:
#
#     [
#     {"node_id":"dc-01","sku":"SKU-1",...},{"node_id":"store-0007","sku":"SKU-1",...},
#     {"node_id":"dc-01","sku":"SKU-9",...}
#     ]
#
# Still plain JSON for SQL and notebooks; and since popular SKUs recur in many carts, a replay
# worker parses each distinct line once (JSON never holds a raw newline inside a value).
_ROWS = TypeAdapter(tuple[InventoryPosition, ...])
_LINE = ",\n"
_EMPTY = "[]"
_MAX_PARSED_ROWS = 100_000


class RowBoundedCache(Generic[V]):
    """A least-recently-used map bounded by the number of inventory rows its values hold."""

    def __init__(self, max_rows: int) -> None:
        """An empty cache holding at most ``max_rows`` rows (and always the newest entry)."""
        self._entries: OrderedDict[object, tuple[V, int]] = OrderedDict()
        self._rows = 0
        self._max_rows = max_rows
        self._lock = threading.Lock()

    def get(self, key: object) -> V | None:
        """The cached value, marked as recently used."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[0]

    def put(self, key: object, value: V, rows: int) -> None:
        """Remember ``value`` (holding ``rows`` rows), evicting the least recently used."""
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = (value, rows)
            self._rows += rows
            while self._rows > self._max_rows and len(self._entries) > 1:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._rows -= dropped


_PARSED_LINES: RowBoundedCache[tuple[InventoryPosition, ...]] = RowBoundedCache(_MAX_PARSED_ROWS)


def _fragment(rows: tuple[InventoryPosition, ...]) -> str:
    """One SKU's rows as a line (without brackets)."""
    return _ROWS.dump_json(rows).decode()[1:-1]


def _join(fragments: Sequence[str]) -> str:
    """Lines of SKU rows as the stored inventory text."""
    return "[\n" + _LINE.join(fragments) + "\n]" if fragments else _EMPTY


def inventory_text(rows: Sequence[InventoryPosition]) -> str:
    """The stored text of an inventory slice: rows grouped by SKU, one SKU per line."""
    by_sku: dict[str, list[InventoryPosition]] = {}
    for row in rows:
        by_sku.setdefault(row.sku, []).append(row)
    return _join([_fragment(tuple(by_sku[sku])) for sku in sorted(by_sku)])


def inventory_lines(text: str) -> list[str] | None:
    """The SKU lines of a stored inventory text, or None when it is not in the stored layout."""
    if text == _EMPTY:
        return []
    if not (text.startswith("[\n") and text.endswith("\n]")):
        return None
    return text[2:-2].split(_LINE)


def parse_inventory(text: str) -> tuple[InventoryPosition, ...]:
    """Validated rows of a stored inventory text (each distinct SKU line parsed once)."""
    lines = inventory_lines(text)
    if lines is None:
        return _ROWS.validate_json(text)
    rows: list[InventoryPosition] = []
    for line in lines:
        rows.extend(parse_line(line))
    return tuple(rows)


def parse_line(line: str) -> tuple[InventoryPosition, ...]:
    """Validated rows of one SKU line (cached)."""
    found = _PARSED_LINES.get(line)
    if found is None:
        found = _ROWS.validate_json("[" + line + "]")
        _PARSED_LINES.put(line, found, len(found))
    return found


def new_scenario_id() -> str:
    """A fresh, globally unique scenario id (captures from many processes never collide)."""
    return "sc-" + uuid.uuid4().hex


@dataclasses.dataclass(frozen=True, slots=True)
class ScenarioRecord:
    """One row of the scenarios table, JSON columns already serialized."""

    scenario_id: str
    network_version: str
    snapshot_version: str
    as_of: dt.datetime
    requested_at: dt.datetime
    channel: str
    lines: int
    units: int
    request: str
    inventory: str
    decision: str | None
    tags: tuple[str, ...]
    captured_at: dt.datetime
    prices: str | None = None

    def row(self) -> tuple[Any, ...]:
        """Values in table column order."""
        return (
            self.scenario_id,
            self.network_version,
            self.snapshot_version,
            self.as_of,
            self.requested_at,
            self.channel,
            self.lines,
            self.units,
            self.request,
            self.inventory,
            self.decision,
            list(self.tags),
            self.captured_at,
            self.prices,
        )


_Id = Annotated[str, Field(min_length=1, max_length=64)]


class ScenarioPrices(Frozen):
    """The opportunity-cost prices a decision was made with, for the cart's SKUs only."""

    version: Annotated[int, Field(ge=0)]
    rows: tuple[tuple[_Id, _Id, Annotated[int, Field(ge=0, le=MAX_PRICE_CENTS)]], ...]

    @classmethod
    def of(cls, prices: StockPrices, skus: Iterable[str]) -> ScenarioPrices | None:
        """The slice of ``prices`` for ``skus`` (None for no table at all)."""
        if prices.version == 0 and not len(prices):
            return None
        rows = sorted(
            (node_id, sku, cents)
            for sku in set(skus)
            for node_id, cents in prices.by_sku.get(sku, {}).items()
        )
        return cls(version=prices.version, rows=tuple(rows))

    def stock_prices(self) -> StockPrices:
        """The slice as the solver and the checker take it."""
        return StockPrices.of(self.rows, version=self.version)


def scenario_prices(text: str | None) -> StockPrices:
    """The prices of a stored price slice (none for a scenario without one)."""
    if text is None:
        return NO_PRICES
    return ScenarioPrices.model_validate_json(text).stock_prices()


class Scenario(Frozen):
    """A request with the inventory slice it needs, its network version and what was decided."""

    scenario_id: str = Field(min_length=1, max_length=128)
    network_version: str = Field(min_length=1, max_length=64)
    snapshot_version: str = Field(min_length=1, max_length=64)
    as_of: AwareDatetime
    request: PromiseRequest
    inventory: tuple[InventoryPosition, ...] = ()
    decision: PromiseResult | None = None
    tags: tuple[str, ...] = ()
    captured_at: AwareDatetime
    prices: ScenarioPrices | None = None

    @property
    def requested_at(self) -> dt.datetime:
        """The order instant (the capture time for a request that carried none)."""
        return self.request.requested_at or self.captured_at

    def record(self) -> ScenarioRecord:
        """The serialized form."""
        return ScenarioRecord(
            scenario_id=self.scenario_id,
            network_version=self.network_version,
            snapshot_version=self.snapshot_version,
            as_of=self.as_of,
            requested_at=self.requested_at,
            channel=self.request.cart.channel,
            lines=len(self.request.cart.lines),
            units=sum(line.quantity for line in self.request.cart.lines),
            request=self.request.model_dump_json(exclude_none=True),
            inventory=inventory_text(self.inventory),
            decision=None if self.decision is None else self.decision.model_dump_json(),
            tags=self.tags,
            captured_at=self.captured_at,
            prices=None if self.prices is None else self.prices.model_dump_json(),
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Scenario:
        """Parse a row in table column order."""
        (
            scenario_id,
            network,
            snapshot_version,
            as_of,
            _requested_at,
            _channel,
            _lines,
            _units,
            request,
            inventory,
            decision,
            tags,
            captured_at,
            prices,
        ) = row
        return cls(
            scenario_id=scenario_id,
            network_version=network,
            snapshot_version=snapshot_version,
            as_of=as_of,
            request=PromiseRequest.model_validate_json(request),
            inventory=parse_inventory(inventory),
            decision=None if decision is None else PromiseResult.model_validate_json(decision),
            tags=tuple(tags),
            captured_at=captured_at,
            prices=None if prices is None else ScenarioPrices.model_validate_json(prices),
        )


def _slice_json(snapshot: Snapshot, skus: Iterable[str], inventory: Inventory | None) -> str:
    """Inventory text of the rows of ``skus`` (live stock when ``inventory`` is given)."""
    if inventory is not None:
        return inventory_text(_live_rows(inventory, skus))
    facts = _facts(snapshot)
    parts: list[str] = []
    for sku in sorted(set(skus)):
        fragment = facts.fragments.get(sku)
        if fragment is None:
            fragment = _fragment(
                tuple(snapshot.inventory[k] for k in facts.rows_by_sku.get(sku, ()))
            )
            facts.fragments[sku] = fragment
        if fragment:
            parts.append(fragment)
    return _join(parts)


def _live_rows(inventory: Inventory, skus: Iterable[str]) -> tuple[InventoryPosition, ...]:
    """Rows of ``skus`` from live stock arrays."""
    snapshot = inventory.snapshot
    sku_pos = {item.sku: k for k, item in enumerate(snapshot.items)}
    wanted = np.array(sorted({sku_pos[s] for s in skus if s in sku_pos}), dtype=np.int64)
    rows = np.flatnonzero(np.isin(inventory.sku, wanted))
    rows = rows[np.lexsort((inventory.node[rows], inventory.sku[rows]))]
    out: list[InventoryPosition] = []
    for row in rows.tolist():
        lots = np.flatnonzero(inventory.lot_row == row).tolist()
        out.append(
            InventoryPosition(
                node_id=snapshot.nodes[int(inventory.node[row])].node_id,
                sku=snapshot.items[int(inventory.sku[row])].sku,
                on_hand=int(inventory.on_hand[row]),
                reserved=int(inventory.reserved[row]),
                safety_stock=int(inventory.safety_stock[row]),
                unit_cost=int(inventory.unit_cost[row]),
                in_transit=tuple(
                    InTransitLot(
                        quantity=int(inventory.lot_qty[k]),
                        eta=dt.date.fromordinal(int(inventory.lot_eta[k])),
                    )
                    for k in lots
                ),
            )
        )
    return tuple(out)


def record_of(
    request: PromiseRequest,
    snapshot: Snapshot,
    result: PromiseResult | None = None,
    *,
    tags: Sequence[str] = (),
    scenario_id: str | None = None,
    inventory: Inventory | None = None,
    captured_at: dt.datetime | None = None,
    prices: StockPrices = NO_PRICES,
) -> ScenarioRecord:
    """The scenario of a promise: the request, its inventory slice and the decision if known.

    A request without ``requested_at`` takes the order instant the result was made for, so
    the scenario replays at the same instant. ``prices`` (the opportunity-cost table the
    decision was charged) is kept for the cart's SKUs.
    """
    captured = captured_at or dt.datetime.now(dt.UTC)
    requested_at = request.requested_at
    if requested_at is None and result is not None:
        requested_at = result.requested_at
        request = request.model_copy(update={"requested_at": requested_at})
    skus = [line.sku for line in request.cart.lines]
    priced = ScenarioPrices.of(prices, skus)
    return ScenarioRecord(
        scenario_id=scenario_id or new_scenario_id(),
        network_version=network_version(snapshot),
        snapshot_version=snapshot.version,
        as_of=snapshot.as_of,
        requested_at=requested_at or captured,
        channel=request.cart.channel,
        lines=len(request.cart.lines),
        units=sum(line.quantity for line in request.cart.lines),
        request=request.model_dump_json(exclude_none=True),
        inventory=_slice_json(snapshot, skus, inventory),
        decision=None if result is None else result.model_dump_json(),
        tags=tuple(tags),
        captured_at=captured,
        prices=None if priced is None else priced.model_dump_json(),
    )


# --------------------------------------------------------------------------------------------
# Selections and runs.


@dataclasses.dataclass(frozen=True, slots=True)
class Selection:
    """Which scenarios to use: ids, a tag, an order-instant range [since, until); None = any."""

    ids: tuple[str, ...] | None = None
    tag: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def params(self) -> dict[str, Any]:
        """Parameters of the fixed WHERE clause."""
        return {
            "ids": None if self.ids is None else list(self.ids),
            "tag": self.tag,
            "since": self.since,
            "until": self.until,
        }

    def describe(self) -> str:
        """Short human description, stored with a run."""
        parts = []
        if self.ids is not None:
            parts.append(f"{len(self.ids)} ids")
        if self.tag is not None:
            parts.append(f"tag={self.tag}")
        if self.since is not None:
            parts.append(f"since={self.since.isoformat()}")
        if self.until is not None:
            parts.append(f"until={self.until.isoformat()}")
        return ", ".join(parts) or "all"


@dataclasses.dataclass(frozen=True, slots=True)
class RunInfo:
    """One replay run: what was replayed, how, and how long it took."""

    run_id: int
    label: str
    engine: str
    policy_name: str
    policy_hash: str
    policy: str
    code_version: str
    selection: str
    levels: str
    workers: int
    started: dt.datetime
    duration_s: float
    scenario_count: int


# --------------------------------------------------------------------------------------------
# The store.


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


class ScenarioStore:
    """A DuckDB file of networks, scenarios, runs and results (``":memory:"`` for tests)."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        read_only: bool = False,
        threads: int | None = None,
    ) -> None:
        """Open (creating and migrating when needed) the store at ``path``."""
        target = default_store_path() if path is None else path
        self.path: str | Path = MEMORY if str(target) == MEMORY else Path(target)
        config: dict[str, Any] = {}
        if threads is not None:
            config["threads"] = threads
        if isinstance(self.path, Path) and not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path), read_only=read_only, config=config)
        self._con.execute("SET TimeZone = 'UTC'")
        self._known_networks: set[str] = set()
        if read_only:
            try:
                row = _one(self._con.execute("SELECT max(version) FROM schema_version"))
            except duckdb.CatalogException as exc:
                self._con.close()
                raise StoreError(f"{self.path} is not a scenario store") from exc
            self.schema_version = int(row[0] or 0)
            if not 1 <= self.schema_version <= len(MIGRATIONS):
                self._con.close()
                raise StoreError(f"{self.path} has unsupported schema {self.schema_version}")
        else:
            self.schema_version = migrate(self._con)

    # Lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._con.close()

    def __enter__(self) -> ScenarioStore:
        """Use as a context manager."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close on exit."""
        self.close()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, for SQL of your own (KPIs, notebooks)."""
        return self._con

    @property
    def _scenario_names(self) -> str:
        """The scenario columns to select (a store opened read-only may predate prices)."""
        return (
            _SCENARIO_NAMES if self.schema_version >= _PRICES_SCHEMA else _SCENARIO_NAMES_UNPRICED
        )

    def _transaction(self) -> _Transaction:
        """BEGIN … COMMIT, rolled back on error."""
        return _Transaction(self._con)

    # Networks -------------------------------------------------------------------------------

    def add_network(self, snapshot: Snapshot) -> str:
        """Store ``snapshot``'s network unless its version is already there; its version."""
        facts = _facts(snapshot)
        if facts.version not in self._known_networks:
            with self._transaction():
                self._insert_networks(
                    [
                        (
                            facts.version,
                            snapshot.version,
                            snapshot.as_of,
                            len(snapshot.nodes),
                            len(snapshot.items),
                            facts.body,
                            dt.datetime.now(dt.UTC),
                        )
                    ]
                )
            self._known_networks.add(facts.version)
        return facts.version

    def _insert_networks(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert network rows (duplicates ignored), inside the caller's transaction."""
        if rows:
            self._con.execute(_INSERT_NETWORKS, [list(col) for col in zip(*rows, strict=True)])

    def network_versions(self, selection: Selection | None = None) -> list[str]:
        """Stored network versions (only those of ``selection``'s scenarios when given)."""
        if selection is None:
            rows = self._con.execute("SELECT version FROM networks ORDER BY version")
        else:
            rows = self._con.execute(_SELECTED_NETWORKS, selection.params())
        return [row[0] for row in rows.fetchall()]

    def network(self, version: str) -> Snapshot:
        """The network of ``version`` as a snapshot without inventory (parsed once per process)."""
        row = _first(
            self._con.execute(
                "SELECT body, label, as_of FROM networks WHERE version = ?", [version]
            )
        )
        if row is None:
            raise StoreError(f"no network {version} in the store")
        return base_snapshot(version, row[0], label=row[1], as_of=row[2])

    def network_bodies(self, versions: Iterable[str]) -> dict[str, tuple[bytes, str, dt.datetime]]:
        """Body, label and as-of of each network version (for replay workers)."""
        wanted = sorted(set(versions))
        rows = self._con.execute(
            "SELECT version, body, label, as_of FROM networks "
            "WHERE version IN (SELECT unnest(?::VARCHAR[]))",
            [wanted],
        ).fetchall()
        found = {row[0]: (row[1], row[2], row[3]) for row in rows}
        missing = [v for v in wanted if v not in found]
        if missing:
            raise StoreError(f"scenarios reference networks missing from the store: {missing}")
        return found

    # Scenarios ------------------------------------------------------------------------------

    def add_records(self, records: Iterable[ScenarioRecord]) -> int:
        """Insert serialized scenarios in one transaction (existing ids are kept); rows added."""
        rows = [record.row() for record in records]
        if not rows:
            return 0
        with self._transaction():
            before = self._count("scenarios")
            for start in range(0, len(rows), _INSERT_BATCH):
                batch = rows[start : start + _INSERT_BATCH]
                self._con.execute(_INSERT_SCENARIOS, [list(c) for c in zip(*batch, strict=True)])
            return self._count("scenarios") - before

    def add_scenarios(self, scenarios: Iterable[Scenario]) -> int:
        """Insert scenarios whose networks are stored; rows added."""
        records = [scenario.record() for scenario in scenarios]
        versions = {record.network_version for record in records}
        self.network_bodies(versions)  # raises when a network is missing
        return self.add_records(records)

    def capture(
        self,
        request: PromiseRequest,
        snapshot: Snapshot,
        result: PromiseResult | None = None,
        *,
        tags: Sequence[str] = (),
        scenario_id: str | None = None,
        inventory: Inventory | None = None,
        prices: StockPrices = NO_PRICES,
    ) -> str:
        """Store one promise as a scenario (its network too); the scenario id."""
        self.add_network(snapshot)
        record = record_of(
            request,
            snapshot,
            result,
            tags=tags,
            scenario_id=scenario_id,
            inventory=inventory,
            prices=prices,
        )
        self.add_records([record])
        return record.scenario_id

    def _count(self, table: str) -> int:
        """Rows in one of the store's tables."""
        if table not in {"scenarios", "networks", "runs", "results"}:
            raise ValueError(f"unknown table {table}")
        return int(_one(self._con.execute(f"SELECT count(*) FROM {table}"))[0])  # noqa: S608

    def count(self, selection: Selection | None = None) -> int:
        """Number of scenarios in ``selection`` (all by default)."""
        query = f"SELECT count(*) FROM scenarios WHERE {_SELECT_WHERE}"  # noqa: S608 - constant
        return int(_one(self._con.execute(query, (selection or Selection()).params()))[0])

    def scenario_ids(self, selection: Selection | None = None) -> list[str]:
        """Ids of the scenarios in ``selection``, sorted."""
        query = f"SELECT id FROM scenarios WHERE {_SELECT_WHERE} ORDER BY id"  # noqa: S608
        rows = self._con.execute(query, (selection or Selection()).params()).fetchall()
        return [row[0] for row in rows]

    def scenario(self, scenario_id: str) -> Scenario:
        """One scenario, parsed and validated (KeyError when absent)."""
        row = _first(
            self._con.execute(
                f"SELECT {self._scenario_names} FROM scenarios WHERE id = ?",  # noqa: S608 - constant
                [scenario_id],
            )
        )
        if row is None:
            raise KeyError(scenario_id)
        return Scenario.from_row(row)

    def scenarios(
        self, selection: Selection | None = None, *, batch: int = 500
    ) -> Iterator[Scenario]:
        """Scenarios in ``selection``, parsed, in id order (streamed in batches)."""
        for rows in self.records(selection, batch=batch):
            yield from (Scenario.from_row(row) for row in rows)

    def records(
        self, selection: Selection | None = None, *, batch: int = 500
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Raw scenario rows (table column order) in ``selection``, in id order, by batch.

        A separate cursor streams the rows, so the store stays usable meanwhile.
        """
        query = f"SELECT {self._scenario_names} FROM scenarios WHERE {_SELECT_WHERE} ORDER BY id"  # noqa: S608
        cursor = self._con.cursor()
        try:
            cursor.execute(query, (selection or Selection()).params())
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            cursor.close()

    def scenario_table(self, selection: Selection | None = None) -> pd.DataFrame:
        """Scenarios without their JSON bodies, as a DataFrame (for notebooks)."""
        return self._con.execute(_SCENARIO_TABLE, (selection or Selection()).params()).df()

    # Runs and results -----------------------------------------------------------------------

    def next_run_id(self) -> int:
        """Reserve a run id."""
        return int(_one(self._con.execute("SELECT nextval('run_ids')"))[0])

    def record_run(self, info: RunInfo, rows: Sequence[Sequence[Any]]) -> int:
        """Store a run and its result rows (``RESULT_COLUMNS`` order) in one transaction."""
        with self._transaction():
            self._con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                list(dataclasses.astuple(info)),
            )
            for start in range(0, len(rows), _INSERT_BATCH):
                batch = rows[start : start + _INSERT_BATCH]
                columns = [list(c) for c in zip(*batch, strict=True)]
                self._con.execute(_INSERT_RESULTS, [[info.run_id] * len(batch), *columns])
        return info.run_id

    def run(self, run_id: int) -> RunInfo:
        """One run (KeyError when absent)."""
        names = ", ".join(field.name for field in dataclasses.fields(RunInfo))
        row = _first(
            self._con.execute(
                f"SELECT {names} FROM runs WHERE run_id = ?",  # noqa: S608 - constant identifiers
                [run_id],
            )
        )
        if row is None:
            raise KeyError(run_id)
        return RunInfo(*row)

    def runs(self) -> pd.DataFrame:
        """Every run as a DataFrame, newest first."""
        return self._con.execute(
            "SELECT run_id, label, engine, policy_name, policy_hash, code_version, selection, "
            "levels, workers, started, duration_s, scenario_count FROM runs "
            "ORDER BY run_id DESC"
        ).df()

    def results(self, run_id: int) -> pd.DataFrame:
        """Result rows of one run with the scenario's cart size and channel, as a DataFrame."""
        return self._con.execute(
            "SELECT * FROM result_facts WHERE run_id = ? ORDER BY scenario_id, level", [run_id]
        ).df()

    # Import and export ----------------------------------------------------------------------

    def export_jsonl(self, path: Path, selection: Selection | None = None) -> int:
        """Write networks then scenarios as JSON lines (gzipped for ``.gz``); scenarios written."""
        selection = selection or Selection()
        path.parent.mkdir(parents=True, exist_ok=True)
        opener = gzip.open if path.suffix == ".gz" else open
        query = (
            f"SELECT {_NETWORK_NAMES} FROM networks WHERE version IN "  # noqa: S608 - constant
            f"(SELECT network_version FROM scenarios WHERE {_SELECT_WHERE}) ORDER BY version"
        )
        count = 0
        with opener(path, "wt", encoding="utf-8") as out:
            for version, label, as_of, nodes, skus, body, created in self._con.execute(
                query, selection.params()
            ).fetchall():
                head = json.dumps(
                    {
                        "type": "network",
                        "version": version,
                        "label": label,
                        "as_of": as_of.isoformat(),
                        "nodes": nodes,
                        "skus": skus,
                        "created": created.isoformat(),
                    }
                )
                # The body is JSON already: splice it in rather than parse and re-encode.
                out.write(head[:-1] + ', "body": ' + gzip.decompress(body).decode() + "}\n")
            for rows in self.records(selection):
                for row in rows:
                    out.write(_scenario_line(row) + "\n")
                    count += 1
        return count

    def import_jsonl(self, path: Path, *, tags: Sequence[str] = ()) -> int:
        """Read a JSON-lines export (validated line by line); scenarios added."""
        opener = gzip.open if path.suffix == ".gz" else open
        records: list[ScenarioRecord] = []
        networks: list[tuple[Any, ...]] = []
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                item = json.loads(line)
                kind = item.pop("type", None)
                if kind == "network":
                    networks.append(_network_row(item, number))
                elif kind == "scenario":
                    item["tags"] = sorted({*item.get("tags", ()), *tags})
                    records.append(Scenario.model_validate(item).record())
                else:
                    raise StoreError(f"{path}:{number}: unknown record type {kind!r}")
        return self._import(networks, records)

    def export_parquet(self, directory: Path, selection: Selection | None = None) -> int:
        """Write ``networks.parquet`` and ``scenarios.parquet`` into ``directory``; scenarios."""
        selection = selection or Selection()
        directory.mkdir(parents=True, exist_ok=True)
        params = selection.params()
        networks = self._con.sql(
            f"SELECT {_NETWORK_NAMES} FROM networks WHERE version IN "  # noqa: S608 - constant
            f"(SELECT network_version FROM scenarios WHERE {_SELECT_WHERE}) ORDER BY version",
            params=params,
        )
        scenarios = self._con.sql(
            f"SELECT {self._scenario_names} FROM scenarios WHERE {_SELECT_WHERE} ORDER BY id",  # noqa: S608
            params=params,
        )
        # The relation API writes the files: no path is ever spliced into SQL.
        networks.write_parquet(str(directory / "networks.parquet"))
        scenarios.write_parquet(str(directory / "scenarios.parquet"))
        return self.count(selection)

    def import_parquet(self, directory: Path, *, tags: Sequence[str] = ()) -> int:
        """Read a Parquet export directory (scenarios validated row by row); scenarios added."""
        networks = self._con.execute(
            f"SELECT {_NETWORK_NAMES} FROM read_parquet(?)",  # noqa: S608 - constant identifiers
            [str(directory / "networks.parquet")],
        ).fetchall()
        cursor = self._con.cursor()
        records: list[ScenarioRecord] = []
        source = str(directory / "scenarios.parquet")
        columns = {
            row[0]
            for row in self._con.execute(
                "DESCRIBE SELECT * FROM read_parquet(?)", [source]
            ).fetchall()
        }
        # An export made before scenarios had prices has no such column.
        names = _SCENARIO_NAMES if "prices" in columns else _SCENARIO_NAMES_UNPRICED
        try:
            cursor.execute(
                f"SELECT {names} FROM read_parquet(?)",  # noqa: S608 - constant
                [source],
            )
            while rows := cursor.fetchmany(1_000):
                for row in rows:
                    scenario = Scenario.from_row(row)
                    if tags:
                        scenario = scenario.model_copy(
                            update={"tags": tuple(sorted({*scenario.tags, *tags}))}
                        )
                    records.append(scenario.record())
        finally:
            cursor.close()
        return self._import([_checked_network(row) for row in networks], records)

    def import_store(self, source: Path, *, tags: Sequence[str] = ()) -> int:
        """Merge another store file (a capture file, say) into this one; scenarios added.

        The source is opened read-only, so it must not be open for writing elsewhere (merge a
        capture file once its writer has closed it).
        """
        with ScenarioStore(source, read_only=True) as other:
            networks = other.connection.execute(
                f"SELECT {_NETWORK_NAMES} FROM networks"  # noqa: S608 - constant identifiers
            ).fetchall()
            records = [
                dataclasses.replace(_record_from_row(row), tags=tuple(sorted({*row[11], *tags})))
                for rows in other.records(batch=2_000)
                for row in rows
            ]
        return self._import([_checked_network(row) for row in networks], records)

    def _import(self, networks: list[tuple[Any, ...]], records: list[ScenarioRecord]) -> int:
        """Insert networks and scenarios in one transaction; scenarios added."""
        available = {row[0] for row in networks}
        stored = set(self.network_versions())
        missing = sorted({r.network_version for r in records} - available - stored)
        if missing:
            raise StoreError(f"import references networks it does not carry: {missing}")
        with self._transaction():
            self._insert_networks(networks)
            before = self._count("scenarios")
            rows = [record.row() for record in records]
            for start in range(0, len(rows), _INSERT_BATCH):
                batch = rows[start : start + _INSERT_BATCH]
                self._con.execute(_INSERT_SCENARIOS, [list(c) for c in zip(*batch, strict=True)])
            added = self._count("scenarios") - before
        self._known_networks |= available
        return added


class _Transaction:
    """Context manager for one DuckDB transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        """Bind to a connection."""
        self._con = con

    def __enter__(self) -> None:
        """Begin."""
        self._con.execute("BEGIN TRANSACTION")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Commit, or roll back when the block raised."""
        self._con.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _record_from_row(row: Sequence[Any]) -> ScenarioRecord:
    """A raw table row as a record (no parsing: the source store validated it)."""
    return ScenarioRecord(
        scenario_id=row[0],
        network_version=row[1],
        snapshot_version=row[2],
        as_of=row[3],
        requested_at=row[4],
        channel=row[5],
        lines=row[6],
        units=row[7],
        request=row[8],
        inventory=row[9],
        decision=row[10],
        tags=tuple(row[11]),
        captured_at=row[12],
        prices=row[13],
    )


def _scenario_line(row: Sequence[Any]) -> str:
    """One scenario as a JSON line; the JSON columns are spliced in verbatim."""
    record = _record_from_row(row)
    head = json.dumps(
        {
            "type": "scenario",
            "scenario_id": record.scenario_id,
            "network_version": record.network_version,
            "snapshot_version": record.snapshot_version,
            "as_of": record.as_of.isoformat(),
            "tags": list(record.tags),
            "captured_at": record.captured_at.isoformat(),
        }
    )
    decision = "null" if record.decision is None else record.decision
    prices = "null" if record.prices is None else record.prices
    # The stored layout puts one SKU per line; a JSON-lines record must be one line, and JSON
    # holds no raw newline inside a value, so dropping them keeps the same rows.
    inventory = record.inventory.replace("\n", "")
    return (
        f'{head[:-1]}, "request": {record.request}, "inventory": {inventory}, '
        f'"decision": {decision}, "prices": {prices}}}'
    )


def _network_row(item: Mapping[str, Any], line: int) -> tuple[Any, ...]:
    """A network record of a JSON-lines export as a table row, its version verified."""
    body_json = Network.model_validate(item["body"]).model_dump_json().encode()
    version = _digest(body_json)
    if version != item["version"]:
        raise StoreError(f"line {line}: network body does not match version {item['version']}")
    return (
        version,
        item["label"],
        dt.datetime.fromisoformat(item["as_of"]),
        int(item["nodes"]),
        int(item["skus"]),
        gzip.compress(body_json, mtime=0),
        dt.datetime.fromisoformat(item["created"]),
    )


def _checked_network(row: Sequence[Any]) -> tuple[Any, ...]:
    """A network row from a Parquet file or another store, its body verified."""
    if _digest(gzip.decompress(row[5])) != row[0]:
        raise StoreError(f"network body does not match its version {row[0]}")
    return tuple(row)
