"""Optimal means optimal: one hand-checked case per way an answer used to claim too much.

Each case failed before its fix; each answer runs the independent checker and, where the
optimum is known by hand, is compared with it and with the exact reference.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from models import (
    Buffer,
    CarrierService,
    ChannelPolicy,
    NodeKind,
    ObjectiveWeights,
    PromiseRequest,
    PromiseResult,
    ServiceLevel,
    Snapshot,
    Status,
    WeightOverrides,
    ZoneRate,
)
from solver import SolveParams, prepare, solve
from solver.availability import availability
from solver.checker import check
from solver.costs import (
    MAX_OBJECTIVE,
    MarginFloorRangeError,
    ObjectiveRangeError,
    coefficients,
    evaluate,
)
from solver.mip import solve_mip
from solver.problem import build_context, build_problem
from tests.solver.network_cases import (
    CHICAGO,
    LOS_ANGELES,
    MANHATTAN,
    MONDAY_10AM,
    dc,
    ground,
    lot,
    request,
    snapshot,
    stock,
)

LONG = SolveParams(time_budget_ms=4000)
EXACT = SolveParams(time_budget_ms=8000, exact=True)
GROUND = (ServiceLevel.GROUND,)


def _solve(req: PromiseRequest, snap: Snapshot, params: SolveParams = LONG) -> PromiseResult:
    """Solve, check, and compare every proven option with the exact reference."""
    result = solve(req, snap, params=params)
    assert check(result, req, snap).ok, check(result, req, snap).summary()
    exact = solve(req, snap, params=EXACT)
    assert check(exact, req, snap).ok
    for mine, ref in zip(result.options, exact.options, strict=True):
        assert ref.proven
        assert mine.objective >= ref.objective
        if mine.proven:
            assert mine.objective == ref.objective
    return result


def _ground(req: PromiseRequest, snap: Snapshot, params: SolveParams = LONG) -> Any:
    """The ground option of a checked solve."""
    (option,) = _solve(req, snap, params).options
    return option


def test_prefilter_does_not_keep_nodes_that_cannot_ship() -> None:
    """Cheap nodes with no carrier capacity fill the pre-filter; the far optimum still wins.

    The optimum is a node no baseline picks, and it must be found (and proven) anyway.

    Los Angeles (zone 8): base 1,700 + 100 per kg + handling 0 + pick 50 = 1,850, ships Mon
    30 Nov, six transit days to Tue 8 Dec = 8 days × 50 = 400: 2,250. Chicago (zone 5, the
    nearest that can ship, so every baseline's pick): 1,400 + 100 + 900 + 50 + 4 days × 50
    = 2,650.
    """
    blocked = [dc(f"blocked{k}", location=MANHATTAN, handling_cost=0) for k in range(4)]
    nodes = [
        *blocked,
        dc("chicago", location=CHICAGO, handling_cost=900, priority=1),
        dc("la", location=LOS_ANGELES, handling_cost=0, priority=9),
    ]
    service = ground(daily_capacity_by_node={n.node_id: 0 for n in blocked})
    snap = snapshot(nodes, [stock(n.node_id, "A", 5) for n in nodes], services=[service])
    option = _ground(request(("A", 1), service_levels=GROUND), snap)
    assert [s.node_id for s in option.shipments] == ["la"]
    assert option.objective == 2250
    assert option.status is Status.OPTIMAL
    assert option.proven


def test_prefilter_does_not_keep_nodes_without_labour() -> None:
    """Labour below one pick at the four cheap nodes: the same far optimum, 2,250."""
    blocked = [
        dc(f"tired{k}", location=MANHATTAN, handling_cost=0, daily_labour_minutes=0)
        for k in range(4)
    ]
    nodes = [
        *blocked,
        dc("chicago", location=CHICAGO, handling_cost=900, priority=1),
        dc("la", location=LOS_ANGELES, handling_cost=0, priority=9),
    ]
    snap = snapshot(nodes, [stock(n.node_id, "A", 5) for n in nodes])
    option = _ground(request(("A", 1), service_levels=GROUND), snap)
    assert [s.node_id for s in option.shipments] == ["la"]
    assert option.objective == 2250


def test_every_dispatch_date_of_the_horizon_can_ship() -> None:
    """No capacity on Mon 30 Nov and Tue 1 Dec: the package leaves Wed 2 Dec (the third date).

    Philadelphia (zone 2): base 1,100 + 100 × 1 kg + handling 200 + pick 50 = 1,450; Wed
    ship, one transit day: Thu 3 Dec, 3 days × 50 = 150. Objective 1,600.
    """
    closed = {dt.date(2026, 11, 30): 0, dt.date(2026, 12, 1): 0}
    service = ground(remaining_capacity={"phl": closed})
    snap = snapshot([dc("phl")], [stock("phl", "A", 5)], services=[service])
    option = _ground(request(("A", 1), service_levels=GROUND), snap)
    assert option.status is Status.OPTIMAL
    (shipment,) = option.shipments
    assert shipment.ship_date == dt.date(2026, 12, 2)
    assert option.objective == 1600


def test_labour_short_on_several_days_spreads_over_later_dates() -> None:
    """Two picks of labour a day: five units need three dispatch dates, all of them kept.

    60 s of labour a day at 30 s a pick; only two dates were kept, so the answer was partial.
    """
    node = dc("phl", daily_labour_minutes=1)  # 60 s a day: two units of 30 s
    snap = snapshot([node], [stock("phl", "A", 9)])
    option = _ground(request(("A", 5), service_levels=GROUND, max_shipments=3), snap)
    assert option.status is Status.OPTIMAL
    assert sorted(s.ship_date for s in option.shipments) == [
        dt.date(2026, 11, 30),
        dt.date(2026, 12, 1),
        dt.date(2026, 12, 2),
    ]


def test_the_model_does_not_refund_a_split_penalty_when_nothing_ships() -> None:
    """The empty answer costs its unfilled units inside the MIP, with no split refund.

    Shipping 1 unit costs 1,500 (Philadelphia, 1,450 + 1 day × 50); leaving it unfilled costs
    2,000. The empty answer used to cost 2,000 − 1,500 (split refund) inside the MIP.
    """
    weights = WeightOverrides(unfilled_per_unit=2000, split_penalty=1500)
    req = request(("A", 1), service_levels=GROUND, allow_partial=True, weights=weights)
    snap = snapshot([dc("phl")], [stock("phl", "A", 5)])
    assert req.requested_at is not None
    ctx = build_context(req, prepare(snap), req.requested_at)
    problem = build_problem(ctx, ServiceLevel.GROUND, {0})
    coef = coefficients(problem)
    outcome = solve_mip(problem, coef, hint=None, deadline=time.perf_counter() + 2.0)
    assert outcome.x is not None
    assert outcome.optimal
    assert outcome.cp_status == "OPTIMAL"  # CP-SAT's own word, kept beside ours
    assert int(outcome.x.sum()) == 1
    assert evaluate(problem, outcome.x, coef).objective == 1500


def _margin_case(unit_cost: int) -> tuple[PromiseRequest, Snapshot]:
    """One unit at 100,000 cents from Philadelphia (fulfilment 1,450) under a 12.345 % floor."""
    snap = snapshot([dc("phl")], [stock("phl", "A", 5, unit_cost=unit_cost)])
    req = request(("A", 1), price=100_000, service_levels=GROUND, min_margin_pct=12.345)
    return req, snap


def test_margin_floor_is_exact_below() -> None:
    """Margin 100,000 − 86,207 − 1,450 = 12,343 < 12,345: refused (12.34 % used to pass)."""
    option = _ground(*_margin_case(86_207))
    assert option.status is Status.UNFULFILLABLE
    assert [u.reason.value for u in option.unfulfilled] == ["margin_floor"]


def test_margin_floor_is_exact_at_the_floor() -> None:
    """Margin 12,345 is exactly 12.345 % of 100,000: accepted (float rounding used to refuse)."""
    option = _ground(*_margin_case(86_205))
    assert option.status is Status.OPTIMAL
    assert option.margin == 12_345


def test_lateness_never_counts_below_zero_days() -> None:
    """A node whose local date is behind New York's delivers "before" the order date.

    Order at 00:30 Tue 1 Dec in New York = 21:30 Mon 30 Nov in Los Angeles time; the Manhattan
    node keeps Los Angeles time (cutoff 23:00), so its same-day courier delivers Mon 30 Nov,
    a day before New York's order date. Late days are 0, not −1: objective 500 + 0 + 200 + 50
    = 750 (base 500, no per-kg, handling 200, pick 50).
    """
    courier = CarrierService(
        service_id="courier",
        service_level=ServiceLevel.SAME_DAY,
        transit_days=(0,) * 8,
        rates=tuple(ZoneRate(base=500, per_kg=0) for _ in range(8)),
        pickup_weekdays=(0, 1, 2, 3, 4, 5, 6),
        delivery_weekdays=(0, 1, 2, 3, 4, 5, 6),
        max_distance_km=50,
    )
    node = dc("nyc", location=MANHATTAN, time_zone="America/Los_Angeles", cutoff=dt.time(23, 0))
    snap = snapshot([node], [stock("nyc", "A", 5)], services=[courier])
    at = dt.datetime(2026, 12, 1, 5, 30, tzinfo=dt.UTC)
    result = _solve(request(("A", 1), at=at), snap)
    (option,) = result.options
    assert result.order_date == dt.date(2026, 12, 1)
    assert option.promised_delivery_date == dt.date(2026, 11, 30)
    assert option.objective == 750


def test_in_transit_share_is_exact() -> None:
    """A share of 0.29 of a 100-unit lot is 29 units everywhere (binary floats gave 28)."""
    policy = ChannelPolicy(channel="web", in_transit_share=0.29)
    row = stock("phl", "A", 0, in_transit=(lot(100, dt.date(2026, 11, 30)),))
    snap = snapshot([dc("phl")], [row], policies=[policy])
    option = _ground(request(("A", 29), service_levels=GROUND), snap)
    assert option.status is Status.OPTIMAL
    assert sum(line.quantity for s in option.shipments for line in s.lines) == 29
    report = availability(snap, ["A"], "web")
    assert report.skus[0].total.available_with_in_transit == 29
    refused = _ground(request(("A", 30), service_levels=GROUND), snap)
    assert refused.status is Status.UNFULFILLABLE


def test_buffer_percent_is_exact() -> None:
    """A 12.5 % buffer on 9 units keeps ceil(1.125) = 2, leaving 7 for the web."""
    policy = ChannelPolicy(channel="web", buffers={NodeKind.DC: Buffer(percent=12.5)})
    snap = snapshot([dc("phl")], [stock("phl", "A", 9)], policies=[policy])
    assert _ground(request(("A", 7), service_levels=GROUND), snap).status is Status.OPTIMAL
    assert _ground(request(("A", 8), service_levels=GROUND), snap).status is (Status.UNFULFILLABLE)


def test_decimals_beyond_six_places_are_refused() -> None:
    """Fractions are read as written, so they must be exact with six decimals at most."""
    with pytest.raises(ValidationError, match="decimal places"):
        ChannelPolicy(channel="web", in_transit_share=0.1234567)
    with pytest.raises(ValidationError, match="decimal places"):
        WeightOverrides(shipping=1.0000001)


def test_complete_answer_wins_without_allow_partial_however_cheap_unfilled_is() -> None:
    """Without allow_partial the cheapest complete answer is given when one exists.

    unfilled_per_unit = 1: leaving two units costs 2, shipping costs 1,550 (Philadelphia:
    1,100 + 100 × 1 kg + 200 + 2 × 50 + 1 day × 50).
    """
    snap = snapshot([dc("phl")], [stock("phl", "A", 5)])
    req = request(("A", 2), service_levels=GROUND, weights=WeightOverrides(unfilled_per_unit=1))
    option = _ground(req, snap)
    assert option.status is Status.OPTIMAL
    assert option.objective == 1550


def test_unfulfillable_only_when_no_complete_answer_exists() -> None:
    """Three units wanted, two in stock: unfulfillable, proven, objective 3 × unfilled."""
    snap = snapshot([dc("phl")], [stock("phl", "A", 2)])
    req = request(("A", 3), service_levels=GROUND, weights=WeightOverrides(unfilled_per_unit=7))
    option = _ground(req, snap)
    assert option.status is Status.UNFULFILLABLE
    assert option.proven
    assert option.objective == 21
    assert [u.quantity for u in option.unfulfilled] == [1]


def _split_cart() -> tuple[PromiseRequest, Snapshot]:
    """A partial cart that needs a model: four lines over three nodes, one line short."""
    nodes = [dc("phl"), dc("chi", location=CHICAGO), dc("la", location=LOS_ANGELES)]
    rows = [
        stock("phl", "A", 2),
        stock("chi", "B", 3),
        stock("la", "C", 1),
        stock("chi", "A", 1),
        stock("la", "B", 2),
    ]
    req = request(
        ("A", 3), ("B", 4), ("C", 2), service_levels=GROUND, allow_partial=True, max_shipments=3
    )
    return req, snapshot(nodes, rows)


def test_partial_answers_say_whether_they_are_proven() -> None:
    """With time to search the partial answer is proven and the same on every call."""
    req, snap = _split_cart()
    first = _ground(req, snap)
    second = _ground(req, snap)
    assert first.status is Status.PARTIAL
    assert first.proven
    assert first == second


def test_an_answer_found_when_time_ran_out_is_not_proven() -> None:
    """A budget too short to search: the partial answer is the greedy one, flagged unproven."""
    req, snap = _split_cart()
    result = solve(req, snap, params=SolveParams(time_budget_ms=1, now=MONDAY_10AM))
    assert check(result, req, snap).ok
    (option,) = result.options
    assert not option.proven
    assert option.fallback or option.status is Status.FEASIBLE


def test_a_model_cp_sat_refuses_is_reported_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model made invalid on purpose is named in solver.model_errors, not hidden.

    The variable with an empty domain makes CP-SAT refuse it; the greedy answer stands.
    """
    from solver import mip  # noqa: PLC0415 - the module whose model is broken here

    real = mip._objective

    def broken(coef: Any, v: Any, m: Any) -> None:
        """Write the objective, then a variable whose domain is empty."""
        real(coef, v, m)
        m.proto.variables.add().domain.extend((5, 1))

    monkeypatch.setattr(mip, "_objective", broken)
    req, snap = _split_cart()
    result = solve(req, snap, params=LONG)
    assert check(result, req, snap).ok
    (option,) = result.options
    assert option.fallback
    assert not option.proven
    (error,) = result.solver.model_errors
    assert error.startswith("ground: MODEL_INVALID")


def test_large_protection_weights_stay_representable() -> None:
    """A protection weight of 10^6 used to overflow the model (a fallback after 9 ms)."""
    nodes = [dc("phl", protection_units=5), dc("chi", location=CHICAGO, protection_units=5)]
    snap = snapshot(nodes, [stock("phl", "A", 6), stock("chi", "A", 6), stock("chi", "B", 6)])
    req = request(
        ("A", 3),
        ("B", 1),
        service_levels=GROUND,
        weights=WeightOverrides(protection_per_unit=10**6),
    )
    result = _solve(req, snap)
    (option,) = result.options
    assert option.status is Status.OPTIMAL
    assert not result.solver.model_errors


def test_penalties_above_the_bound_are_refused() -> None:
    """Penalties are at most 10^9 cents: 10^11 is a validation error naming the field."""
    with pytest.raises(ValidationError, match="split_penalty"):
        WeightOverrides(split_penalty=10**11)
    with pytest.raises(ValidationError, match="protection_per_unit"):
        ObjectiveWeights(protection_per_unit=10**11)


def test_an_objective_beyond_exact_integers_is_refused_naming_the_weight() -> None:
    """Revenue weight 1,000 on 10^11-cent lines of 10,000 units: far beyond 2^53."""
    snap = snapshot([dc("phl")], [stock("phl", "A", 5)])
    req = request(
        ("A", 10_000),
        price=10**11,
        service_levels=GROUND,
        weights=WeightOverrides(revenue=1000.0),
    )
    with pytest.raises(ObjectiveRangeError) as raised:
        solve(req, snap, params=LONG)
    assert raised.value.field == ("weights", "revenue")
    assert str(MAX_OBJECTIVE) in raised.value.message


def test_a_margin_floor_beyond_exact_integers_is_refused_naming_it() -> None:
    """A floor of 0.000001 % scales prices by 10^8: on 10^11-cent lines, far beyond 2^53.

    Unchecked, its int64 coefficients wrapped silently or CP-SAT refused the model as a
    possible overflow (logged as a model error, answered by the greedy fallback).
    """
    snap = snapshot([dc("phl"), dc("chi", location=CHICAGO)], [stock("phl", "A", 5)])
    req = request(("A", 3), ("B", 1), price=10**11, min_margin_pct=0.000001)
    with pytest.raises(MarginFloorRangeError) as raised:
        solve(req, snap, params=LONG)
    assert raised.value.field == ("min_margin_pct",)
    assert str(MAX_OBJECTIVE) in raised.value.message
    # The same floor with fewer decimal places is exact in range, and answered.
    rounded = request(("A", 3), ("B", 1), price=10**11, min_margin_pct=1.0)
    assert not solve(rounded, snap, params=LONG).solver.model_errors


def test_every_answer_fills_as_much_as_the_exact_reference() -> None:
    """On a tight two-node network, no default answer leaves more units than exact mode."""
    nodes = [dc("phl", daily_labour_minutes=1), dc("chi", location=CHICAGO)]
    capacity = ground(remaining_capacity={"chi": {dt.date(2026, 11, 30): 0}})
    snap = snapshot(
        nodes, [stock("phl", "A", 4), stock("chi", "A", 2), stock("chi", "B", 1)], [capacity]
    )
    req = request(("A", 5), ("B", 1), service_levels=GROUND, max_shipments=3)
    option = _ground(req, snap)
    filled = sum(line.quantity for s in option.shipments for line in s.lines)
    assert option.status is Status.OPTIMAL
    assert filled == 6
    assert np.all([s.ship_date >= dt.date(2026, 11, 30) for s in option.shipments])


def test_exact_mode_keeps_every_dispatch_date() -> None:
    """Exact mode has every working pickup day of the horizon as a slot; default fewer."""
    snap = snapshot([dc("phl")], [stock("phl", "A", 5)])
    req = request(("A", 1), service_levels=GROUND)
    assert req.requested_at is not None
    exact = build_context(req, prepare(snap), req.requested_at, exact=True)
    quick = build_context(req, prepare(snap), req.requested_at)
    all_dates = build_problem(exact, ServiceLevel.GROUND, {0}).n_slots
    pruned = build_problem(quick, ServiceLevel.GROUND, {0}).n_slots
    # Mon 30 Nov .. Mon 14 Dec: ten working pickup days (Mon-Fri) deliver by the deadline.
    assert all_dates == 10
    assert pruned == 1
