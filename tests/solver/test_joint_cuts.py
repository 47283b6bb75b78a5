"""The joint model's valid inequalities: they hold for integer plans and raise the relaxation."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import Engine
from scenarios.day import Day, DayPolicy, clairvoyant, run_day
from scenarios.day_networks import scarce_demo_day
from solver._joint_cuts import _hull_pieces, _weights, strengthen
from solver.costs import coefficients
from solver.joint import _best_start, _day_problems, _joint_model, solve_joint
from solver.prepared import prepare


@functools.cache
def small_demo_day(seed: int) -> Day:
    """30 orders of the scarce demo day: small enough for SCIP to prove in seconds."""
    return scarce_demo_day(seed, 30)


@given(st.lists(st.tuples(st.integers(1, 3_000), st.integers(1, 4)), min_size=1, max_size=3))
@settings(max_examples=200, deadline=None)
def test_every_kg_piece_lies_under_every_package_weight(lines: list[tuple[int, int]]) -> None:
    """Every kg piece holds for every integer package of these lines, enumerated unit by unit."""
    weights = [w for w, _ in lines]
    sums = _weights(weights, [ub for _, ub in lines])
    assert sums is not None
    for rise, run, base in _hull_pieces(sums):
        assert run > 0
        assert rise >= 0
        for units in itertools.product(*(range(ub + 1) for _, ub in lines)):
            grams = sum(w * n for w, n in zip(weights, units, strict=True))
            billed = max(1, (grams + 999) // 1000)  # a package that ships bills at least 1 kg
            assert run * billed >= rise * grams + base, (units, rise, run, base)


def test_a_unit_of_one_and_a_half_kg_bills_two_in_the_relaxation() -> None:
    """One 1,500 g unit: the model's rows allow 1.5 kg; the piece says 2 (1500 kg ≥ W + 1500 y)."""
    pieces = _hull_pieces(_weights([1500], [1]) or [])
    assert pieces == [(1, 1500, 1500)]
    rise, run, base = pieces[0]
    assert (rise * 1500 + base) / run == 2
    # 500 g units bill 1 kg up to two units: nothing to add below the 1 kg floor, and the
    # three-unit package (1.5 kg, bills 2) is what the piece from two units lifts.
    assert all((rise * 1000 + base) / run <= 1 for rise, run, base in _hull_pieces([0, 500, 1000]))
    assert _hull_pieces([0, 500, 1000, 1500]) != []


@pytest.mark.parametrize("seed", [1, 2])
def test_every_replayed_plan_satisfies_every_added_row(seed: int) -> None:
    """Plans a replay made are integer plans of the joint model: no added row may cut them."""
    day = small_demo_day(seed)
    problems = _day_problems(day.orders, prepare(day.snapshot), day.level)
    coefs = [coefficients(problem) for problem in problems]
    for policy in (DayPolicy("myopic"), DayPolicy("priority", engine=Engine.PRIORITY)):
        answers = run_day(day, policy).answers
        start = _best_start(problems, coefs, [answers])
        assert start is not None
        proto, models = _joint_model(
            problems, coefs, start, shared_protection=True, strengthen=False
        )
        before = len(proto.constraints)
        assert strengthen(models, proto) == len(proto.constraints) - before > 0
        value = dict(zip(proto.solution_hint.vars, proto.solution_hint.values, strict=True))
        for constraint in list(proto.constraints)[before:]:
            row = constraint.linear
            lhs = sum(c * value[v] for v, c in zip(row.vars, row.coeffs, strict=True))
            assert row.domain[0] <= lhs <= row.domain[1], (policy.name, row)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_strengthened_relaxation_lies_between_the_old_one_and_the_optimum(seed: int) -> None:
    """Old LP ≤ strengthened LP ≤ the proven optimum of the model without the added rows."""
    day = small_demo_day(seed)
    exact = clairvoyant(day, time_limit_s=120, strengthen=False)
    assert exact.optimal
    assert exact.cost is not None
    assert exact.unfilled == 0  # the bounds below then compare costs without the penalty
    old = clairvoyant(day, time_limit_s=120, engine="lp", strengthen=False).bound
    new = clairvoyant(day, time_limit_s=120, engine="lp").bound
    assert np.isfinite(old)
    assert old <= new + 1e-6
    assert new <= exact.cost + 1e-6
    # The rows must earn their place: on these days they close most of the LP's gap.
    assert new - old >= 0.5 * (exact.cost - old), (old, new, exact.cost)


def test_an_unproven_search_keeps_the_relaxations_bound() -> None:
    """CP-SAT stopped after a second bounds a day far below its LP; the plan keeps the LP's."""
    day = small_demo_day(1)
    problems = _day_problems(day.orders, prepare(day.snapshot), day.level)
    coefs = [coefficients(problem) for problem in problems]
    relaxed = solve_joint(problems, coefs, time_limit_s=60, engine="lp", shared_protection=True)
    assert relaxed.status == "OPTIMAL"
    search = solve_joint(problems, coefs, time_limit_s=1, engine="cp_sat", shared_protection=True)
    kept = solve_joint(
        problems,
        coefs,
        time_limit_s=1,
        engine="cp_sat",
        shared_protection=True,
        relax_unproven=True,
    )
    assert not search.optimal
    assert not kept.optimal
    # CP-SAT's own bound after a second is far from the relaxation's: the larger one is kept.
    assert search.bound < relaxed.bound
    assert kept.bound == pytest.approx(relaxed.bound)
