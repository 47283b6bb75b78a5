"""A day on depleting stock: sequential policies, the joint plan and the pricing LPs."""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter

import numpy as np
import pytest

from models import Cart, CartLine, Engine, PromiseOption, ServiceLevel
from scenarios.day import Day, DayPolicy, DayResult, clairvoyant, run_day
from scenarios.day_networks import jasin_sinha_day, scarce_demo_day
from solver import basket_pricing
from solver.basket_pricing import BasketForecast, price_baskets
from solver.costs import coefficients
from solver.joint import _dates_matter, _day_objective, _day_problems
from solver.prepared import prepare
from solver.pricing import Forecast
from tests.solver.network_cases import CHICAGO, MONDAY_10AM, dc, request, snapshot, stock, store


@functools.cache
def small_day() -> Day:
    """60 orders on the Jasin–Sinha-style network with stock cut to make them compete."""
    day = jasin_sinha_day(5, 60)
    # A third of the stock: orders deplete it and later ones must split or go unfilled.
    thin = tuple(
        row.model_copy(update={"on_hand": max(1, row.on_hand // 3)})
        for row in day.snapshot.inventory
    )
    snapshot = day.snapshot.model_copy(update={"inventory": thin})
    return Day(day.name, snapshot, day.orders, day.level, day.forecast, day.baskets)


@functools.cache
def replayed(policy: DayPolicy) -> DayResult:
    """One policy's run of the small day (policies are frozen, so they key the cache)."""
    return run_day(small_day(), policy)


POLICIES = (
    DayPolicy("myopic"),
    DayPolicy("nearest", engine=Engine.NEAREST),
    DayPolicy("units-fixed", pricing="fixed", lp="units"),
    DayPolicy("baskets-every-20", pricing="repriced", every=20),
)


def shipped(answers: tuple[PromiseOption, ...]) -> Counter[tuple[str, str]]:
    """Units shipped per (node, SKU) over a run."""
    out: Counter[tuple[str, str]] = Counter()
    for option in answers:
        for shipment in option.shipments:
            for line in shipment.lines:
                out[shipment.node_id, line.sku] += line.quantity
    return out


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_every_answer_checks_and_stock_is_never_promised_twice(policy: DayPolicy) -> None:
    """Each answer passes the checker on the state it was made on; stock is consumed, once."""
    result = replayed(policy)
    assert result.violations == 0
    assert result.orders == len(small_day().orders)
    on_hand = {(r.node_id, r.sku): r.on_hand for r in small_day().snapshot.inventory}
    for key, units in shipped(result.answers).items():
        assert units <= on_hand[key], key
    assert result.units + result.unfilled == small_day().units
    # Stock is a third of demand's comfortable level: some order must compete for it.
    assert result.split_orders > 0 or result.unfilled > 0


def test_priced_runs_count_their_pricing() -> None:
    """Fixed pricing runs the LP once; re-pricing every 20 of 60 orders runs it three times."""
    assert replayed(POLICIES[2]).pricing_runs == 1
    assert replayed(POLICIES[3]).pricing_runs == 3
    assert replayed(POLICIES[0]).pricing_runs == 0


def test_clairvoyant_plan_is_no_worse_than_any_policy() -> None:
    """The whole day as one model, proven optimal, costs no more than any sequential run."""
    runs = [replayed(policy) for policy in POLICIES]
    plan = clairvoyant(small_day(), time_limit_s=120, hints=[r.answers for r in runs])
    assert plan.optimal
    assert plan.cost is not None
    assert plan.unfilled is not None
    fewest = min(r.unfilled for r in runs)
    assert plan.unfilled <= fewest
    for run in runs:
        if run.unfilled == plan.unfilled:
            assert plan.cost <= run.cost, run.policy
    assert plan.bound == pytest.approx(plan.cost, abs=1.0)
    # The LP relaxation bounds the plan's whole objective from below, the unfilled term
    # included (it has no plan whose unfilled units could be taken out).
    assert plan.allocations is not None
    problems = _day_problems(small_day().orders, prepare(small_day().snapshot), small_day().level)
    coefs = [coefficients(problem) for problem in problems]
    objective = _day_objective(problems, plan.allocations, coefs)[0]
    relaxed = clairvoyant(small_day(), time_limit_s=120, engine="glop", strengthen=False)
    strong = clairvoyant(small_day(), time_limit_s=120, engine="glop")
    assert relaxed.status == strong.status == "OPTIMAL"
    assert relaxed.bound <= strong.bound + 1e-6
    assert strong.bound <= objective + 1e-6


def test_basket_prices_are_duals_of_scarce_stock_only() -> None:
    """The order-level LP prices only stock the forecast cannot do without."""
    day = small_day()
    run = price_baskets(day.snapshot, day.baskets, channel="web")
    assert run.status == "OPTIMAL"
    assert len(run.prices) > 0
    plenty = price_baskets(
        day.snapshot.model_copy(
            update={
                "inventory": tuple(
                    row.model_copy(update={"on_hand": 10_000}) for row in day.snapshot.inventory
                )
            }
        ),
        day.baskets,
        channel="web",
    )
    assert len(plenty.prices) == 0


def test_scarce_demo_day_cuts_dc_stock_only() -> None:
    """The scarce demo day keeps store stock and holds DC stock below the day's demand."""
    day = scarce_demo_day(1, 50)
    kinds = {node.node_id: node.kind.value for node in day.snapshot.nodes}
    dc_units = sum(r.on_hand for r in day.snapshot.inventory if kinds[r.node_id] == "dc")
    # Each SKU's DC stock is scaled to at most 60 % of its expected units (rounded down).
    assert 0 < dc_units <= 0.6 * day.forecast.units.sum()
    assert all(order.service_levels == (day.level,) for order in day.orders)
    assert [o.requested_at for o in day.orders] == sorted(o.requested_at for o in day.orders)  # type: ignore[type-var]


def test_units_from_lots_are_taken_once() -> None:
    """On a day whose stores hold in-transit lots, no (node, SKU) ships more than it will have.

    Units beyond what is free on hand come out of the lots, earliest first, so a lot's units
    are never promised to two orders.
    """
    day = scarce_demo_day(1, 60, dc_share=0.5, store_share=0.2, in_transit=True)
    assert any(row.in_transit for row in day.snapshot.inventory)
    result = run_day(day, DayPolicy("myopic"))
    assert result.violations == 0
    rows = {(row.node_id, row.sku): row for row in day.snapshot.inventory}
    for key, units in shipped(result.answers).items():
        row = rows[key]
        assert units <= row.on_hand + sum(lot.quantity for lot in row.in_transit), key


def test_a_day_plan_charges_protection_once_as_a_replay_does() -> None:
    """Two carts of one A: the store's last free unit goes to one, Chicago ships the other.

    The store holds 3 A (2 promisable past the web buffer, 1 above its protection level). A
    replay pays protection on the second cart that takes from the store, so it ships from
    Chicago; a plan charging each cart protection against the opening stock would send both
    carts to the store for free. The proven plan matches the replay to the cent.
    """
    network = snapshot(
        [store("NYC", protection_units=1), dc("CHI", location=CHICAGO)],
        [stock("NYC", "A", 3), stock("CHI", "A", 100)],
    )
    orders = tuple(
        request(("A", 1), at=MONDAY_10AM + dt.timedelta(minutes=k)).model_copy(
            update={
                "cart": Cart(
                    cart_id=f"c{k}",
                    channel="web",
                    lines=(CartLine(line_id="l1", sku="A", quantity=1, unit_price=2000),),
                ),
                "service_levels": (ServiceLevel.GROUND,),
            }
        )
        for k in range(2)
    )
    empty = np.zeros(0)
    day = Day(
        name="protected",
        snapshot=network,
        orders=orders,
        level=ServiceLevel.GROUND,
        forecast=Forecast(empty, empty, ("A",), np.zeros((0, 1))),
        baskets=BasketForecast(empty, empty, ("A",), np.zeros(0, np.int64), (), empty),
    )
    myopic = run_day(day, DayPolicy("myopic"))
    assert myopic.violations == 0
    assert [s.node_id for o in myopic.answers for s in o.shipments] == ["NYC", "CHI"]
    plan = clairvoyant(day, time_limit_s=30)
    assert plan.optimal
    assert plan.allocations is not None
    assert plan.cost == myopic.cost
    assert plan.bound == pytest.approx(plan.cost, abs=1.0)


@pytest.mark.parametrize(("minutes", "matters"), [(1, True), (10, False), (0, False)])
def test_dates_matter_only_when_a_limit_can_run_out(minutes: int, matters: bool) -> None:
    """Labour covering every promisable unit (or none at all) leaves only the first date."""
    # 10 units at 30 s each need 5 minutes of picking: 1 minute can run out, 10 cannot, and
    # 0 ships nothing on any date.
    network = snapshot([dc("PHL", daily_labour_minutes=minutes)], [stock("PHL", "A", 10)])
    assert _dates_matter(network, ServiceLevel.GROUND, {"web"}) is matters


def test_the_scarce_demo_day_needs_every_date_only_with_its_lots() -> None:
    """Lots in transit make later dates richer; arrived, they leave the first date enough."""
    assert not _dates_matter(scarce_demo_day(1, 20).snapshot, ServiceLevel.GROUND, {"web"})
    with_lots = scarce_demo_day(1, 20, in_transit=True)
    assert _dates_matter(with_lots.snapshot, ServiceLevel.GROUND, {"web"})


def test_an_opportunity_weight_of_zero_ignores_the_prices() -> None:
    """Priced at weight 0 (the request's override), the day is the myopic day, order by order."""

    def sources(result: DayResult) -> list[tuple[str, ...]]:
        return [tuple(s.node_id for s in option.shipments) for option in result.answers]

    weightless = DayPolicy("w0", pricing="repriced", every=20, opportunity=0)
    ignored = run_day(small_day(), weightless)
    assert ignored.pricing_runs == 3
    assert ignored.violations == 0
    myopic = replayed(POLICIES[0])
    assert ignored.cost == myopic.cost
    assert sources(ignored) == sources(myopic)
    # At the channel's weight the same prices change where some order ships from.
    assert sources(replayed(POLICIES[3])) != sources(myopic)


def test_basket_lp_written_in_slices_is_the_same_lp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Baskets written a few at a time make the same LP: the same optimum, columns and prices."""
    day = small_day()
    whole = price_baskets(day.snapshot, day.baskets, channel="web")
    monkeypatch.setattr(basket_pricing, "CHUNK_CELLS", 7)
    sliced = price_baskets(day.snapshot, day.baskets, channel="web")
    assert sliced.status == whole.status == "OPTIMAL"
    assert sliced.arcs == whole.arcs
    assert sliced.objective == pytest.approx(whole.objective, rel=1e-9)
    assert sliced.prices.rows() == whole.prices.rows()
