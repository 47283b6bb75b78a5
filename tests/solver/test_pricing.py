"""The opportunity cost of stock: exact LP duals, and the objective term that charges them."""

from __future__ import annotations

import numpy as np
import pytest

from models import Snapshot, StockPrices, WeightOverrides
from solver import SolveParams, solve
from solver.basket_pricing import BasketForecast, price_baskets
from solver.checker import check
from solver.pricing import Forecast, price_stock
from tests.solver.network_cases import (
    CHICAGO,
    LOS_ANGELES,
    MONDAY_10AM,
    dc,
    request,
    snapshot,
    stock,
    store,
)

# Two DCs, one SKU (A, 500 g: 1 billable kg), two regions. One unit shipped alone costs
# base + 100 per zone above 1 + 100 per kg, + handling 200 + pick 50 (default weights):
#   Philadelphia → New York  zone 2: 1,100 + 100 + 250 = 1,450
#   Chicago      → New York  zone 5: 1,400 + 100 + 250 = 1,750
#   Philadelphia → Los Angeles zone 8: 1,700 + 100 + 250 = 2,050
#   Chicago      → Los Angeles zone 7: 1,600 + 100 + 250 = 1,950
# Forecast: 20 units to New York, 10 to Los Angeles. Stock: Philadelphia 15, Chicago 100.
# The LP ships Philadelphia's 15 to New York and Chicago the other 5 plus Los Angeles' 10.
# Chicago keeps stock (slack), so its price is 0 and New York's marginal unit costs 1,750
# (it comes from Chicago); Philadelphia's arc to New York is used, so 1,450 + λ = 1,750:
# one more unit at Philadelphia saves 300 cents. Every dual is unique here (no degeneracy:
# Philadelphia's stock is not exactly one region's demand).
PHILADELPHIA_PRICE = 300


def two_dcs(philadelphia: int = 15, chicago: int = 100) -> Snapshot:
    """The hand-checked network: Philadelphia and Chicago DCs stocking SKU A."""
    return snapshot(
        [dc("PHL"), dc("CHI", location=CHICAGO)],
        [stock("PHL", "A", philadelphia), stock("CHI", "A", chicago)],
    )


def forecast(new_york: float = 20, los_angeles: float = 10) -> Forecast:
    """The hand-checked forecast of SKU A in two regions."""
    return Forecast(
        lat=np.array([40.7484, LOS_ANGELES.lat]),
        lon=np.array([-73.9967, LOS_ANGELES.lon]),
        skus=("A",),
        units=np.array([[new_york], [los_angeles]]),
    )


def test_price_is_the_hand_computed_dual() -> None:
    """Philadelphia's unit is worth exactly 300 cents; Chicago's nothing."""
    run = price_stock(two_dcs(), forecast(), channel="web")
    assert run.status == "OPTIMAL"
    assert run.prices.price("PHL", "A") == PHILADELPHIA_PRICE
    assert run.prices.price("CHI", "A") == 0
    # The LP's optimum: 15 × 1,450 + 5 × 1,750 + 10 × 1,950.
    assert run.objective == pytest.approx(15 * 1450 + 5 * 1750 + 10 * 1950)


def test_plentiful_stock_is_free() -> None:
    """When Philadelphia can cover New York with stock to spare, no unit has a price."""
    run = price_stock(two_dcs(philadelphia=50), forecast(), channel="web")
    assert len(run.prices) == 0
    # No LP was needed: each region takes its cheapest node (New York Philadelphia, Los
    # Angeles Chicago) and both keep stock, so the optimum is 20 × 1,450 + 10 × 1,950.
    assert (run.skus, run.screened) == (1, 1)
    assert run.objective == pytest.approx(20 * 1450 + 10 * 1950)


def test_stock_filled_exactly_still_goes_to_the_lp() -> None:
    """Philadelphia holding exactly New York's 20 is not slack: its price is for the LP to say."""
    run = price_stock(two_dcs(philadelphia=20), forecast(), channel="web")
    assert run.screened == 0
    assert run.objective == pytest.approx(20 * 1450 + 10 * 1950)


def test_regions_beyond_the_nearest_nodes_are_cut() -> None:
    """With one arc per region, each region only sees its cheapest node."""
    run = price_stock(two_dcs(), forecast(), channel="web", nearest=1)
    # New York sees only Philadelphia, Los Angeles only Chicago (1,950 < 2,050). New York's
    # last 5 units go unmet at the SKU's unmet cost (its dearest kept arc + 100 = 2,050), so
    # Philadelphia's price is that cost less its own arc: 2,050 − 1,450.
    assert run.prices.price("PHL", "A") == 1950 + 100 - 1450


def test_prices_change_the_answer_and_the_checker_agrees() -> None:
    """A price above the objective difference sends the unit from Chicago, and says so.

    Chicago costs 1,750 + 4 days × 50 lateness = 1,950; Philadelphia 1,450 + 1 day × 50 =
    1,500, so a price above 450 cents moves the unit.
    """
    snap = two_dcs()
    req = request(("A", 1), service_levels=("ground",))
    plain = solve(req, snap, params=SolveParams(now=MONDAY_10AM))
    assert plain.options[0].shipments[0].node_id == "PHL"
    prices = StockPrices.of([("PHL", "A", 451)], version=3)
    priced = solve(req, snap, params=SolveParams(now=MONDAY_10AM), prices=prices)
    option = priced.options[0]
    assert option.shipments[0].node_id == "CHI"
    assert option.opportunity_cost == 0
    assert priced.solver.prices_version == 3
    assert "opportunity cost of stock changed this answer" in option.explanation
    check(priced, req, snap, prices=prices).raise_if_violated()
    # Margin and cost stay money: the price is only in the objective.
    assert option.cost.total > plain.options[0].cost.total


def test_weight_zero_ignores_the_table() -> None:
    """A request that weighs the opportunity cost at 0 gets the unpriced answer."""
    snap = two_dcs()
    req = request(("A", 1), service_levels=("ground",), weights=WeightOverrides(opportunity=0))
    prices = StockPrices.of([("PHL", "A", 400)])
    result = solve(req, snap, params=SolveParams(now=MONDAY_10AM), prices=prices)
    option = result.options[0]
    assert option.shipments[0].node_id == "PHL"
    assert option.opportunity_cost == 400
    check(result, req, snap, prices=prices).raise_if_violated()


def test_checker_counts_the_opportunity_cost() -> None:
    """An answer priced with a table fails a check against another table."""
    snap = two_dcs()
    req = request(("A", 2), service_levels=("ground",))
    prices = StockPrices.of([("PHL", "A", 100)])
    result = solve(req, snap, params=SolveParams(now=MONDAY_10AM), prices=prices)
    option = result.options[0]
    assert option.shipments[0].node_id == "PHL"
    assert option.opportunity_cost == 200
    check(result, req, snap, prices=prices).raise_if_violated()
    other = check(result, req, snap, prices=StockPrices.of([("PHL", "A", 101)]))
    assert other.families == {0}


def test_a_table_that_prices_nothing_is_still_reported() -> None:
    """An answer names the table in force even when it holds no price (plentiful stock)."""
    req = request(("A", 1), service_levels=("ground",))
    empty = StockPrices.of([], version=5)
    result = solve(req, two_dcs(), params=SolveParams(now=MONDAY_10AM), prices=empty)
    assert result.solver.prices_version == 5
    unpriced = solve(req, two_dcs(), params=SolveParams(now=MONDAY_10AM))
    assert unpriced.solver.prices_version is None


def test_the_basket_lp_prices_a_protected_unit_by_its_protection_row() -> None:
    """Two orders of one A to New York: the store's one unit above protection is worth 250.

    The Manhattan store (protection 1) holds 3 A, 2 promisable past the web buffer: one free,
    one below protection. A package of A to New York from it costs 1,100 shipping (zone 1) +
    50 lateness (1 day) + 400 handling + 150 pick = 1,700; from Chicago 1,500 (zone 5) + 200
    lateness (4 days) + 200 + 50 = 1,950. The second order's 1,700 + 300 protection is dearer
    than Chicago, so it ships from Chicago: the stock row is slack (λ = 0) and the protection
    row binds, μ = 1,950 − 1,700 = 250 cents.
    """
    network = snapshot(
        [store("NYC", protection_units=1), dc("CHI", location=CHICAGO)],
        [stock("NYC", "A", 3), stock("CHI", "A", 100)],
    )
    forecast = BasketForecast(
        lat=np.array([40.7484]),
        lon=np.array([-73.9967]),
        skus=("A",),
        region=np.array([0]),
        items=((0,),),
        orders=np.array([2.0]),
    )
    run = price_baskets(network, forecast, channel="web")
    assert run.status == "OPTIMAL"
    assert run.prices.rows() == [("NYC", "A", 250)]
