"""Scenarios and runs as records: the domain forms, their table rows and their JSON lines.

A *scenario* is a promise request plus the slice of the snapshot it needs: a reference to the
network (stored once per content version) and only the inventory rows of the cart's SKUs, so a
scenario replays on its own. The recorded decision is kept where it is known (captured
traffic). ``ScenarioRecorder`` turns promises made on one snapshot into records, encoding the
snapshot's network once for all of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import AwareDatetime, Field

from models import (
    MAX_PRICE_CENTS,
    NO_PRICES,
    Frozen,
    InTransitLot,
    InventoryPosition,
    PromiseRequest,
    PromiseResult,
    Snapshot,
    StockPrices,
)
from scenarios._codecs import (
    inventory_fragment,
    inventory_text,
    join_fragments,
    network_digest,
    network_json,
    parse_inventory,
)
from solver import Inventory

__all__ = [
    "RunInfo",
    "Scenario",
    "ScenarioPrices",
    "ScenarioRecord",
    "ScenarioRecorder",
    "Selection",
    "new_scenario_id",
    "record_from_row",
    "scenario_line",
    "scenario_prices",
]


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


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class ScenarioRecorder:
    """Records promises made on one snapshot as scenarios; encodes its network once.

    Hashing and compressing a 2,000-SKU network costs tens of milliseconds and a capture
    records thousands of promises on the same snapshot, so whoever records many (the capture
    writer, ``load_golden``) keeps one recorder per snapshot. ``fragments`` memoises each
    SKU's line of the inventory text for the life of the recorder.
    """

    snapshot: Snapshot
    version: str
    body: bytes  # gzipped canonical JSON of the network
    rows_by_sku: dict[str, tuple[int, ...]]  # SKU → positions in snapshot.inventory
    fragments: dict[str, str]

    @classmethod
    def of(cls, snapshot: Snapshot) -> ScenarioRecorder:
        """Version, compressed body and row positions by SKU of ``snapshot``'s network."""
        body_json = network_json(snapshot)
        by_sku: dict[str, list[int]] = {}
        for position, row in enumerate(snapshot.inventory):
            by_sku.setdefault(row.sku, []).append(position)
        return cls(
            snapshot=snapshot,
            version=network_digest(body_json),
            # mtime=0 keeps the compressed body a pure function of the network.
            body=gzip.compress(body_json, compresslevel=6, mtime=0),
            rows_by_sku={sku: tuple(rows) for sku, rows in by_sku.items()},
            fragments={},
        )

    def record(
        self,
        request: PromiseRequest,
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
        the scenario replays at the same instant. ``inventory`` is the live stock the promise
        was made on (the snapshot's own rows when None); ``prices`` (the opportunity-cost table
        the decision was charged) is kept for the cart's SKUs.
        """
        snapshot = self.snapshot
        captured = captured_at or dt.datetime.now(dt.UTC)
        requested_at = request.requested_at
        if requested_at is None and result is not None:
            requested_at = result.requested_at
            request = request.model_copy(update={"requested_at": requested_at})
        skus = [line.sku for line in request.cart.lines]
        priced = ScenarioPrices.of(prices, skus)
        return ScenarioRecord(
            scenario_id=scenario_id or new_scenario_id(),
            network_version=self.version,
            snapshot_version=snapshot.version,
            as_of=snapshot.as_of,
            requested_at=requested_at or captured,
            channel=request.cart.channel,
            lines=len(request.cart.lines),
            units=sum(line.quantity for line in request.cart.lines),
            request=request.model_dump_json(exclude_none=True),
            inventory=self._slice(skus, inventory),
            decision=None if result is None else result.model_dump_json(),
            tags=tuple(tags),
            captured_at=captured,
            prices=None if priced is None else priced.model_dump_json(),
        )

    def _slice(self, skus: Iterable[str], inventory: Inventory | None) -> str:
        """Inventory text of the rows of ``skus`` (live stock when ``inventory`` is given)."""
        if inventory is not None:
            return inventory_text(_live_rows(inventory, skus))
        parts: list[str] = []
        for sku in sorted(set(skus)):
            fragment = self.fragments.get(sku)
            if fragment is None:
                rows = self.rows_by_sku.get(sku, ())
                fragment = inventory_fragment(tuple(self.snapshot.inventory[k] for k in rows))
                self.fragments[sku] = fragment
            if fragment:
                parts.append(fragment)
        return join_fragments(parts)


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


def record_from_row(row: Sequence[Any]) -> ScenarioRecord:
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


def scenario_line(row: Sequence[Any]) -> str:
    """One scenario as a JSON line; the JSON columns are spliced in verbatim."""
    record = record_from_row(row)
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
