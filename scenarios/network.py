"""Deterministic synthetic fulfilment network: nodes, catalog, inventory, carriers, policies.

Everything is drawn from ``numpy.random.Generator`` streams spawned from one seed, one stream
per component, so the nodes of a seed do not change when only the catalog size changes.
Columns are built as numpy arrays; the domain objects are created at the end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools

import numpy as np
import numpy.typing as npt

from models import (
    Buffer,
    CarrierService,
    CatalogItem,
    ChannelPolicy,
    Location,
    Node,
    NodeKind,
    ServiceLevel,
    Snapshot,
    ZoneRate,
)
from scenarios._inventory import generate_inventory, inventory_positions, inventory_table
from scenarios.geography import CityTable, jitter, spread_cities, us_cities

__all__ = [
    "DEFAULT_AS_OF",
    "MAX_NODES",
    "MAX_SKUS",
    "MIN_NODES",
    "MIN_SKUS",
    "channel_policies",
    "demo_snapshot",
    "generate_network",
    "node_counts",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Cyber Monday 2026, 10:00 in New York: a busy, reproducible instant.
DEFAULT_AS_OF = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)
MIN_NODES, MAX_NODES = 50, 1_000
MIN_SKUS, MAX_SKUS = 10, 50_000

ALL_WEEK: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
MON_FRI: tuple[int, ...] = (0, 1, 2, 3, 4)
MON_SAT: tuple[int, ...] = (0, 1, 2, 3, 4, 5)

# Catalog categories with a typical shipping weight in grams; weights scatter log-normally
# around these, so a category reads like a real assortment (beauty light, garden heavy).
_CATEGORIES: tuple[tuple[str, float], ...] = (
    ("Apparel", 450.0),
    ("Beauty", 300.0),
    ("Books", 500.0),
    ("Electronics", 1_200.0),
    ("Home", 1_600.0),
    ("Kitchen", 1_100.0),
    ("Toys", 800.0),
    ("Sports", 1_500.0),
    ("Tools", 2_200.0),
    ("Garden", 3_500.0),
    ("Pet", 2_500.0),
)
MIN_WEIGHT_G, MAX_WEIGHT_G = 100, 20_000

# Parcel rate shapes by zone 1..8 (cents), modelled on published ground list rates.
_GROUND_BASE = (900, 960, 1_030, 1_110, 1_200, 1_310, 1_430, 1_600)
_GROUND_PER_KG = (60, 80, 100, 130, 160, 190, 220, 250)
_SAME_DAY_BASE = (950, 1_050, 1_150, 1_200, 1_200, 1_200, 1_200, 1_200)
_SAME_DAY_PER_KG = (30, 40, 50, 60, 60, 60, 60, 60)
SAME_DAY_MAX_KM = 45.0


@dataclasses.dataclass(frozen=True, slots=True)
class _NodeTable:
    """Generated nodes as parallel arrays (DCs first, then dark stores, then stores)."""

    ids: tuple[str, ...]
    kinds: tuple[NodeKind, ...]
    nodes: tuple[Node, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class _Catalog:
    """Generated SKUs with popularity rank (0 = best seller) and prices."""

    items: tuple[CatalogItem, ...]
    rank: IntArray
    list_price: IntArray
    unit_cost: FloatArray


def node_counts(nodes: int) -> dict[NodeKind, int]:
    """How many DCs, dark stores and stores a network of ``nodes`` nodes has."""
    _check_range("nodes", nodes, MIN_NODES, MAX_NODES)
    dcs = max(3, min(12, nodes // 20))
    dark = max(2, nodes // 50)
    return {NodeKind.DC: dcs, NodeKind.DARK_STORE: dark, NodeKind.STORE: nodes - dcs - dark}


def _check_range(name: str, value: int, low: int, high: int) -> None:
    """Reject sizes outside the supported range."""
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def _pick(rng: np.random.Generator, values: tuple[int, ...], size: int) -> IntArray:
    """Draw ``size`` values uniformly from ``values``."""
    return np.asarray(rng.choice(np.array(values, dtype=np.int64), size=size))


def _generate_nodes(
    counts: dict[NodeKind, int], as_of: dt.datetime, rng: np.random.Generator
) -> _NodeTable:
    """Place DCs, dark stores and stores in US metros and draw their economics."""
    cities = us_cities()
    dcs, dark, stores = counts[NodeKind.DC], counts[NodeKind.DARK_STORE], counts[NodeKind.STORE]
    dc_city = spread_cities(cities, dcs, rng)
    # Dark stores serve dense metros with same-day demand: the largest contiguous cities.
    big = np.flatnonzero(cities.contiguous)[:20]
    big_weight = cities.population[big] / cities.population[big].sum()
    dark_city = rng.choice(big, size=dark, replace=False, p=big_weight)
    # Stores follow people, tempered so one metro does not take a tenth of the chain.
    weight = cities.population.astype(np.float64) ** 0.8
    store_city = rng.choice(len(cities), size=stores, p=weight / weight.sum())
    city = np.concatenate([dc_city, dark_city, store_city]).astype(np.int64)
    kinds = (NodeKind.DC,) * dcs + (NodeKind.DARK_STORE,) * dark + (NodeKind.STORE,) * stores
    # Larger cities sprawl further; DCs sit out on the ring roads.
    extent = np.minimum(2.0 + 8.0 * np.sqrt(cities.population[city] / 1e6), 20.0)
    extent[:dcs] = 25.0
    lat, lon = jitter(cities.lat[city], cities.lon[city], extent, rng)
    economics = _economics(kinds, rng)
    overrides = _labour_overrides(kinds, economics["daily_labour"], as_of, rng)
    ids = (
        tuple(f"dc-{i + 1:02d}" for i in range(dcs))
        + tuple(f"dark-{i + 1:02d}" for i in range(dark))
        + tuple(f"store-{i + 1:04d}" for i in range(stores))
    )
    nodes = tuple(
        _node(
            node_id=node_id,
            kind=kind,
            name=_node_name(kind, cities, int(city[i]), node_id),
            lat=float(lat[i]),
            lon=float(lon[i]),
            state=cities.states[city[i]],
            time_zone=cities.time_zones[city[i]],
            economics={key: int(column[i]) for key, column in economics.items()},
            labour_minutes=overrides.get(i, {}),
        )
        for i, (node_id, kind) in enumerate(zip(ids, kinds, strict=True))
    )
    return _NodeTable(ids=ids, kinds=kinds, nodes=nodes)


def _node_name(kind: NodeKind, cities: CityTable, city: int, node_id: str) -> str:
    """Human-readable node name."""
    label = {NodeKind.DC: "DC", NodeKind.DARK_STORE: "Dark Store", NodeKind.STORE: "Store"}[kind]
    number = node_id.rsplit("-", 1)[1]
    return f"{cities.names[city]}, {cities.states[city]} {label} {number}"


def _economics(kinds: tuple[NodeKind, ...], rng: np.random.Generator) -> dict[str, IntArray]:
    """Per-node cost, speed, cutoff and labour columns drawn by node kind."""
    n = len(kinds)
    dc = np.array([k is NodeKind.DC for k in kinds])
    store = np.array([k is NodeKind.STORE for k in kinds])
    dark = np.array([k is NodeKind.DARK_STORE for k in kinds])

    def draw(low: tuple[int, int, int], high: tuple[int, int, int]) -> IntArray:
        """Uniform integers in [low, high] per kind (DC, store, dark store order)."""
        lo = np.select([dc, store, dark], list(low))
        hi = np.select([dc, store, dark], list(high))
        return np.asarray(rng.integers(lo, hi + 1, size=n), dtype=np.int64)

    # Columns are (DC, store, dark store); dark stores sit between DCs and stores.
    cutoff_minutes = np.select(
        [dc, store, dark],
        [
            _pick(rng, (960, 1020, 1080, 1140, 1200), n),  # 16:00..20:00
            _pick(rng, (720, 750, 780, 810, 840, 870, 900), n),  # 12:00..15:00
            _pick(rng, (900, 960, 1020, 1080), n),  # 15:00..18:00
        ],
    )
    daily_labour = draw((0, 60, 600), (0, 480, 1_200))
    daily_labour[dc] = -1  # DCs staff to volume: labour is not the limit there
    priority = np.select([dc, dark, store], [10, 50, 100]) + np.arange(n)
    return {
        "handling_cost": draw((150, 300, 200), (250, 450, 320)),
        "pick_cost": draw((40, 120, 70), (80, 250, 130)),
        "pick_seconds": draw((30, 120, 45), (60, 300, 100)),
        "cutoff_minutes": cutoff_minutes,
        "daily_labour": daily_labour,
        "protection_units": np.where(dc, 0, draw((0, 0, 0), (0, 2, 1))),
        "priority": priority,
    }


def _labour_overrides(
    kinds: tuple[NodeKind, ...],
    daily_labour: IntArray,
    as_of: dt.datetime,
    rng: np.random.Generator,
) -> dict[int, dict[dt.date, int]]:
    """Remaining labour on a few dates right after ``as_of`` (absences, events, closures)."""
    start = as_of.astimezone(dt.UTC).date()
    overrides: dict[int, dict[dt.date, int]] = {}
    stores = np.flatnonzero([k is not NodeKind.DC for k in kinds])
    chosen = stores[rng.random(len(stores)) < 0.25]
    days = rng.integers(0, 3, size=(len(chosen), 2))
    two = rng.random(len(chosen)) < 0.4
    # A tenth of the overrides are zero: the store cannot pick at all that day.
    share = np.where(
        rng.random((len(chosen), 2)) < 0.1, 0.0, rng.uniform(0.2, 0.8, (len(chosen), 2))
    )
    for j, i in enumerate(chosen.tolist()):
        dates = {int(days[j, 0]): float(share[j, 0])}
        if two[j]:
            dates.setdefault(int(days[j, 1]), float(share[j, 1]))
        overrides[i] = {
            start + dt.timedelta(days=d): round(float(daily_labour[i]) * s)
            for d, s in dates.items()
        }
    return overrides


def _node(
    *,
    node_id: str,
    kind: NodeKind,
    name: str,
    lat: float,
    lon: float,
    state: str,
    time_zone: str,
    economics: dict[str, int],
    labour_minutes: dict[dt.date, int],
) -> Node:
    """One validated node."""
    cutoff = economics["cutoff_minutes"]
    daily = economics["daily_labour"]
    return Node(
        node_id=node_id,
        kind=kind,
        name=name,
        location=Location(lat=lat, lon=lon),
        region=state,
        time_zone=time_zone,
        cutoff=dt.time(cutoff // 60, cutoff % 60),
        operating_weekdays=MON_SAT if kind is NodeKind.DC else ALL_WEEK,
        holiday_country="US",
        holiday_subdivision=state,
        handling_cost=economics["handling_cost"],
        pick_cost=economics["pick_cost"],
        pick_seconds=economics["pick_seconds"],
        daily_labour_minutes=None if daily < 0 else daily,
        labour_minutes=labour_minutes,
        priority=economics["priority"],
        protection_units=economics["protection_units"],
    )


def _generate_catalog(skus: int, rng: np.random.Generator) -> _Catalog:
    """SKUs with Zipf popularity, log-normal weights and prices loosely tied to weight."""
    category = rng.integers(0, len(_CATEGORIES), size=skus)
    typical = np.array([grams for _, grams in _CATEGORIES])[category]
    weight_z = rng.standard_normal(skus)
    weight_g = np.clip(np.round(typical * np.exp(0.8 * weight_z)), MIN_WEIGHT_G, MAX_WEIGHT_G)
    # Heavier goods tend to cost more, but a light phone outprices a bag of soil.
    price_z = 0.4 * weight_z + 0.9 * rng.standard_normal(skus)
    dollars = np.clip(np.ceil(25.0 * np.exp(0.9 * price_z)), 2, 2_500)
    list_price = (dollars * 100 - 1).astype(np.int64)  # charm pricing: $24.99
    unit_cost = list_price * rng.uniform(0.40, 0.70, size=skus)
    # Popularity rank is shuffled against SKU ids, so SKU-000001 is not the best seller.
    rank = rng.permutation(skus).astype(np.int64)
    items = tuple(
        CatalogItem(
            sku=f"SKU-{k + 1:06d}",
            weight_g=int(weight_g[k]),
            list_price=int(list_price[k]),
            name=f"{_CATEGORIES[category[k]][0]} item {k + 1}",
        )
        for k in range(skus)
    )
    return _Catalog(items=items, rank=rank, list_price=list_price, unit_cost=unit_cost)


def _rates(
    base: tuple[int, ...], per_kg: tuple[int, ...], factor: float, kg_factor: float
) -> tuple[ZoneRate, ...]:
    """A rate card scaled from a base shape, rounded to whole cents."""
    return tuple(
        ZoneRate(base=round(b * factor), per_kg=round(k * kg_factor))
        for b, k in zip(base, per_kg, strict=True)
    )


def _generate_services(
    table: _NodeTable, as_of: dt.datetime, rng: np.random.Generator
) -> tuple[CarrierService, ...]:
    """Ground, two-day, next-day and same-day courier services with capacity overrides."""
    start = as_of.astimezone(dt.UTC).date()
    stores = [
        nid for nid, kind in zip(table.ids, table.kinds, strict=True) if kind is not NodeKind.DC
    ]

    def overrides(candidates: list[str], share: float, high: int) -> dict[str, dict[dt.date, int]]:
        """Remaining packages on the first days for a few nodes; a third are full (zero)."""
        chosen = [
            nid for nid, u in zip(candidates, rng.random(len(candidates)), strict=True) if u < share
        ]
        result: dict[str, dict[dt.date, int]] = {}
        for nid in chosen:
            day = start + dt.timedelta(days=int(rng.integers(0, 3)))
            full = rng.random() < 1 / 3
            result[nid] = {day: 0 if full else int(rng.integers(1, high + 1))}
        return result

    ground = CarrierService(
        service_id="ground",
        carrier="Parcelway",
        service_level=ServiceLevel.GROUND,
        pickup_weekdays=MON_FRI,
        delivery_weekdays=MON_FRI,
        transit_days=(1, 1, 2, 3, 4, 5, 5, 6),
        rates=_rates(_GROUND_BASE, _GROUND_PER_KG, 1.0, 1.0),
        remaining_capacity=overrides(list(table.ids), 0.03, 60),
    )
    two_day = CarrierService(
        service_id="two_day",
        carrier="Parcelway",
        service_level=ServiceLevel.TWO_DAY,
        pickup_weekdays=MON_FRI,
        delivery_weekdays=MON_FRI,
        transit_days=(1, 1, 2, 2, 2, 2, 2, 2),
        rates=_rates(_GROUND_BASE, _GROUND_PER_KG, 2.0, 1.8),
        daily_capacity=1_000,
        remaining_capacity=overrides(list(table.ids), 0.05, 60),
    )
    next_day = CarrierService(
        service_id="next_day",
        carrier="SwiftAir",
        service_level=ServiceLevel.NEXT_DAY,
        pickup_weekdays=MON_FRI,
        delivery_weekdays=MON_SAT,
        transit_days=(1,) * 8,
        rates=_rates(_GROUND_BASE, _GROUND_PER_KG, 3.5, 3.0),
        daily_capacity=400,
        remaining_capacity=overrides(list(table.ids), 0.05, 40),
    )
    same_day = CarrierService(
        service_id="same_day_courier",
        carrier="MetroCourier",
        service_level=ServiceLevel.SAME_DAY,
        node_ids=tuple(stores),
        pickup_weekdays=ALL_WEEK,
        delivery_weekdays=ALL_WEEK,
        transit_days=(0,) * 8,
        max_distance_km=SAME_DAY_MAX_KM,
        rates=_rates(_SAME_DAY_BASE, _SAME_DAY_PER_KG, 1.0, 1.0),
        daily_capacity=int(rng.integers(20, 61)),
        remaining_capacity=overrides(stores, 0.08, 20),
    )
    # Stores and dark stores hand a carrier only so many parcels a day; DCs have dock doors.
    per_store = {
        level: {nid: int(rng.integers(low, high + 1)) for nid in stores}
        for level, (low, high) in (("two_day", (20, 60)), ("next_day", (10, 40)))
    }
    two_day = two_day.model_copy(update={"daily_capacity_by_node": per_store["two_day"]})
    next_day = next_day.model_copy(update={"daily_capacity_by_node": per_store["next_day"]})
    return ground, two_day, next_day, same_day


def channel_policies() -> tuple[ChannelPolicy, ...]:
    """Channel policies: buffers per node kind, in-transit share and maximum shipments."""
    return (
        ChannelPolicy(
            channel="web",
            buffers={NodeKind.STORE: Buffer(units=1), NodeKind.DARK_STORE: Buffer(units=1)},
            in_transit_share=0.95,
            max_shipments=3,
        ),
        ChannelPolicy(
            channel="app",
            buffers={NodeKind.STORE: Buffer(units=1), NodeKind.DARK_STORE: Buffer(units=1)},
            in_transit_share=0.95,
            max_shipments=3,
        ),
        ChannelPolicy(
            channel="marketplace",
            buffers={
                NodeKind.STORE: Buffer(units=2, percent=20.0),
                NodeKind.DARK_STORE: Buffer(units=1, percent=10.0),
                NodeKind.DC: Buffer(percent=5.0),
            },
            in_transit_share=0.8,
            max_shipments=2,
            min_margin_pct=5.0,
        ),
        ChannelPolicy(
            channel="wholesale",
            buffers={
                NodeKind.STORE: Buffer(percent=100.0),
                NodeKind.DARK_STORE: Buffer(percent=100.0),
            },
            in_transit_share=1.0,
            max_shipments=5,
        ),
        ChannelPolicy(channel="store_pickup", in_transit_share=0.95, max_shipments=1),
    )


def generate_network(
    *,
    nodes: int = 200,
    skus: int = 2_000,
    seed: int = 7,
    as_of: dt.datetime | None = None,
    columnar: bool = False,
) -> Snapshot:
    """A synthetic US network snapshot, identical for identical arguments.

    ``columnar`` puts the same rows in an ``inventory_table`` (the compact form for large
    networks) instead of one ``InventoryPosition`` per row.
    """
    _check_range("nodes", nodes, MIN_NODES, MAX_NODES)
    _check_range("skus", skus, MIN_SKUS, MAX_SKUS)
    as_of = DEFAULT_AS_OF if as_of is None else as_of
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    node_rng, catalog_rng, stock_rng, service_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    table = _generate_nodes(node_counts(nodes), as_of, node_rng)
    catalog = _generate_catalog(skus, catalog_rng)
    rows = generate_inventory(table.kinds, catalog.rank, catalog.unit_cost, stock_rng)
    sku_ids = tuple(item.sku for item in catalog.items)
    day = as_of.astimezone(dt.UTC).date()
    inventory = () if columnar else inventory_positions(rows, table.ids, sku_ids, day)
    return Snapshot(
        version=f"synth-n{nodes}-k{skus}-s{seed}-{as_of.astimezone(dt.UTC):%Y%m%dT%H%M}",
        as_of=as_of,
        nodes=table.nodes,
        services=_generate_services(table, as_of, service_rng),
        items=catalog.items,
        inventory=inventory,
        inventory_table=inventory_table(rows, table.ids, sku_ids, day) if columnar else None,
        policies=channel_policies(),
    )


@functools.cache
def demo_snapshot() -> Snapshot:
    """The embedded demo network: 200 nodes, 2,000 SKUs, seed 7, as of ``DEFAULT_AS_OF``."""
    return generate_network()
