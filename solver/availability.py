"""Tiered availability per channel, node and region, for listing pages."""

from __future__ import annotations

from collections.abc import Sequence

from models import (
    AvailabilityReport,
    Destination,
    NodeAvailability,
    SkuAvailability,
    Snapshot,
    Tiers,
)
from solver.errors import UnknownChannelError
from solver.geo import resolve_destination
from solver.prepared import PreparedNetwork, as_prepared

__all__ = ["availability"]


def availability(
    network: PreparedNetwork | Snapshot,
    skus: Sequence[str],
    channel: str,
    *,
    region: str | None = None,
    destination: Destination | None = None,
) -> AvailabilityReport:
    """Per SKU: network totals, per-region and per-node tiers as ``channel`` sees them.

    ``network`` is prepared (with live stock through ``with_inventory``), or a bare snapshot
    prepared for this one call. ``region`` keeps nodes of one region; ``destination`` keeps
    nodes of the destination's region (a postal code resolves to its state).
    """
    prepared = as_prepared(network)
    snapshot = prepared.snapshot
    policy = snapshot.policy(channel)
    if policy is None:
        raise UnknownChannelError(channel)
    index = prepared.index
    if destination is not None and region is None:
        region = resolve_destination(destination).region
    atp = index.on_hand_atp(policy)
    nodes = index.nodes
    out: list[SkuAvailability] = []
    for sku in dict.fromkeys(skus):
        position = index.sku_pos.get(sku)
        if position is None:
            out.append(SkuAvailability(sku=sku, known=False, total=Tiers(), by_region={}, nodes=()))
            continue
        rows = index.rows_of(position)
        per_node: list[NodeAvailability] = []
        for row in range(rows.start, rows.stop):
            node = nodes[int(index.row_node[row])]
            if region is not None and node.region != region:
                continue
            _, lots = index.in_transit(row)
            in_transit = int(lots.sum()) if lots.size else 0
            on_hand = int(index.row_on_hand[row])
            buffer = policy.buffer_units(node.kind, on_hand)
            available = int(atp[row])
            per_node.append(
                NodeAvailability(
                    node_id=node.node_id,
                    kind=node.kind,
                    region=node.region,
                    tiers=Tiers(
                        on_hand=on_hand,
                        reserved=int(index.row_reserved[row]),
                        safety_stock=int(index.row_safety[row]),
                        buffer=buffer,
                        in_transit=in_transit,
                        available=available,
                        available_with_in_transit=available + policy.in_transit_units(in_transit),
                    ),
                )
            )
        by_region: dict[str, Tiers] = {}
        total = Tiers()
        for entry in per_node:
            by_region[entry.region] = by_region.get(entry.region, Tiers()) + entry.tiers
            total = total + entry.tiers
        out.append(
            SkuAvailability(
                sku=sku, known=True, total=total, by_region=by_region, nodes=tuple(per_node)
            )
        )
    return AvailabilityReport(
        channel=channel,
        snapshot_version=prepared.version,
        as_of=snapshot.as_of,
        skus=tuple(out),
    )
