"""A consistent picture of the network, catalog, stock and policies at one instant."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from pydantic import AwareDatetime, Field, model_validator

from models._base import Frozen
from models._inventory import ChannelPolicy, InventoryPosition
from models._network import CarrierService, CatalogItem, Node

__all__ = ["Snapshot"]


def _repeats(values: list[str]) -> list[str]:
    """Values that occur more than once, in first-seen order."""
    return [value for value, count in Counter(values).items() if count > 1]


class Snapshot(Frozen):
    """Network, services, catalog, inventory tiers and channel policies, versioned."""

    version: str = Field(min_length=1, max_length=64)
    as_of: AwareDatetime
    nodes: tuple[Node, ...] = Field(min_length=1)
    services: tuple[CarrierService, ...] = Field(min_length=1)
    items: tuple[CatalogItem, ...] = ()
    inventory: tuple[InventoryPosition, ...] = ()
    policies: tuple[ChannelPolicy, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Snapshot:
        """Ids are unique and every reference points at something that exists."""
        problems: list[str] = []
        node_ids = [node.node_id for node in self.nodes]
        for label, values in (
            ("node_id", node_ids),
            ("service_id", [s.service_id for s in self.services]),
            ("sku", [item.sku for item in self.items]),
            ("channel", [p.channel for p in self.policies]),
            ("inventory (node_id, sku)", [f"{r.node_id}/{r.sku}" for r in self.inventory]),
        ):
            repeated = _repeats(values)
            if repeated:
                problems.append(f"duplicate {label}: {', '.join(repeated[:5])}")
        known_nodes = set(node_ids)
        known_skus = {item.sku for item in self.items}
        unknown_nodes = sorted({r.node_id for r in self.inventory} - known_nodes)
        if unknown_nodes:
            problems.append(f"inventory rows for unknown nodes: {', '.join(unknown_nodes[:5])}")
        unknown_skus = sorted({r.sku for r in self.inventory} - known_skus)
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

    def policy(self, channel: str) -> ChannelPolicy | None:
        """The policy of ``channel``, or None when the snapshot has none."""
        return next((p for p in self.policies if p.channel == channel), None)

    @property
    def as_of_date(self) -> dt.date:
        """UTC date of the snapshot."""
        return self.as_of.astimezone(dt.UTC).date()
