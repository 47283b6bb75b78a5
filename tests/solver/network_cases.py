"""Builders for tiny hand-checkable networks around a New York destination.

Rates are chosen so every optimum can be computed by hand: ground costs 1000 + 100 per zone
above 1 per package plus 100 per billable kg; transit is 1 day in zones 1-2, 2 in zone 3,
3 in zone 4, 4 in zone 5, 5 in zones 6-7 and 6 in zone 8. Default weights apply (shipping,
handling and labour at face value, split 200 per extra package, lateness 50 per day,
protection 300 per unit, unfilled 1,000,000 per unit).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from models import (
    Buffer,
    CarrierService,
    Cart,
    CartLine,
    CatalogItem,
    ChannelPolicy,
    Destination,
    InTransitLot,
    InventoryPosition,
    Location,
    Node,
    NodeKind,
    PromiseRequest,
    ServiceLevel,
    Snapshot,
    ZoneRate,
)

NEW_YORK = Destination(postal_code="10001")  # 40.7484, -73.9967, America/New_York
# Monday 2026-11-30, 10:00 in New York: before every cutoff below.
MONDAY_10AM = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)
GROUND_TRANSIT = (1, 1, 2, 3, 4, 5, 5, 6)

# Places and their zone from the New York destination.
MANHATTAN = Location(lat=40.7527, lon=-73.9772)  # ~1.7 km: zone 1
BROOKLYN = Location(lat=40.6782, lon=-73.9442)  # ~9 km: zone 1
PHILADELPHIA = Location(lat=39.9526, lon=-75.1652)  # ~130 km: zone 2
CHICAGO = Location(lat=41.8781, lon=-87.6298)  # ~1,150 km: zone 5
LOS_ANGELES = Location(lat=34.0522, lon=-118.2437)  # ~3,940 km: zone 8


def ground_rates(per_kg: int = 100, base: int = 1000) -> tuple[ZoneRate, ...]:
    """Ground rate card: base + 100 per zone above 1, and ``per_kg`` per billable kg."""
    return tuple(ZoneRate(base=base + 100 * zone, per_kg=per_kg) for zone in range(8))


def dc(node_id: str, location: Location = PHILADELPHIA, **overrides: Any) -> Node:
    """A DC: handling 200, pick 50 cents and 30 s per unit, cutoff 18:00, works Mon-Sat."""
    fields: dict[str, Any] = {
        "node_id": node_id,
        "kind": NodeKind.DC,
        "location": location,
        "time_zone": "America/New_York",
        "cutoff": dt.time(18, 0),
        "handling_cost": 200,
        "pick_cost": 50,
        "pick_seconds": 30,
        "priority": 1,
    }
    fields.update(overrides)
    return Node(**fields)


def store(node_id: str, location: Location = MANHATTAN, **overrides: Any) -> Node:
    """A store: handling 400, pick 150 cents and 120 s per unit, cutoff 14:00, works daily."""
    fields: dict[str, Any] = {
        "node_id": node_id,
        "kind": NodeKind.STORE,
        "location": location,
        "time_zone": "America/New_York",
        "cutoff": dt.time(14, 0),
        "operating_weekdays": (0, 1, 2, 3, 4, 5, 6),
        "handling_cost": 400,
        "pick_cost": 150,
        "pick_seconds": 120,
        "priority": 5,
    }
    fields.update(overrides)
    return Node(**fields)


def ground(service_id: str = "ground", **overrides: Any) -> CarrierService:
    """A ground service: pickup and delivery Mon-Fri, the rate card above."""
    fields: dict[str, Any] = {
        "service_id": service_id,
        "carrier": "parcel",
        "service_level": ServiceLevel.GROUND,
        "transit_days": GROUND_TRANSIT,
        "rates": ground_rates(),
    }
    fields.update(overrides)
    return CarrierService(**fields)


def stock(node_id: str, sku: str, on_hand: int, **overrides: Any) -> InventoryPosition:
    """An inventory row with unit cost 1000 unless overridden."""
    fields: dict[str, Any] = {"node_id": node_id, "sku": sku, "on_hand": on_hand}
    fields.setdefault("unit_cost", 1000)
    fields.update(overrides)
    return InventoryPosition(**fields)


def lot(quantity: int, eta: dt.date) -> InTransitLot:
    """An in-transit lot."""
    return InTransitLot(quantity=quantity, eta=eta)


WEB = ChannelPolicy(channel="web", buffers={NodeKind.STORE: Buffer(units=1)})
NO_BUFFER = ChannelPolicy(channel="store_pickup")


def snapshot(
    nodes: list[Node],
    inventory: list[InventoryPosition],
    services: list[CarrierService] | None = None,
    policies: list[ChannelPolicy] | None = None,
) -> Snapshot:
    """A snapshot of SKUs A (500 g), B (1,500 g) and C (4,200 g) with the given pieces."""
    return Snapshot(
        version="case",
        as_of=MONDAY_10AM,
        nodes=tuple(nodes),
        services=tuple(services or [ground()]),
        items=(
            CatalogItem(sku="A", weight_g=500, list_price=2000),
            CatalogItem(sku="B", weight_g=1500, list_price=5000),
            CatalogItem(sku="C", weight_g=4200, list_price=9000),
        ),
        inventory=tuple(inventory),
        policies=tuple(policies or [WEB, NO_BUFFER]),
    )


def request(
    *lines: tuple[str, int],
    at: dt.datetime = MONDAY_10AM,
    channel: str = "web",
    price: int = 2000,
    **options: Any,
) -> PromiseRequest:
    """A request for (sku, quantity) lines at ``price`` each, to New York."""
    cart = Cart(
        cart_id="cart",
        channel=channel,
        lines=tuple(
            CartLine(line_id=f"l{i}", sku=sku, quantity=qty, unit_price=price)
            for i, (sku, qty) in enumerate(lines, start=1)
        ),
    )
    return PromiseRequest(cart=cart, destination=NEW_YORK, requested_at=at, **options)
