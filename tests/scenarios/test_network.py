"""Tests of the synthetic network generator: determinism, sizes, bounds and realism."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import numpy as np
import pytest

from models import ChannelPolicy, InventoryPosition, NodeKind, ServiceLevel, Snapshot
from scenarios import (
    DEFAULT_AS_OF,
    demo_snapshot,
    generate_network,
    node_counts,
    us_cities,
)
from solver.geo import haversine_km


@pytest.fixture(scope="module")
def small() -> Snapshot:
    """A small network: quick to build, still has every node kind."""
    return generate_network(nodes=60, skus=300, seed=3)


@pytest.fixture(scope="module")
def demo() -> Snapshot:
    """The embedded demo network (200 nodes, 2,000 SKUs)."""
    return demo_snapshot()


def _kind_of(snapshot: Snapshot) -> dict[str, NodeKind]:
    """Node kind by node id."""
    return {node.node_id: node.kind for node in snapshot.nodes}


def _rows_by_kind(snapshot: Snapshot) -> dict[NodeKind, list[InventoryPosition]]:
    """Inventory rows grouped by the kind of their node."""
    kind = _kind_of(snapshot)
    rows: dict[NodeKind, list[InventoryPosition]] = defaultdict(list)
    for row in snapshot.inventory:
        rows[kind[row.node_id]].append(row)
    return rows


def test_same_seed_gives_identical_snapshot(small: Snapshot) -> None:
    """Rebuilding with the same arguments reproduces every field."""
    again = generate_network(nodes=60, skus=300, seed=3)
    assert again == small
    assert again.model_dump_json() == small.model_dump_json()


def test_different_seed_gives_different_snapshot(small: Snapshot) -> None:
    """Another seed moves nodes and changes stock."""
    other = generate_network(nodes=60, skus=300, seed=4)
    assert other.version != small.version
    assert [n.location for n in other.nodes] != [n.location for n in small.nodes]
    assert other.inventory != small.inventory


def test_nodes_do_not_depend_on_catalog_size() -> None:
    """Each component has its own random stream, so a bigger catalog keeps the same nodes."""
    a = generate_network(nodes=50, skus=100, seed=5)
    b = generate_network(nodes=50, skus=400, seed=5)
    assert a.nodes == b.nodes
    assert len(b.items) == 400


@pytest.mark.parametrize(
    ("nodes", "dcs"),
    [
        (50, 3),  # the floor of three DCs
        (200, 10),  # the demo network: about ten
        (1_000, 12),  # the ceiling of twelve
    ],
)
def test_dc_count_scales_with_size(nodes: int, dcs: int) -> None:
    """About ten DCs, a few more or fewer with network size; dark stores are a few."""
    counts = node_counts(nodes)
    assert counts[NodeKind.DC] == dcs
    assert 1 <= counts[NodeKind.DARK_STORE] <= nodes // 20
    assert sum(counts.values()) == nodes


@pytest.mark.parametrize("nodes", [50, 60])
def test_generated_node_counts_by_kind(nodes: int) -> None:
    """The snapshot holds exactly the requested nodes, split as ``node_counts`` says."""
    snapshot = generate_network(nodes=nodes, skus=50, seed=1)
    assert len(snapshot.nodes) == nodes
    assert Counter(node.kind for node in snapshot.nodes) == node_counts(nodes)
    assert len(snapshot.items) == 50


def test_demo_snapshot_is_cached_and_sized(demo: Snapshot) -> None:
    """The demo is built once per process with the documented size and instant."""
    assert demo_snapshot() is demo
    assert len(demo.nodes) == 200
    assert len(demo.items) == 2_000
    assert demo.as_of == DEFAULT_AS_OF


@pytest.mark.parametrize(
    ("nodes", "skus"),
    [
        (49, 2_000),  # below the smallest network
        (1_001, 2_000),  # above the largest network
        (0, 2_000),
        (200, 9),  # too few SKUs for a catalog
        (200, 50_001),  # more SKUs than the generator supports
    ],
)
def test_size_out_of_bounds_is_rejected(nodes: int, skus: int) -> None:
    """Sizes outside the supported ranges raise ValueError."""
    with pytest.raises(ValueError, match="must be between"):
        generate_network(nodes=nodes, skus=skus)


def test_naive_as_of_is_rejected() -> None:
    """A snapshot instant without a time zone is ambiguous."""
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_network(nodes=50, skus=20, as_of=dt.datetime(2026, 1, 5, 12))


def test_nodes_sit_in_us_cities_with_their_time_zone(demo: Snapshot) -> None:
    """Every node is a few km from a listed US city and carries that city's zone and state."""
    cities = us_cities()
    for node in demo.nodes:
        distance = haversine_km(cities.lat, cities.lon, node.location.lat, node.location.lon)
        near = np.flatnonzero(distance <= 30.0)
        assert len(near) > 0, node.node_id
        assert (node.region, node.time_zone) in {
            (cities.states[i], cities.time_zones[i]) for i in near
        }, node.node_id
        assert node.holiday_country == "US"
        assert node.holiday_subdivision == node.region


def test_dcs_are_spread_across_the_country(demo: Snapshot) -> None:
    """DCs span several time zones and no two share a metro."""
    dcs = [node for node in demo.nodes if node.kind is NodeKind.DC]
    assert len({node.time_zone for node in dcs}) >= 3
    lat = np.array([node.location.lat for node in dcs])
    lon = np.array([node.location.lon for node in dcs])
    for i, node in enumerate(dcs):
        distance = haversine_km(
            np.delete(lat, i), np.delete(lon, i), node.location.lat, node.location.lon
        )
        assert distance.min() > 150.0, node.node_id
    # Stores follow population: some metros have several.
    store_regions = Counter(node.region for node in demo.nodes if node.kind is NodeKind.STORE)
    assert store_regions.most_common(1)[0][1] >= 10


def test_node_economics_by_kind(demo: Snapshot) -> None:
    """DCs are cheap and fast with late cutoffs; stores costly, slow and labour-limited."""
    for node in demo.nodes:
        if node.kind is NodeKind.DC:
            assert 150 <= node.handling_cost <= 250
            assert 40 <= node.pick_cost <= 80
            assert 30 <= node.pick_seconds <= 60
            assert dt.time(16) <= node.cutoff <= dt.time(20)
            assert node.operating_weekdays == (0, 1, 2, 3, 4, 5)
            assert node.daily_labour_minutes is None
            assert node.protection_units == 0
        elif node.kind is NodeKind.STORE:
            assert 300 <= node.handling_cost <= 450
            assert 120 <= node.pick_cost <= 250
            assert 120 <= node.pick_seconds <= 300
            assert dt.time(12) <= node.cutoff <= dt.time(15)
            assert node.operating_weekdays == tuple(range(7))
            assert node.daily_labour_minutes is not None
            assert 60 <= node.daily_labour_minutes <= 480
            assert 0 <= node.protection_units <= 2
        for day, minutes in node.labour_minutes.items():
            assert 0 <= (day - demo.as_of_date).days <= 2
            assert node.daily_labour_minutes is not None
            assert minutes <= node.daily_labour_minutes
    overridden = [node for node in demo.nodes if node.labour_minutes]
    assert overridden
    priority = {kind: [n.priority for n in demo.nodes if n.kind is kind] for kind in NodeKind}
    assert max(priority[NodeKind.DC]) < min(priority[NodeKind.DARK_STORE])
    assert max(priority[NodeKind.DARK_STORE]) < min(priority[NodeKind.STORE])


def test_catalog_weights_and_prices(demo: Snapshot) -> None:
    """Weights span 100 g to 20 kg, prices are positive, heavier goods cost more on average."""
    weight = np.array([item.weight_g for item in demo.items])
    price = np.array([item.list_price for item in demo.items])
    assert weight.min() >= 100
    assert weight.max() <= 20_000
    assert weight.max() / weight.min() > 20
    assert (price > 0).all()
    assert len({item.sku for item in demo.items}) == len(demo.items)
    assert np.corrcoef(np.log(weight), np.log(price))[0, 1] > 0.1


def test_every_inventory_row_is_valid(demo: Snapshot) -> None:
    """Rows built without per-row validation pass validation and respect the tiers."""
    price = {item.sku: item.list_price for item in demo.items}
    for row in demo.inventory:
        assert InventoryPosition.model_validate(row.model_dump()) == row
        assert row.reserved <= row.on_hand
        assert row.safety_stock <= row.on_hand
        # Unit cost is 40-70 % of list price with up to 3 % node variation (whole cents).
        assert 0.40 * 0.97 * price[row.sku] - 1 <= row.unit_cost <= 0.70 * 1.03 * price[row.sku] + 1
        for lot in row.in_transit:
            assert lot.quantity > 0
            assert 1 <= (lot.eta - demo.as_of_date).days <= 10
        etas = [lot.eta for lot in row.in_transit]
        assert etas == sorted(set(etas))


def test_same_sku_costs_about_the_same_everywhere(demo: Snapshot) -> None:
    """A SKU's unit cost varies only a few percent across nodes."""
    costs: dict[str, list[int]] = defaultdict(list)
    for row in demo.inventory:
        costs[row.sku].append(row.unit_cost)
    spread = [max(c) / min(c) for c in costs.values() if len(c) > 1 and min(c) >= 100]
    assert spread
    assert max(spread) <= 1.03 / 0.97 + 0.02


def test_stores_are_shallower_than_dcs(demo: Snapshot) -> None:
    """DCs hold most SKUs deep; stores a popular subset of a few units each."""
    rows = _rows_by_kind(demo)
    dc, store = rows[NodeKind.DC], rows[NodeKind.STORE]
    counts = node_counts(len(demo.nodes))
    dc_mean = np.mean([r.on_hand for r in dc])
    store_mean = np.mean([r.on_hand for r in store])
    assert dc_mean > 5 * store_mean
    assert max(r.on_hand for r in store) <= 8
    assert np.mean([r.on_hand in (1, 2) for r in store]) >= 0.4
    assert max(r.on_hand for r in dc) >= 100
    # Coverage: SKUs per DC versus SKUs per store.
    skus = len(demo.items)
    assert len(dc) / counts[NodeKind.DC] >= 0.75 * skus
    assert len(store) / counts[NodeKind.STORE] <= 0.25 * skus
    # In-transit stock arrives mostly at DCs.
    dc_lots = sum(len(r.in_transit) for r in dc)
    store_lots = sum(len(r.in_transit) for r in store)
    assert dc_lots > store_lots
    assert np.mean([bool(r.in_transit) for r in dc]) > 3 * np.mean(
        [bool(r.in_transit) for r in store]
    )
    # Some units are reserved and some held as safety stock.
    assert any(r.reserved for r in store)
    assert any(r.reserved for r in dc)
    assert any(r.safety_stock for r in dc)


def test_stores_favour_popular_skus(demo: Snapshot) -> None:
    """SKUs that DCs hold deep are stocked in more stores than the tail."""
    kind = _kind_of(demo)
    dc_depth: Counter[str] = Counter()
    store_count: Counter[str] = Counter()
    for row in demo.inventory:
        if kind[row.node_id] is NodeKind.DC:
            dc_depth[row.sku] += row.on_hand
        elif kind[row.node_id] is NodeKind.STORE:
            store_count[row.sku] += 1
    ranked = [sku for sku, _ in dc_depth.most_common()]
    tenth = len(ranked) // 10
    head = np.mean([store_count[sku] for sku in ranked[:tenth]])
    tail = np.mean([store_count[sku] for sku in ranked[-tenth:]])
    assert head > 3 * tail


def test_carrier_services(demo: Snapshot) -> None:
    """One service per level; same-day serves stores only; rates and transit grow by zone."""
    by_level = {service.service_level: service for service in demo.services}
    assert set(by_level) == set(ServiceLevel)
    assert len(demo.services) == len(ServiceLevel)
    retail = {n.node_id for n in demo.nodes if n.kind is not NodeKind.DC}
    same_day = by_level[ServiceLevel.SAME_DAY]
    assert set(same_day.node_ids) == retail
    assert same_day.max_distance_km is not None
    assert 40 <= same_day.max_distance_km <= 50
    assert same_day.transit_days == (0,) * 8
    assert same_day.pickup_weekdays == same_day.delivery_weekdays == tuple(range(7))
    assert same_day.daily_capacity is not None
    assert 20 <= same_day.daily_capacity <= 60
    ground = by_level[ServiceLevel.GROUND]
    assert ground.node_ids == ()
    assert 850 <= ground.rates[0].base <= 1_000
    assert 1_400 <= ground.rates[-1].base <= 1_700
    for level in (ServiceLevel.GROUND, ServiceLevel.TWO_DAY, ServiceLevel.NEXT_DAY):
        service = by_level[level]
        assert list(service.transit_days) == sorted(service.transit_days)
        assert [r.base for r in service.rates] == sorted(r.base for r in service.rates)
        assert [r.per_kg for r in service.rates] == sorted(r.per_kg for r in service.rates)
    for zone in range(8):
        g = ground.rates[zone].base
        assert 1.5 * g <= by_level[ServiceLevel.TWO_DAY].rates[zone].base <= 2.5 * g
        assert 3.0 * g <= by_level[ServiceLevel.NEXT_DAY].rates[zone].base <= 4.0 * g
    assert by_level[ServiceLevel.TWO_DAY].transit_days[-1] == 2
    assert by_level[ServiceLevel.NEXT_DAY].transit_days == (1,) * 8
    remaining = [
        left
        for service in demo.services
        for by_day in service.remaining_capacity.values()
        for left in by_day.values()
    ]
    assert 0 in remaining
    assert any(left > 0 for left in remaining)


def _policy(snapshot: Snapshot, channel: str) -> ChannelPolicy:
    """The policy of a channel the generator always writes."""
    policy = snapshot.policy(channel)
    assert policy is not None, channel
    return policy


def test_channel_policies(demo: Snapshot) -> None:
    """The five channels exist with the buffers their business rules need."""
    for channel in ("web", "app", "marketplace", "wholesale", "store_pickup"):
        assert demo.policy(channel) is not None, channel
    web, marketplace, wholesale, pickup = (
        _policy(demo, c) for c in ("web", "marketplace", "wholesale", "store_pickup")
    )
    assert web.buffer_units(NodeKind.STORE, 5) == 1
    assert web.buffer_units(NodeKind.DC, 500) == 0
    assert web.in_transit_share == 0.95
    assert marketplace.buffer_units(NodeKind.STORE, 1) == 2
    assert marketplace.buffer_units(NodeKind.STORE, 20) == 4
    assert marketplace.buffer_units(NodeKind.DC, 100) == 5
    assert wholesale.buffer_units(NodeKind.STORE, 7) == 7
    assert wholesale.in_transit_share == 1.0
    assert all(pickup.buffer_units(kind, 5) == 0 for kind in NodeKind)


def test_json_round_trip(small: Snapshot) -> None:
    """The generated snapshot survives a full JSON dump and validation unchanged."""
    assert Snapshot.model_validate_json(small.model_dump_json()) == small


def test_as_of_anchors_generated_dates() -> None:
    """In-transit ETAs and labour overrides follow a caller's ``as_of``."""
    as_of = dt.datetime(2027, 3, 1, 9, 30, tzinfo=dt.UTC)
    snapshot = generate_network(nodes=50, skus=200, seed=2, as_of=as_of)
    assert snapshot.as_of == as_of
    etas = [lot.eta for row in snapshot.inventory for lot in row.in_transit]
    assert etas
    assert min(etas) >= as_of.date() + dt.timedelta(days=1)
    assert max(etas) <= as_of.date() + dt.timedelta(days=10)
    override_days = [day for node in snapshot.nodes for day in node.labour_minutes]
    assert override_days
    assert all(0 <= (day - as_of.date()).days <= 2 for day in override_days)
