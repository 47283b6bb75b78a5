"""A two-node network around Chicago and hand-checked answers for the checker tests.

Why these numbers: both nodes lie on the meridian of the destination, so each distance is
R x Δlat (R = 6,371.0088 km, 111.195 km per degree) and the zone is obvious. The store is in
Chicago time and the DC in Detroit time, and the order instant (Tuesday 2025-06-10 18:30 UTC)
falls before the store's 14:00 cutoff (13:30 local) but after the DC's (14:30 local): the DC's
earliest dispatch is Thursday 06-12 after one lead-time day. Juneteenth (Thursday 06-19) is a
US holiday, so it is neither a dispatch day nor a delivery day.

Stock for channel ``web`` (store buffer 1 unit, in-transit share 0.5):

    store-chi SKU-A  on_hand 4, reserved 1, buffer 1                 -> ATP 2 (pickup: 3)
    store-chi SKU-B  on_hand 1, buffer 1                             -> ATP 0 (pickup: 1)
    dc-mqt    SKU-A  on_hand 10, reserved 2, safety 3                -> ATP 5
    dc-mqt    SKU-B  on_hand 6                                       -> ATP 6
    dc-mqt    SKU-C  on_hand 0, lot of 5 due 06-13 + 1 lead day      -> 0 before 06-14, then
                                                                        floor(0.5 x 5) = 2

Default objective weights everywhere: shipping, handling and labour at face value, unit cost and
revenue 0, split 200 per extra package, lateness 50 per day, protection 300 per unit, unfilled
1,000,000 per unit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from models import (
    Buffer,
    CarrierService,
    Cart,
    CartLine,
    CatalogItem,
    ChannelPolicy,
    CostBreakdown,
    Destination,
    Engine,
    InTransitLot,
    InventoryPosition,
    Location,
    Node,
    NodeKind,
    PromiseOption,
    PromiseRequest,
    PromiseResult,
    ServiceLevel,
    Shipment,
    ShipmentLine,
    Snapshot,
    SolverStats,
    Status,
    Unfulfilled,
    UnfulfilledReason,
    ZoneRate,
)

# Tuesday 2025-06-10: 13:30 in Chicago (store, destination), 14:30 in Detroit (DC).
REQUESTED_AT = dt.datetime(2025, 6, 10, 18, 30, tzinfo=dt.UTC)
ORDER_DATE = dt.date(2025, 6, 10)


def day(d: int) -> dt.date:
    """A date in June 2025."""
    return dt.date(2025, 6, d)


DESTINATION = Destination(lat=41.85, lon=-87.65)  # Chicago, America/Chicago
STORE_KM = 11.12  # 0.10 degrees of latitude north: zone 1
DC_KM = 522.62  # 4.70 degrees of latitude north: zone 4 (480 < d <= 970)

STORE = Node(
    node_id="store-chi",
    kind=NodeKind.STORE,
    location=Location(lat=41.95, lon=-87.65),
    region="IL",
    time_zone="America/Chicago",
    handling_cost=150,
    pick_cost=80,
    pick_seconds=120,
    # 10 minutes = 5 units a day; Wednesday 06-11 has 3 minutes left = 1 unit.
    daily_labour_minutes=10,
    labour_minutes={day(11): 3},
    protection_units=1,
)
DC = Node(
    node_id="dc-mqt",
    kind=NodeKind.DC,
    location=Location(lat=46.55, lon=-87.65),  # Marquette County, Michigan: Eastern time
    region="MI",
    time_zone="America/Detroit",
    lead_time_days=1,
    handling_cost=100,
    pick_cost=40,
    pick_seconds=30,
)

# Ground rate card (base, per kg) for zones 1..8; zone 1 is 450 + 60/kg, zone 4 is 700 + 95/kg.
GROUND_RATES = tuple(
    ZoneRate(base=base, per_kg=per_kg)
    for base, per_kg in (
        (450, 60),
        (500, 70),
        (600, 80),
        (700, 95),
        (800, 110),
        (900, 125),
        (1000, 140),
        (1100, 160),
    )
)
# Transit delivery days for zones 1..8: zone 1 -> 1 day, zone 4 -> 3 days.
GROUND_TRANSIT = (1, 1, 2, 3, 4, 4, 5, 5)
GROUND = CarrierService(
    service_id="ground",
    carrier="Parcel",
    service_level=ServiceLevel.GROUND,
    transit_days=GROUND_TRANSIT,
    rates=GROUND_RATES,
    # The DC's pickup on Tuesday 06-17 is fully booked.
    remaining_capacity={"dc-mqt": {day(17): 0}},
)
# Same terms as ``ground`` but only for the DC: the store may not use it.
GROUND_DC = CarrierService(
    service_id="ground-dc",
    carrier="Parcel",
    service_level=ServiceLevel.GROUND,
    node_ids=("dc-mqt",),
    transit_days=GROUND_TRANSIT,
    rates=GROUND_RATES,
)
COURIER = CarrierService(
    service_id="courier",
    carrier="Bikes",
    service_level=ServiceLevel.SAME_DAY,
    node_ids=("store-chi",),
    pickup_weekdays=(0, 1, 2, 3, 4, 5),
    delivery_weekdays=(0, 1, 2, 3, 4, 5),
    transit_days=(0,) * 8,
    max_distance_km=50.0,
    rates=(ZoneRate(base=900, per_kg=20),) * 8,
    daily_capacity=1,
)

ITEMS = (
    CatalogItem(sku="SKU-A", weight_g=1200, list_price=2500),
    CatalogItem(sku="SKU-B", weight_g=300, list_price=1000),
    CatalogItem(sku="SKU-C", weight_g=2000, list_price=5000),
)
INVENTORY = (
    InventoryPosition(node_id="store-chi", sku="SKU-A", on_hand=4, reserved=1, unit_cost=1200),
    InventoryPosition(node_id="store-chi", sku="SKU-B", on_hand=1, unit_cost=400),
    InventoryPosition(
        node_id="dc-mqt", sku="SKU-A", on_hand=10, reserved=2, safety_stock=3, unit_cost=1100
    ),
    InventoryPosition(node_id="dc-mqt", sku="SKU-B", on_hand=6, unit_cost=380),
    InventoryPosition(
        node_id="dc-mqt",
        sku="SKU-C",
        on_hand=0,
        unit_cost=2000,
        in_transit=(InTransitLot(quantity=5, eta=day(13)),),
    ),
)
WEB = ChannelPolicy(
    channel="web",
    buffers={NodeKind.STORE: Buffer(units=1)},
    in_transit_share=0.5,
    max_shipments=3,
)
# Store pickup sees every store unit (no buffer) and allows one package.
PICKUP = ChannelPolicy(channel="pickup", in_transit_share=1.0, max_shipments=1)

SNAPSHOT = Snapshot(
    version="checker-cases-1",
    as_of=REQUESTED_AT,
    nodes=(STORE, DC),
    services=(GROUND, GROUND_DC, COURIER),
    items=ITEMS,
    inventory=INVENTORY,
    policies=(WEB, PICKUP),
)

L1 = CartLine(line_id="L1", sku="SKU-A", quantity=2, unit_price=2500)
L2 = CartLine(line_id="L2", sku="SKU-B", quantity=1, unit_price=1000)
CART = Cart(cart_id="cart-1", channel="web", lines=(L1, L2))
REQUEST = PromiseRequest(cart=CART, destination=DESTINATION, requested_at=REQUESTED_AT)
PARTIAL_REQUEST = REQUEST.model_copy(update={"allow_partial": True})

# Store -> destination by ground, shipped Tue 06-10 (before the Chicago cutoff), delivered
# Wed 06-11 (zone 1: 1 day). 2 x 1,200 g = 2.4 kg -> 3 billable kg.
# shipping 450 + 60 x 3 = 630, handling 150, labour 80 x 2 = 160, total 940.
STORE_GROUND = Shipment(
    node_id="store-chi",
    carrier_service_id="ground",
    ship_date=day(10),
    delivery_date=day(11),
    zone=1,
    distance_km=STORE_KM,
    weight_kg=2.4,
    lines=(ShipmentLine(line_id="L1", sku="SKU-A", quantity=2),),
    cost=CostBreakdown(shipping=630, handling=150, labour=160, total=940),
)
# DC -> destination by ground, shipped Thu 06-12 (Detroit was past cutoff, then 1 lead day),
# delivered Tue 06-17 (zone 4: Fri 13, Mon 16, Tue 17). 300 g -> 1 billable kg.
# shipping 700 + 95 = 795, handling 100, labour 40, total 935.
DC_GROUND = Shipment(
    node_id="dc-mqt",
    carrier_service_id="ground",
    ship_date=day(12),
    delivery_date=day(17),
    zone=4,
    distance_km=DC_KM,
    weight_kg=0.3,
    lines=(ShipmentLine(line_id="L2", sku="SKU-B", quantity=1),),
    cost=CostBreakdown(shipping=795, handling=100, labour=40, total=935),
)
# Revenue 2 x 2,500 + 1,000 = 6,000; unit costs 2 x 1,200 + 380 = 2,780; cost 1,875;
# margin 6,000 - 2,780 - 1,875 = 1,345.
# Objective: shipping 1,425 + handling 250 + labour 200 + split 200 + lateness 7 days x 50 = 350
# + protection 300 (store SKU-A: ATP 2 minus 1 protected unit leaves 1 free, 2 taken -> 1 unit)
# = 2,725.
GROUND_OPTION = PromiseOption(
    service_level=ServiceLevel.GROUND,
    status=Status.FEASIBLE,
    promised_delivery_date=day(17),
    shipments=(STORE_GROUND, DC_GROUND),
    cost=CostBreakdown(shipping=1425, handling=250, labour=200, total=1875),
    revenue=6000,
    margin=1345,
    split_count=1,
    objective=2725,
)
# The courier serves only the store, where web sees no SKU-B: without partial fulfilment the
# option is unfulfillable and its objective is 1,000,000 x 3 cart units.
SAME_DAY_UNFULFILLABLE = PromiseOption(
    service_level=ServiceLevel.SAME_DAY,
    status=Status.UNFULFILLABLE,
    promised_delivery_date=None,
    unfulfilled=(
        Unfulfilled(
            line_id="L2", sku="SKU-B", quantity=1, reason=UnfulfilledReason.INSUFFICIENT_STOCK
        ),
    ),
    objective=3_000_000,
)
# Courier from the store today: 900 + 20 x 3 kg = 960, handling 150, labour 160, total 1,270.
STORE_COURIER = STORE_GROUND.model_copy(
    update={
        "carrier_service_id": "courier",
        "delivery_date": day(10),
        "cost": CostBreakdown(shipping=960, handling=150, labour=160, total=1270),
    }
)
# With partial fulfilment: revenue 5,000, margin 5,000 - 2,400 - 1,270 = 1,330. Objective
# 960 + 150 + 160 + lateness 0 + protection 300 + 1 unfilled x 1,000,000 = 1,001,570.
SAME_DAY_PARTIAL = PromiseOption(
    service_level=ServiceLevel.SAME_DAY,
    status=Status.PARTIAL,
    promised_delivery_date=day(10),
    shipments=(STORE_COURIER,),
    unfulfilled=SAME_DAY_UNFULFILLABLE.unfulfilled,
    cost=STORE_COURIER.cost,
    revenue=5000,
    margin=1330,
    objective=1_001_570,
)

STATS = SolverStats(
    engine=Engine.MIP, status=Status.FEASIBLE, wall_ms=1.0, candidates=2, fallback=False
)
RESULT = PromiseResult(
    cart_id="cart-1",
    channel="web",
    requested_at=REQUESTED_AT,
    order_date=ORDER_DATE,
    options=(GROUND_OPTION, SAME_DAY_UNFULFILLABLE),
    recommended=ServiceLevel.GROUND,
    solver=STATS,
)
PARTIAL_RESULT = RESULT.model_copy(update={"options": (GROUND_OPTION, SAME_DAY_PARTIAL)})


class Case(NamedTuple):
    """An answer with the request and snapshot it answers."""

    result: PromiseResult
    request: PromiseRequest
    snapshot: Snapshot


BASE = Case(RESULT, REQUEST, SNAPSHOT)


def shipment(option: PromiseOption, index: int, **update: Any) -> PromiseOption:
    """``option`` with shipment ``index`` updated."""
    shipments = list(option.shipments)
    shipments[index] = shipments[index].model_copy(update=update)
    return option.model_copy(update={"shipments": tuple(shipments)})


def answer(*options: PromiseOption, **update: Any) -> PromiseResult:
    """``RESULT`` with the given options (recommending the first) and fields updated."""
    fields: dict[str, Any] = {"options": options, "recommended": options[0].service_level}
    fields.update(update)
    return RESULT.model_copy(update=fields)


def ground(**update: Any) -> PromiseOption:
    """``GROUND_OPTION`` with fields updated."""
    return GROUND_OPTION.model_copy(update=update)


def snapshot_with(
    *,
    web: dict[str, Any] | None = None,
    courier: dict[str, Any] | None = None,
) -> Snapshot:
    """``SNAPSHOT`` with the web policy and/or the courier service updated."""
    policies = (WEB.model_copy(update=web or {}), PICKUP)
    services = (GROUND, GROUND_DC, COURIER.model_copy(update=courier or {}))
    return SNAPSHOT.model_copy(update={"policies": policies, "services": services})


def cart_request(*lines: CartLine, channel: str = "web", **update: Any) -> PromiseRequest:
    """``REQUEST`` for another cart (same id) and channel, with fields updated."""
    cart = Cart(cart_id="cart-1", channel=channel, lines=lines)
    return REQUEST.model_copy(update={"cart": cart, **update})
