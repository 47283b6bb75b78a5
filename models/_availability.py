"""Tiered availability views for listing pages (per node, per region, totals)."""

from __future__ import annotations

import datetime as dt

from models._base import Frozen
from models._enums import NodeKind

__all__ = ["AvailabilityReport", "NodeAvailability", "SkuAvailability", "Tiers"]


class Tiers(Frozen):
    """Stock tiers of a SKU and what a channel may promise from them."""

    on_hand: int = 0
    reserved: int = 0
    safety_stock: int = 0
    buffer: int = 0
    in_transit: int = 0
    available: int = 0
    available_with_in_transit: int = 0

    def __add__(self, other: Tiers) -> Tiers:
        """Tier-wise sum, for regional and network totals."""
        return Tiers(
            **{name: getattr(self, name) + getattr(other, name) for name in Tiers.model_fields}
        )


class NodeAvailability(Frozen):
    """Tiers of one SKU at one node."""

    node_id: str
    kind: NodeKind
    region: str
    tiers: Tiers


class SkuAvailability(Frozen):
    """Tiers of one SKU: network total, per region and per node."""

    sku: str
    known: bool
    total: Tiers
    by_region: dict[str, Tiers]
    nodes: tuple[NodeAvailability, ...]


class AvailabilityReport(Frozen):
    """Availability of some SKUs for one channel."""

    channel: str
    snapshot_version: str
    as_of: dt.datetime
    skus: tuple[SkuAvailability, ...]
