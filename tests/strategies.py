"""Hypothesis strategies for domain types: tiny random networks, carts and requests."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from models import (
    Buffer,
    CarrierService,
    ChannelPolicy,
    InTransitLot,
    InventoryPosition,
    Location,
    Node,
    NodeKind,
    ObjectiveWeights,
    PromiseRequest,
    ServiceLevel,
    Snapshot,
)
from tests.solver.network_cases import (
    BROOKLYN,
    CHICAGO,
    GROUND_TRANSIT,
    LOS_ANGELES,
    MANHATTAN,
    PHILADELPHIA,
    ground_rates,
    request,
    snapshot,
)

PLACES: tuple[tuple[Location, str], ...] = (
    (MANHATTAN, "America/New_York"),
    (BROOKLYN, "America/New_York"),
    (PHILADELPHIA, "America/New_York"),
    (CHICAGO, "America/Chicago"),
    (LOS_ANGELES, "America/Los_Angeles"),
)
SKUS = ("A", "B", "C")


@st.composite
def nodes(draw: st.DrawFn, node_id: str) -> Node:
    """A node at one of a few places with random economics, calendar and labour."""
    location, zone_name = draw(st.sampled_from(PLACES))
    labour = draw(st.sampled_from([None, None, None, 2, 5, 30]))
    return Node(
        node_id=node_id,
        kind=draw(st.sampled_from(list(NodeKind))),
        location=location,
        time_zone=zone_name,
        cutoff=dt.time(draw(st.integers(10, 20)), 0),
        lead_time_days=draw(st.integers(0, 1)),
        operating_weekdays=draw(st.sampled_from([(0, 1, 2, 3, 4, 5), (0, 1, 2, 3, 4, 5, 6)])),
        handling_cost=draw(st.integers(0, 600)),
        pick_cost=draw(st.integers(0, 300)),
        pick_seconds=draw(st.sampled_from([0, 30, 120])),
        daily_labour_minutes=labour,
        priority=draw(st.integers(0, 5)),
        protection_units=draw(st.integers(0, 1)),
    )


@st.composite
def services(draw: st.DrawFn) -> list[CarrierService]:
    """One or two ground services and maybe a next-day one, with random capacity."""
    out = []
    for k in range(draw(st.integers(1, 2))):
        out.append(
            CarrierService(
                service_id=f"g{k}",
                service_level=ServiceLevel.GROUND,
                transit_days=GROUND_TRANSIT,
                rates=ground_rates(
                    per_kg=draw(st.integers(0, 300)), base=draw(st.integers(500, 1500))
                ),
                daily_capacity=draw(st.sampled_from([None, None, None, 0, 1, 5])),
            )
        )
    if draw(st.booleans()):
        out.append(
            CarrierService(
                service_id="nd",
                service_level=ServiceLevel.NEXT_DAY,
                delivery_weekdays=(0, 1, 2, 3, 4, 5),
                transit_days=(1,) * 8,
                rates=ground_rates(base=2500, per_kg=250),
                daily_capacity=draw(st.sampled_from([None, 2])),
            )
        )
    return out


@st.composite
def positions(draw: st.DrawFn, node_id: str, sku: str) -> InventoryPosition | None:
    """Maybe an inventory row, with reserved, safety stock and in-transit lots."""
    if draw(st.integers(0, 4)) == 0:
        return None
    on_hand = draw(st.integers(0, 6))
    lots = draw(
        st.lists(
            st.builds(
                InTransitLot,
                quantity=st.integers(1, 3),
                eta=st.dates(dt.date(2026, 11, 30), dt.date(2026, 12, 8)),
            ),
            max_size=1,
        )
    )
    return InventoryPosition(
        node_id=node_id,
        sku=sku,
        on_hand=on_hand,
        reserved=draw(st.integers(0, on_hand // 2)),
        safety_stock=draw(st.integers(0, 1)),
        unit_cost=draw(st.integers(0, 3000)),
        in_transit=tuple(lots),
    )


@st.composite
def policies(draw: st.DrawFn) -> ChannelPolicy:
    """A web policy with random buffers, share, shipment limit, floor and weights."""
    return ChannelPolicy(
        channel="web",
        buffers={
            NodeKind.STORE: Buffer(
                units=draw(st.integers(0, 1)), percent=draw(st.sampled_from([0.0, 50.0]))
            )
        },
        in_transit_share=draw(st.sampled_from([0.0, 0.5, 0.95, 1.0])),
        max_shipments=draw(st.integers(1, 3)),
        min_margin_pct=draw(st.sampled_from([None, None, None, 5.0, 30.0])),
        weights=ObjectiveWeights(
            shipping=draw(st.sampled_from([0.0, 1.0, 1.5])),
            unit_cost=draw(st.sampled_from([0.0, 1.0])),
            split_penalty=draw(st.integers(0, 500)),
            lateness_per_day=draw(st.integers(0, 100)),
            protection_per_unit=draw(st.integers(0, 400)),
        ),
    )


@st.composite
def instances(
    draw: st.DrawFn, *, max_nodes: int = 4, max_lines: int = 3, max_qty: int = 2
) -> tuple[PromiseRequest, Snapshot]:
    """A tiny random network and a cart to New York placed during one week."""
    node_list = [draw(nodes(f"n{k}")) for k in range(draw(st.integers(1, max_nodes)))]
    rows = [
        row
        for node in node_list
        for sku in SKUS
        if (row := draw(positions(node.node_id, sku))) is not None
    ]
    snap = snapshot(node_list, rows, services=draw(services()), policies=[draw(policies())])
    skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=max_lines))
    lines = [(sku, draw(st.integers(1, max_qty))) for sku in skus]
    at = dt.datetime(2026, 11, 30, tzinfo=dt.UTC) + dt.timedelta(
        hours=draw(st.integers(0, 7 * 24 - 1))
    )
    req = request(
        *lines,
        at=at,
        price=draw(st.integers(500, 20_000)),
        allow_partial=draw(st.booleans()),
    )
    return req, snap
