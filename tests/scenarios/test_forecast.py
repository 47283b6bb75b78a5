"""Forecasts for the pricing LP: a CSV file, and demand read from captured scenarios."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from models import Cart, CartLine, Destination, PromiseRequest, Snapshot
from scenarios import MEMORY, ScenarioStore
from scenarios.forecast import (
    ForecastError,
    baskets_from_store,
    baskets_of,
    forecast_from_store,
    is_basket_csv,
    read_basket_csv,
    read_forecast_csv,
    units_of,
)
from tests.solver.network_cases import MONDAY_10AM, dc, snapshot, stock

DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)
# Two points in one 1° cell (40..41 N, 75..74 W) and one in another (Chicago's).
TRENTON = (40.22, -74.76)
PRINCETON = (40.35, -74.66)
CHICAGO = (41.88, -87.63)


def _request(
    cart_id: str,
    lines: dict[str, int],
    *,
    at: dt.datetime,
    to: tuple[float, float] | str,
    channel: str = "web",
) -> PromiseRequest:
    """A cart of ``lines`` (sku → quantity) to a point or a postal code, requested ``at``."""
    destination = (
        Destination(postal_code=to) if isinstance(to, str) else Destination(lat=to[0], lon=to[1])
    )
    cart = Cart(
        cart_id=cart_id,
        channel=channel,
        lines=tuple(
            CartLine(line_id=f"l{i}", sku=sku, quantity=qty)
            for i, (sku, qty) in enumerate(lines.items())
        ),
    )
    return PromiseRequest(cart=cart, destination=destination, requested_at=at)


@pytest.fixture
def network() -> Snapshot:
    """One DC stocking SKUs A and B (the forecast reads only the requests)."""
    return snapshot([dc("DC1")], [stock("DC1", "A", 10), stock("DC1", "B", 10)])


@pytest.fixture
def store() -> Iterator[ScenarioStore]:
    """An empty in-memory scenario store."""
    with ScenarioStore(MEMORY) as opened:
        yield opened


def test_a_csv_forecast_has_one_region_per_point(tmp_path: Path) -> None:
    """Rows of one point are one region; a (point, SKU) given twice adds up."""
    path = tmp_path / "forecast.csv"
    path.write_text(
        "lat,lon,sku,units\n40.7,-74.0,A,3\n40.7,-74.0,B,1.5\n34.0,-118.2,A,2\n40.7,-74.0,A,1\n"
    )
    forecast = read_forecast_csv(path)
    assert forecast.skus == ("A", "B")
    assert forecast.lat.tolist() == [40.7, 34.0]
    assert forecast.lon.tolist() == [-74.0, -118.2]
    assert forecast.units.tolist() == [[4.0, 1.5], [2.0, 0.0]]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # no sku column
        ("lat,lon,units\n1,2,3\n", "header"),
        # a word where a number belongs, on the file's third line
        ("lat,lon,sku,units\n1,2,A,3\n1,2,B,many\n", ":3: lat, lon and units"),
        # a negative forecast
        ("lat,lon,sku,units\n1,2,A,-1\n", "at least 0"),
        # not a point on Earth
        ("lat,lon,sku,units\n91,2,A,1\n", "not a point"),
        # a header and nothing else
        ("lat,lon,sku,units\n", "no forecast rows"),
    ],
)
def test_a_bad_csv_forecast_is_refused_with_its_line(tmp_path: Path, text: str, said: str) -> None:
    """Each broken file says what and where."""
    path = tmp_path / "forecast.csv"
    path.write_text(text)
    with pytest.raises(ForecastError, match=said):
        read_forecast_csv(path)


def test_scenarios_become_demand_per_cell_scaled_to_the_horizon(
    store: ScenarioStore, network: Snapshot
) -> None:
    """A week of carts, one day ahead: units / 7 per cell, centred on the units' mean point."""
    at = MONDAY_10AM
    store.capture(_request("c1", {"A": 3}, at=at, to=TRENTON), network)
    store.capture(_request("c2", {"A": 1, "B": 7}, at=at + DAY, to=PRINCETON), network)
    store.capture(_request("c3", {"B": 14}, at=at + 2 * DAY, to=CHICAGO), network)
    built = forecast_from_store(store, horizon=DAY, lookback=WEEK)
    forecast = built.forecast
    assert (built.carts, built.units) == (3, 25)
    assert built.scale == pytest.approx(1 / 7)
    assert forecast.skus == ("A", "B")
    cells = {round(float(lat)): k for k, lat in enumerate(forecast.lat)}
    east, west = cells[40], cells[42]
    assert forecast.units[east].tolist() == pytest.approx([4 / 7, 7 / 7])
    assert forecast.units[west].tolist() == pytest.approx([0, 14 / 7])
    # Trenton carries 3 units, Princeton 8: the centre leans to Princeton.
    assert forecast.lat[east] == pytest.approx((3 * TRENTON[0] + 8 * PRINCETON[0]) / 11)
    assert forecast.lon[west] == pytest.approx(CHICAGO[1])


def test_a_cart_quoted_again_counts_once_as_last_quoted(
    store: ScenarioStore, network: Snapshot
) -> None:
    """Checkout quotes a cart on every view: only its last quote is demand."""
    store.capture(_request("c1", {"A": 5}, at=MONDAY_10AM, to=TRENTON), network)
    store.capture(_request("c1", {"A": 2}, at=MONDAY_10AM + DAY, to=TRENTON), network)
    built = forecast_from_store(store, horizon=WEEK, lookback=WEEK)
    assert (built.carts, built.units) == (1, 2)
    assert built.forecast.units.tolist() == [[2.0]]


def test_only_the_last_period_and_the_channel_count(
    store: ScenarioStore, network: Snapshot
) -> None:
    """A cart older than the lookback before the newest, or of another channel, is left out."""
    newest = MONDAY_10AM + 10 * DAY
    store.capture(_request("old", {"A": 100}, at=MONDAY_10AM, to=TRENTON), network)
    store.capture(_request("app", {"A": 50}, at=newest, to=TRENTON, channel="app"), network)
    store.capture(_request("new", {"A": 7}, at=newest, to=TRENTON), network)
    built = forecast_from_store(store, horizon=WEEK, lookback=WEEK, channel="web")
    assert built.units == 7
    assert built.until == newest + dt.timedelta(microseconds=1)
    with pytest.raises(ForecastError, match="no scenarios"):
        forecast_from_store(store, horizon=DAY, channel="marketplace")


def test_postal_codes_resolve_and_unknown_ones_are_left_out(
    store: ScenarioStore, network: Snapshot
) -> None:
    """A postal code lands where the solver would put it; an unknown one is counted apart."""
    store.capture(_request("ny", {"A": 4}, at=MONDAY_10AM, to="10001"), network)
    store.capture(_request("nowhere", {"A": 9}, at=MONDAY_10AM, to="00000"), network)
    built = forecast_from_store(store, horizon=WEEK, lookback=WEEK)
    assert (built.units, built.unresolved_units) == (13, 9)
    assert built.forecast.lat.tolist() == pytest.approx([40.7484], abs=1e-3)
    assert np.isclose(built.forecast.total, 4.0)


def test_an_empty_store_has_no_forecast(store: ScenarioStore) -> None:
    """Nothing captured, nothing to price from."""
    with pytest.raises(ForecastError, match="no scenarios"):
        forecast_from_store(store, horizon=DAY)


def test_scenarios_become_baskets_per_cell_scaled_to_the_horizon(
    store: ScenarioStore, network: Snapshot
) -> None:
    """Each cart is one order of its set of SKUs, per cell, scaled by horizon / lookback."""
    at = MONDAY_10AM
    store.capture(_request("c1", {"A": 3}, at=at, to=TRENTON), network)
    store.capture(_request("c2", {"A": 1, "B": 7}, at=at + DAY, to=PRINCETON), network)
    store.capture(_request("c3", {"B": 14}, at=at + 2 * DAY, to=CHICAGO), network)
    store.capture(_request("c4", {"B": 2, "A": 2}, at=at + 3 * DAY, to=TRENTON), network)
    built = baskets_from_store(store, horizon=DAY, lookback=WEEK)
    baskets = built.baskets
    assert (built.carts, built.units) == (4, 29)
    assert baskets.skus == ("A", "B")
    cells = {round(float(lat)): k for k, lat in enumerate(baskets.lat)}
    east, west = cells[40], cells[42]
    orders = {
        (int(r), items): float(n)
        for r, items, n in zip(baskets.region, baskets.items, baskets.orders, strict=True)
    }
    assert orders == pytest.approx(
        {(east, (0,)): 1 / 7, (east, (0, 1)): 2 / 7, (west, (1,)): 1 / 7}
    )
    # The cell's centre is its carts' mean point (Trenton twice, Princeton once).
    assert baskets.lat[east] == pytest.approx((2 * TRENTON[0] + PRINCETON[0]) / 3)
    # As units, each order wants one unit of each SKU of its basket.
    assert units_of(baskets).units[east].tolist() == pytest.approx([3 / 7, 2 / 7])


def test_a_basket_csv_adds_up_one_basket_whatever_the_sku_order(tmp_path: Path) -> None:
    """``B A`` and ``A B`` are one basket at one point; a units file reads as singletons."""
    path = tmp_path / "baskets.csv"
    path.write_text("lat,lon,skus,orders\n40.7,-74.0,A B,3\n40.7,-74.0,B  A,1\n34.0,-118.2,B,2\n")
    assert is_basket_csv(path)
    baskets = read_basket_csv(path)
    assert baskets.skus == ("A", "B")
    assert list(
        zip(baskets.region.tolist(), baskets.items, baskets.orders.tolist(), strict=True)
    ) == [
        (0, (0, 1), 4.0),
        (1, (1,), 2.0),
    ]
    units = tmp_path / "units.csv"
    units.write_text("lat,lon,sku,units\n40.7,-74.0,A,3\n40.7,-74.0,B,1.5\n")
    assert not is_basket_csv(units)
    singles = baskets_of(read_forecast_csv(units))
    assert (singles.items, singles.orders.tolist()) == (((0,), (1,)), [3.0, 1.5])
    bad = tmp_path / "bad.csv"
    bad.write_text("lat,lon,skus,orders\n40.7,-74.0,,3\n")
    with pytest.raises(ForecastError, match=":2: skus is empty"):
        read_basket_csv(bad)
