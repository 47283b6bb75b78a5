"""A consistent picture of the network, catalog, stock and policies at one instant."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Annotated

from pydantic import Field, model_validator

from models._base import MAX_NODES, Frozen, Instant, Many
from models._inventory import MAX_ROWS, ChannelPolicy, InventoryPosition, InventoryTable
from models._network import CarrierService, CatalogItem, Node

__all__ = ["MAX_CATALOG_ITEMS", "MAX_POLICIES", "MAX_SERVICES", "Snapshot"]

# Bounds far above any real network (see models._base.MAX_NODES).
MAX_SERVICES = 10_000
MAX_CATALOG_ITEMS = 10_000_000
MAX_POLICIES = 1_000


def _repeats(values: list[str]) -> list[str]:
    """Values that occur more than once, in first-seen order."""
    return [value for value, count in Counter(values).items() if count > 1]


class Snapshot(Frozen):
    """Network, services, catalog, inventory tiers and channel policies, versioned."""

    version: str = Field(min_length=1, max_length=64)
    as_of: Instant
    nodes: Annotated[tuple[Node, ...], Many(MAX_NODES, at_least=1)]
    services: Annotated[tuple[CarrierService, ...], Many(MAX_SERVICES, at_least=1)]
    items: Annotated[tuple[CatalogItem, ...], Many(MAX_CATALOG_ITEMS)] = ()
    inventory: Annotated[tuple[InventoryPosition, ...], Many(MAX_ROWS)] = ()
    inventory_table: InventoryTable | None = Field(
        default=None, description="The same rows as columns (large networks); not with inventory."
    )
    policies: Annotated[tuple[ChannelPolicy, ...], Many(MAX_POLICIES, at_least=1)]

    @model_validator(mode="after")
    def _references(self) -> Snapshot:
        """Ids are unique and every reference points at something that exists."""
        problems: list[str] = []
        if self.inventory and self.inventory_table is not None:
            raise ValueError("give inventory rows or an inventory_table, not both")
        row_nodes, row_skus = self.row_keys()
        node_ids = [node.node_id for node in self.nodes]
        for label, values in (
            ("node_id", node_ids),
            ("service_id", [s.service_id for s in self.services]),
            ("sku", [item.sku for item in self.items]),
            ("channel", [p.channel for p in self.policies]),
            (
                "inventory (node_id, sku)",
                [f"{n}/{k}" for n, k in zip(row_nodes, row_skus, strict=True)],
            ),
        ):
            repeated = _repeats(values)
            if repeated:
                problems.append(f"duplicate {label}: {', '.join(repeated[:5])}")
        known_nodes = set(node_ids)
        known_skus = {item.sku for item in self.items}
        unknown_nodes = sorted(set(row_nodes) - known_nodes)
        if unknown_nodes:
            problems.append(f"inventory rows for unknown nodes: {', '.join(unknown_nodes[:5])}")
        unknown_skus = sorted(set(row_skus) - known_skus)
        if unknown_skus:
            problems.append(f"inventory rows for SKUs not in items: {', '.join(unknown_skus[:5])}")
        for service in self.services:
            missing = sorted(set(service.node_ids) - known_nodes)
            missing += sorted(set(service.remaining_capacity) - known_nodes)
            missing += sorted(set(service.daily_capacity_by_node) - known_nodes)
            if missing:
                problems.append(
                    f"service {service.service_id} names unknown nodes: {', '.join(missing[:5])}"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def row_keys(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Node ids and SKUs of the inventory rows in row order, whichever form holds them."""
        if self.inventory_table is not None:
            return self.inventory_table.node_id, self.inventory_table.sku
        return tuple(r.node_id for r in self.inventory), tuple(r.sku for r in self.inventory)

    @property
    def row_count(self) -> int:
        """Number of inventory rows."""
        table = self.inventory_table
        return len(self.inventory) if table is None else len(table)

    def positions(self) -> Iterator[InventoryPosition]:
        """Every inventory row as a domain object (built on the fly from a table)."""
        table = self.inventory_table
        if table is None:
            yield from self.inventory
        else:
            for index in range(len(table)):
                yield table.row(index)

    def row(self, index: int) -> InventoryPosition:
        """The inventory row at ``index`` (of ``row_keys()``), built on the fly from a table."""
        table = self.inventory_table
        return self.inventory[index] if table is None else table.row(index)

    def policy(self, channel: str) -> ChannelPolicy | None:
        """The policy of ``channel``, or None when the snapshot has none."""
        return next((p for p in self.policies if p.channel == channel), None)

    @property
    def as_of_date(self) -> dt.date:
        """UTC date of the snapshot."""
        return self.as_of.astimezone(dt.UTC).date()
