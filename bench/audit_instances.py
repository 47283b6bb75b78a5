"""Audit instances: small networks generated independently of ``scenarios/``.

Nothing here comes from the demo generator: nodes sit at random points of North America
(including Alaska and Hawaii), in time zones drawn apart from where they sit (so a node's
local date is often behind or ahead of the destination's), on US or Canadian holiday
calendars with odd working weeks and lead times. Rate cards are random per service and zone
(not monotone in distance), several services may share a level, carrier capacity is tight per
node and per date, labour covers only part of a cart, weights are odd (1 g to 30 kg, close to
kg boundaries), buffers and in-transit shares are decimals, margin floors are set, objective
weights are overridden (cheap unfilled units included), and orders land around holidays.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

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
    ObjectiveWeights,
    PromiseRequest,
    ServiceLevel,
    Snapshot,
    WeightOverrides,
    ZoneRate,
)

__all__ = ["instance"]

ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Halifax",
    "America/St_Johns",
)
# Order instants (UTC) around holidays of both calendars and plain weeks.
ANCHORS = (
    dt.datetime(2026, 11, 25, tzinfo=dt.UTC),  # before US Thanksgiving
    dt.datetime(2026, 12, 23, tzinfo=dt.UTC),  # before Christmas
    dt.datetime(2026, 12, 30, tzinfo=dt.UTC),  # before New Year
    dt.datetime(2027, 1, 15, tzinfo=dt.UTC),  # before MLK day
    dt.datetime(2026, 7, 2, tzinfo=dt.UTC),  # before US and Canada days
    dt.datetime(2026, 10, 9, tzinfo=dt.UTC),  # before Canadian Thanksgiving
    dt.datetime(2026, 3, 10, tzinfo=dt.UTC),  # a plain week
)
LEVELS = (ServiceLevel.SAME_DAY, ServiceLevel.NEXT_DAY, ServiceLevel.TWO_DAY, ServiceLevel.GROUND)


def _point(rng: np.random.Generator) -> Location:
    """A random point: mostly the lower 48, sometimes Alaska or Hawaii."""
    where = rng.random()
    if where < 0.05:
        return Location(lat=float(rng.uniform(58, 64)), lon=float(rng.uniform(-152, -145)))
    if where < 0.10:
        return Location(lat=float(rng.uniform(19.5, 21.5)), lon=float(rng.uniform(-158, -155)))
    return Location(lat=float(rng.uniform(26, 48)), lon=float(rng.uniform(-122, -70)))


def _weekdays(rng: np.random.Generator, low: int) -> tuple[int, ...]:
    """A random set of at least ``low`` weekdays."""
    count = int(rng.integers(low, 8))
    return tuple(sorted(int(d) for d in rng.choice(7, size=count, replace=False)))


def _node(rng: np.random.Generator, k: int, start: dt.date) -> Node:
    """One node with a skewed time zone, an odd calendar and maybe scarce labour."""
    canadian = rng.random() < 0.25
    labour: int | None = None
    if rng.random() < 0.3:
        labour = int(rng.choice([0, 1, 2, 3, 5, 8, 15, 60]))
    overrides = {}
    if rng.random() < 0.4:
        for offset in rng.choice(10, size=int(rng.integers(1, 4)), replace=False).tolist():
            overrides[start + dt.timedelta(days=offset)] = int(rng.choice([0, 1, 2, 4, 30]))
    return Node(
        node_id=f"x{k:03d}",
        kind=NodeKind(rng.choice([kind.value for kind in NodeKind])),
        location=_point(rng),
        time_zone=str(rng.choice(ZONES)),
        cutoff=dt.time(int(rng.integers(0, 24)), int(rng.choice([0, 30]))),
        lead_time_days=int(rng.choice([0, 0, 0, 1, 2])),
        operating_weekdays=_weekdays(rng, 3),
        holiday_country="CA" if canadian else "US",
        holiday_subdivision=str(rng.choice(["ON", "QC", "BC"])) if canadian else None,
        handling_cost=int(rng.integers(0, 900)),
        pick_cost=int(rng.integers(0, 400)),
        pick_seconds=int(rng.choice([0, 20, 45, 90, 240])),
        daily_labour_minutes=labour,
        labour_minutes=overrides,
        priority=int(rng.integers(0, 9)),
        protection_units=int(rng.choice([0, 0, 1, 2, 5])),
    )


def _service(
    rng: np.random.Generator, level: ServiceLevel, k: int, nodes: list[Node], start: dt.date
) -> CarrierService:
    """A random service of ``level``: its own rate card, calendars and tight capacities."""
    base = rng.integers(200, 2500, size=8)
    per_kg = rng.integers(0, 400, size=8)
    transit: tuple[int, ...]
    if level is ServiceLevel.SAME_DAY:
        transit = (0,) * 8
    elif level is ServiceLevel.NEXT_DAY:
        transit = (1,) * 8
    elif level is ServiceLevel.TWO_DAY:
        transit = tuple(int(t) for t in rng.choice([1, 2], size=8))
    else:
        transit = tuple(int(t) for t in np.sort(rng.integers(1, 7, size=8)))
    served = [n.node_id for n in nodes if rng.random() < 0.8]
    capacity: dict[str, dict[dt.date, int]] = {}
    for node_id in served:
        if rng.random() < 0.35:
            days = rng.choice(12, size=int(rng.integers(1, 6)), replace=False).tolist()
            capacity[node_id] = {
                start + dt.timedelta(days=d): int(rng.choice([0, 0, 1])) for d in days
            }
    return CarrierService(
        service_id=f"{level.value}-{k}",
        carrier=f"carrier-{k}",
        service_level=level,
        node_ids=tuple(served) if len(served) < len(nodes) else (),
        pickup_weekdays=_weekdays(rng, 2),
        delivery_weekdays=_weekdays(rng, 3),
        holiday_country="CA" if rng.random() < 0.2 else "US",
        transit_days=transit,
        max_distance_km=float(rng.uniform(150, 900)) if level is ServiceLevel.SAME_DAY else None,
        rates=tuple(
            ZoneRate(base=int(b), per_kg=int(p)) for b, p in zip(base, per_kg, strict=True)
        ),
        daily_capacity=None if rng.random() < 0.5 else int(rng.choice([0, 1, 1, 2, 3])),
        remaining_capacity=capacity,
    )


def _weights(rng: np.random.Generator) -> WeightOverrides | None:
    """Random overrides with decimals; sometimes none, sometimes a very cheap unfilled unit."""
    if rng.random() < 0.3:
        return None
    return WeightOverrides(
        shipping=float(rng.choice([0.5, 1.0, 1.25, 1.5, 2.345])),
        handling=float(rng.choice([0.0, 1.0, 0.75])),
        labour=float(rng.choice([0.0, 1.0, 1.5])),
        unit_cost=float(rng.choice([0.0, 0.0, 1.0, 0.15])),
        revenue=float(rng.choice([0.0, 0.0, 1.0])),
        split_penalty=int(rng.choice([0, 200, 1500, 9999])),
        lateness_per_day=int(rng.choice([0, 50, 333, 2000])),
        protection_per_unit=int(rng.choice([0, 300, 5000])),
        unfilled_per_unit=int(rng.choice([5, 300, 10_000, 1_000_000])),
    )


def instance(seed: int) -> tuple[PromiseRequest, Snapshot]:
    """One audit instance: a request and its network, identical for identical seeds."""
    rng = np.random.default_rng([seed, 8_8_8])
    at = ANCHORS[int(rng.integers(len(ANCHORS)))] + dt.timedelta(
        minutes=int(rng.integers(0, 3 * 24 * 60))
    )
    start = at.date() - dt.timedelta(days=1)
    nodes = [_node(rng, k, start) for k in range(int(rng.integers(3, 16)))]
    services = [
        _service(rng, level, k, nodes, start)
        for level in LEVELS
        if rng.random() < 0.85
        for k in range(int(rng.choice([1, 1, 2, 3])))
    ] or [_service(rng, ServiceLevel.GROUND, 0, nodes, start)]
    skus = [f"S{k}" for k in range(int(rng.integers(2, 7)))]
    grams = [int(rng.choice([1, 250, 999, 1001, 1999, 2500, 7000, 30_000])) for _ in skus]
    items = tuple(CatalogItem(sku=s, weight_g=g) for s, g in zip(skus, grams, strict=True))
    inventory = []
    for node in nodes:
        for sku in skus:
            if rng.random() < 0.7:
                on_hand = int(rng.choice([0, 1, 2, 3, 5, 12, 40]))
                reserved = int(rng.integers(0, on_hand + 1)) if rng.random() < 0.3 else 0
                lots = tuple(
                    InTransitLot(
                        quantity=int(rng.integers(1, 9)),
                        eta=start + dt.timedelta(days=int(rng.integers(0, 10))),
                    )
                    for _ in range(int(rng.choice([0, 0, 1, 2])))
                )
                inventory.append(
                    InventoryPosition(
                        node_id=node.node_id,
                        sku=sku,
                        on_hand=on_hand,
                        reserved=reserved,
                        safety_stock=int(rng.choice([0, 0, 1])),
                        unit_cost=int(rng.integers(100, 9000)),
                        in_transit=lots,
                    )
                )
    policy = ChannelPolicy(
        channel="web",
        buffers={
            NodeKind.STORE: Buffer(
                units=int(rng.integers(0, 2)), percent=float(rng.choice([0, 12.5, 33.3]))
            ),
            NodeKind.DC: Buffer(percent=float(rng.choice([0, 7.25]))),
        },
        in_transit_share=float(rng.choice([0.29, 0.5, 0.95, 1.0])),
        max_shipments=int(rng.choice([1, 2, 3, 4])),
        min_margin_pct=None if rng.random() < 0.6 else float(rng.choice([0.0, 5.5, 12.345, 30.0])),
        weights=ObjectiveWeights(),
    )
    snapshot = Snapshot(
        version=f"audit-{seed}",
        as_of=at,
        nodes=tuple(nodes),
        services=tuple(services),
        items=items,
        inventory=tuple(inventory),
        policies=(policy,),
    )
    lines = tuple(
        CartLine(
            line_id=str(i),
            sku=str(rng.choice(skus)),
            quantity=int(rng.choice([1, 1, 2, 3, 4])),
            unit_price=int(rng.integers(300, 20_000)),
        )
        for i in range(int(rng.integers(1, 6)))
    )
    destination = _point(rng)
    request = PromiseRequest(
        cart=Cart(cart_id=f"audit-{seed}", channel="web", lines=lines),
        destination=Destination(lat=destination.lat, lon=destination.lon),
        requested_at=at,
        allow_partial=bool(rng.random() < 0.5),
        max_shipments=None if rng.random() < 0.6 else int(rng.integers(1, 4)),
        min_margin_pct=None if rng.random() < 0.8 else float(rng.choice([3.5, 12.345])),
        weights=_weights(rng),
    )
    return request, snapshot
