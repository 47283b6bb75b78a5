"""A day on depleting stock: sequential policies, the joint plan and the pricing LPs."""

from __future__ import annotations

import functools
from collections import Counter

import pytest

from models import Engine, PromiseOption
from scenarios.day import Day, DayPolicy, DayResult, clairvoyant, run_day
from scenarios.day_networks import jasin_sinha_day, scarce_demo_day
from solver.basket_pricing import price_baskets


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
    relaxed = clairvoyant(small_day(), time_limit_s=120, engine="glop")
    # The LP relaxation bounds the plan from below (its objective includes the same penalty).
    assert relaxed.bound <= plan.bound + 1e-6


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
    day = scarce_demo_day(1, 60, dc_share=0.5, store_share=0.2)
    assert any(row.in_transit for row in day.snapshot.inventory)
    result = run_day(day, DayPolicy("myopic"))
    assert result.violations == 0
    rows = {(row.node_id, row.sku): row for row in day.snapshot.inventory}
    for key, units in shipped(result.answers).items():
        row = rows[key]
        assert units <= row.on_hand + sum(lot.quantity for lot in row.in_transit), key
