"""How the scenario store encodes networks and inventory slices, and decodes them again.

A *network* is the part of a snapshot that is not stock (nodes, services, catalog, channel
policies): stored once per content version, the hash of its canonical JSON, gzipped.

An *inventory slice* is stored as a JSON array of rows, one SKU's rows per text line::

    [
    {"node_id":"dc-01","sku":"SKU-1",...},{"node_id":"store-0007","sku":"SKU-1",...},
    {"node_id":"dc-01","sku":"SKU-9",...}
    ]

Still plain JSON for SQL and notebooks; and since popular SKUs recur in many carts, a replay
worker can parse each distinct line once (JSON never holds a raw newline inside a value).

Every function here is pure: a caller that decodes the same thing many times keeps what it
decoded (a replay worker keeps its networks and lines).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import Field, TypeAdapter

from models import (
    CarrierService,
    CatalogItem,
    ChannelPolicy,
    Frozen,
    InventoryPosition,
    Node,
    Snapshot,
)
from scenarios._schema import StoreError

__all__ = [
    "Network",
    "ScenarioNetwork",
    "base_snapshot",
    "checked_network_row",
    "decode_network",
    "exported_network_row",
    "inventory_fragment",
    "inventory_lines",
    "inventory_text",
    "join_fragments",
    "network_digest",
    "network_json",
    "network_version",
    "parse_inventory",
    "parse_line",
    "scenario_snapshot",
]

_ROWS = TypeAdapter(tuple[InventoryPosition, ...])
_LINE = ",\n"
_EMPTY = "[]"


# --------------------------------------------------------------------------------------------
# Networks.


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


def network_digest(body_json: bytes) -> str:
    """Content version of a network's canonical JSON."""
    return "net-" + hashlib.sha256(body_json).hexdigest()[:20]


def network_json(snapshot: Snapshot) -> bytes:
    """Canonical JSON of ``snapshot``'s network (what its version hashes)."""
    return Network.of(snapshot).model_dump_json().encode()


def network_version(snapshot: Snapshot) -> str:
    """Content version of ``snapshot``'s network (equal networks share it, stock aside).

    Hashing a 2,000-SKU network costs tens of milliseconds: to record many promises on one
    snapshot, keep a ``ScenarioRecorder``, which computes it once.
    """
    return network_digest(network_json(snapshot))


def decode_network(body: bytes) -> Network:
    """Parse a stored network body."""
    return Network.model_validate_json(gzip.decompress(body))


def base_snapshot(version: str, body: bytes, *, label: str, as_of: dt.datetime) -> Snapshot:
    """The stored network of ``version`` as a snapshot without inventory, its body verified."""
    raw = gzip.decompress(body)
    if network_digest(raw) != version:
        raise StoreError(f"network body does not match its version {version}")
    network = Network.model_validate_json(raw)
    return Snapshot(
        version=label,
        as_of=as_of,
        nodes=network.nodes,
        services=network.services,
        items=network.items,
        inventory=(),
        policies=network.policies,
    )


def exported_network_row(item: Mapping[str, Any], line: int) -> tuple[Any, ...]:
    """A network record of a JSON-lines export as a table row, its version verified."""
    body_json = Network.model_validate(item["body"]).model_dump_json().encode()
    version = network_digest(body_json)
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


def checked_network_row(row: Sequence[Any]) -> tuple[Any, ...]:
    """A network row from a Parquet file or another store, its body verified."""
    if network_digest(gzip.decompress(row[5])) != row[0]:
        raise StoreError(f"network body does not match its version {row[0]}")
    return tuple(row)


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class ScenarioNetwork:
    """A network scenarios replay on: the snapshot without stock, nodes and items by id.

    Built once per network by whoever replays many scenarios on it (a replay worker);
    ``scenario_snapshot`` builds one for a single call.
    """

    snapshot: Snapshot
    nodes: dict[str, Node]
    items: dict[str, CatalogItem]

    @classmethod
    def of(cls, base: Snapshot) -> ScenarioNetwork:
        """Index ``base``'s nodes and catalog items by id."""
        return cls(
            snapshot=base,
            nodes={node.node_id: node for node in base.nodes},
            items={item.sku: item for item in base.items},
        )

    def check_rows(self, rows: Sequence[InventoryPosition]) -> None:
        """Raise StoreError unless every row names a node and a SKU of this network."""
        nodes, items = self.nodes, self.items
        unknown = {row.node_id for row in rows if row.node_id not in nodes}
        unknown |= {row.sku for row in rows if row.sku not in items}
        if unknown:
            raise StoreError(f"inventory slice names unknown nodes or SKUs: {sorted(unknown)[:5]}")

    def snapshot_for(
        self,
        inventory: tuple[InventoryPosition, ...],
        *,
        version: str,
        as_of: dt.datetime,
        skus: Iterable[str] | None = None,
    ) -> Snapshot:
        """The snapshot a scenario replays on: this network with only its inventory slice.

        With ``skus`` (the cart's), the catalog is cut down to those SKUs too: a solve or a
        check of that cart reads nothing else, and its lookups stay small.

        ``model_copy`` skips validation, so what a full validation would check of the rows
        (known nodes and SKUs, no repeated row) is checked here against this network's lookups.
        """
        self.check_rows(inventory)
        if len({(row.node_id, row.sku) for row in inventory}) != len(inventory):
            raise StoreError("inventory slice repeats a (node_id, sku) row")
        update: dict[str, object] = {"inventory": inventory, "version": version, "as_of": as_of}
        if skus is not None:
            wanted = set(skus) | {row.sku for row in inventory}
            items = self.items
            update["items"] = tuple(items[sku] for sku in sorted(wanted) if sku in items)
        return self.snapshot.model_copy(update=update)


def scenario_snapshot(
    base: Snapshot,
    inventory: tuple[InventoryPosition, ...],
    *,
    version: str,
    as_of: dt.datetime,
    skus: Iterable[str] | None = None,
) -> Snapshot:
    """``base``'s network with only a scenario's inventory slice (see ``ScenarioNetwork``)."""
    return ScenarioNetwork.of(base).snapshot_for(inventory, version=version, as_of=as_of, skus=skus)


# --------------------------------------------------------------------------------------------
# Inventory slices.


def inventory_fragment(rows: tuple[InventoryPosition, ...]) -> str:
    """One SKU's rows as a line (without brackets)."""
    return _ROWS.dump_json(rows).decode()[1:-1]


def join_fragments(fragments: Sequence[str]) -> str:
    """Lines of SKU rows as the stored inventory text."""
    return "[\n" + _LINE.join(fragments) + "\n]" if fragments else _EMPTY


def inventory_text(rows: Sequence[InventoryPosition]) -> str:
    """The stored text of an inventory slice: rows grouped by SKU, one SKU per line."""
    by_sku: dict[str, list[InventoryPosition]] = {}
    for row in rows:
        by_sku.setdefault(row.sku, []).append(row)
    return join_fragments([inventory_fragment(tuple(by_sku[sku])) for sku in sorted(by_sku)])


def inventory_lines(text: str) -> list[str] | None:
    """The SKU lines of a stored inventory text, or None when it is not in the stored layout."""
    if text == _EMPTY:
        return []
    if not (text.startswith("[\n") and text.endswith("\n]")):
        return None
    return text[2:-2].split(_LINE)


def parse_inventory(text: str) -> tuple[InventoryPosition, ...]:
    """Validated rows of a stored inventory text (any JSON array of rows)."""
    return _ROWS.validate_json(text)


def parse_line(line: str) -> tuple[InventoryPosition, ...]:
    """Validated rows of one SKU line of a stored inventory text."""
    return _ROWS.validate_json("[" + line + "]")
