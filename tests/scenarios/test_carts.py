"""Tests of the synthetic cart generator: sizes, popularity, destinations and instants."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter

import numpy as np
import pytest

from models import Destination, PromiseRequest, Snapshot
from scenarios import (
    CART_SIZE_PMF,
    MAX_CART_LINES,
    demo_snapshot,
    generate_carts,
    generate_network,
    postal_codes,
    sku_popularity,
)
from solver.geo import resolve_destination

COUNT = 3_000


@pytest.fixture(scope="module")
def demo() -> Snapshot:
    """The embedded demo network."""
    return demo_snapshot()


@pytest.fixture(scope="module")
def carts(demo: Snapshot) -> list[PromiseRequest]:
    """A few thousand web carts: enough for the size tail and popularity skew to show."""
    return generate_carts(demo, count=COUNT)


def test_same_seed_same_carts(demo: Snapshot, carts: list[PromiseRequest]) -> None:
    """Carts are a pure function of the arguments, and fewer carts are a prefix of more."""
    assert generate_carts(demo, count=200) == carts[:200]
    assert generate_carts(demo, count=300)[-1] == carts[299]
    other = generate_carts(demo, count=200, seed=12)
    assert other != carts[:200]


def test_cart_ids_unique_and_defaults(carts: list[PromiseRequest]) -> None:
    """Every cart has its own id; requests keep the checkout defaults."""
    assert len({request.cart.cart_id for request in carts}) == COUNT
    for request in carts:
        assert request.cart.channel == "web"
        assert request.allow_partial is False
        assert request.service_levels is None
        assert request.max_shipments is None


def test_size_mix(carts: list[PromiseRequest]) -> None:
    """Mostly one to three lines, about 60 % single-line, and a tail past twenty lines."""
    sizes = np.array([len(request.cart.lines) for request in carts])
    assert 0.55 <= np.mean(sizes == 1) <= 0.65
    assert np.mean(sizes <= 3) >= 0.80
    assert (sizes > 20).any()
    assert sizes.max() <= MAX_CART_LINES
    assert CART_SIZE_PMF.sum() == pytest.approx(1.0)


def test_lines_name_catalog_skus_at_list_price(demo: Snapshot, carts: list[PromiseRequest]) -> None:
    """Lines use distinct catalog SKUs, priced at list, mostly one unit."""
    price = {item.sku: item.list_price for item in demo.items}
    quantities = []
    for request in carts:
        skus = [line.sku for line in request.cart.lines]
        assert len(set(skus)) == len(skus)
        for line in request.cart.lines:
            assert line.unit_price == price[line.sku]
            quantities.append(line.quantity)
    counts = Counter(quantities)
    assert set(counts) <= {1, 2, 3}
    assert counts[1] / len(quantities) >= 0.8
    assert counts[2] > 0


def test_popularity_is_skewed(demo: Snapshot, carts: list[PromiseRequest]) -> None:
    """The top tenth of the catalog takes most cart lines."""
    counts = Counter(line.sku for request in carts for line in request.cart.lines)
    top = sum(count for _, count in counts.most_common(len(demo.items) // 10))
    assert top / sum(counts.values()) > 0.5


def test_popularity_follows_network_stock(demo: Snapshot) -> None:
    """SKUs with more network stock rank as more popular."""
    share = sku_popularity(demo)
    assert share.sum() == pytest.approx(1.0)
    stock = Counter[str]()
    for row in demo.inventory:
        stock[row.sku] += row.on_hand + sum(lot.quantity for lot in row.in_transit)
    position = {item.sku: k for k, item in enumerate(demo.items)}
    most, least = stock.most_common()[0][0], stock.most_common()[-1][0]
    assert share[position[most]] == share.max()
    assert share[position[most]] > 100 * share[position[least]]


def test_every_destination_resolves(carts: list[PromiseRequest]) -> None:
    """Cart destinations are postal codes the solver's offline dataset knows."""
    regions = Counter(resolve_destination(request.destination).region for request in carts)
    assert len(regions) >= 30
    # Population weighting: the most populous states lead.
    assert {region for region, _ in regions.most_common(3)} & {"CA", "TX", "NY", "FL"}


def test_every_postal_code_in_the_table_resolves() -> None:
    """No code the generator can draw fails to resolve; weights form a distribution."""
    table = postal_codes()
    assert table.weight.sum() == pytest.approx(1.0)
    assert (table.weight > 0).all()
    for code in table.codes:
        resolve_destination(Destination(postal_code=code))


def test_order_instants(demo: Snapshot, carts: list[PromiseRequest]) -> None:
    """Orders fall within the week after as_of, at local shopping hours, weekends included."""
    local_hours, local_weekdays = [], []
    for request in carts:
        assert request.requested_at is not None
        assert request.requested_at.utcoffset() == dt.timedelta(0)
        assert demo.as_of <= request.requested_at < demo.as_of + dt.timedelta(days=7)
        zone = zoneinfo.ZoneInfo(resolve_destination(request.destination).time_zone)
        local = request.requested_at.astimezone(zone)
        local_hours.append(local.hour)
        local_weekdays.append(local.weekday())
    hours = Counter(local_hours)
    # Evenings (after every store and most DC cutoffs) are busier than the small hours.
    assert sum(hours[h] for h in range(19, 22)) > 5 * sum(hours[h] for h in range(2, 5))
    assert sum(hours[h] for h in range(20, 24)) > 0
    assert {5, 6} <= set(local_weekdays)


def test_custom_start_and_channel(demo: Snapshot) -> None:
    """A caller's start moves the window; the channel is stamped on every cart."""
    start = dt.datetime(2026, 12, 14, 0, 0, tzinfo=dt.UTC)
    requests = generate_carts(demo, count=100, channel="marketplace", start=start)
    assert len(requests) == 100
    for request in requests:
        assert request.cart.channel == "marketplace"
        assert request.requested_at is not None
        assert start <= request.requested_at < start + dt.timedelta(days=7)


def test_unknown_sku_rate() -> None:
    """A share of unknown SKUs exercises unknown-SKU handling; zero means none."""
    snapshot = generate_network(nodes=50, skus=100, seed=1)
    known = {item.sku for item in snapshot.items}
    requests = generate_carts(snapshot, count=400, unknown_sku_rate=0.5)
    skus = [line.sku for request in requests for line in request.cart.lines]
    unknown = sum(sku not in known for sku in skus)
    assert 0.35 < unknown / len(skus) < 0.65
    plain = generate_carts(snapshot, count=400)
    assert all(line.sku in known for request in plain for line in request.cart.lines)


def test_small_catalog_caps_cart_size() -> None:
    """A catalog smaller than the size tail still yields carts of distinct SKUs."""
    snapshot = generate_network(nodes=50, skus=10, seed=1)
    requests = generate_carts(snapshot, count=2_000)
    assert max(len(request.cart.lines) for request in requests) <= 10
    for request in requests:
        skus = [line.sku for line in request.cart.lines]
        assert len(set(skus)) == len(skus)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": -1}, "count"),  # negative count
        ({"count": 5, "channel": "fax"}, "no policy"),  # channel without a policy
        ({"count": 5, "unknown_sku_rate": 1.5}, "unknown_sku_rate"),
        ({"count": 5, "start": dt.datetime(2026, 12, 1)}, "timezone-aware"),
    ],
)
def test_bad_arguments_are_rejected(
    demo: Snapshot, kwargs: dict[str, object], message: str
) -> None:
    """Arguments the generator cannot honour raise ValueError."""
    with pytest.raises(ValueError, match=message):
        generate_carts(demo, **kwargs)  # type: ignore[arg-type]


def test_zero_carts(demo: Snapshot) -> None:
    """Asking for no carts returns an empty list."""
    assert generate_carts(demo, count=0) == []
