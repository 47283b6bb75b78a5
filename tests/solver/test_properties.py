"""Property tests on random tiny networks: checker, baselines and brute force.

Examples are derandomised so CI is reproducible; the strategies in tests/strategies.py cover
calendars, time zones, capacities, labour, buffers, in-transit lots, margin floors and weights.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings

from models import (
    Engine,
    PromiseRequest,
    PromiseResult,
    ServiceLevel,
    Snapshot,
    SolverStats,
    Status,
)
from solver import SolveParams, prepare, solve
from solver.answer import build_option
from solver.checker import check
from solver.costs import coefficients, evaluate
from solver.problem import build_context, build_problem
from tests.strategies import instances

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(instances())
def test_every_engine_passes_the_checker(instance: tuple[PromiseRequest, Snapshot]) -> None:
    """Every option of every engine is feasible and correctly costed per the checker."""
    req, snap = instance
    for engine in Engine:
        result = solve(req, snap, params=SolveParams(engine=engine, time_budget_ms=1000))
        report = check(result, req, snap)
        assert report.ok, (engine, report.violations)


@SETTINGS
@given(instances())
def test_mip_is_never_worse_than_a_baseline(instance: tuple[PromiseRequest, Snapshot]) -> None:
    """Under the same objective the MIP's option is at most every baseline's, level by level."""
    req, snap = instance
    mip = solve(req, snap, params=SolveParams(time_budget_ms=1000))
    mine = {o.service_level: o.objective for o in mip.options}
    for engine in (Engine.PRIORITY, Engine.NEAREST, Engine.FEWEST_SPLITS):
        baseline = solve(req, snap, params=SolveParams(engine=engine))
        for option in baseline.options:
            assert mine[option.service_level] <= option.objective, (engine, option.service_level)


def brute_force(req: PromiseRequest, snap: Snapshot, level: ServiceLevel) -> int:
    """The best objective over every allocation of units to slots that the checker accepts."""
    assert req.requested_at is not None
    # Every dispatch date of the horizon, as the exact reference sees them.
    ctx = build_context(req, prepare(snap), req.requested_at, exact=True)
    problem = build_problem(ctx, level, set(ctx.stocking_nodes(level).tolist()))
    coef = coefficients(problem)
    n_lines, n_slots = problem.avail.shape
    units = sum(line.line.quantity for line in ctx.lines)
    per_line = []
    for i, line in enumerate(ctx.lines):
        usable = [j for j in range(n_slots) if problem.avail[i, j] > 0]
        choices = []
        for k in range(line.line.quantity + 1):
            for combo in itertools.combinations_with_replacement(usable, k):
                column = np.zeros(n_slots, dtype=np.int64)
                for j in combo:
                    column[j] += 1
                choices.append(column)
        per_line.append(choices)
    scored = []
    for rows in itertools.product(*per_line):
        x = np.array(rows, dtype=np.int64).reshape(n_lines, n_slots)
        value = evaluate(problem, x, coef).objective
        incomplete = not req.allow_partial and int(x.sum()) < units
        if incomplete:
            value = ctx.weights.unfilled_per_unit * units  # refused carts promise nothing
        # Without allow_partial any complete answer beats every incomplete one.
        scored.append((incomplete, value, x))
    scored.sort(key=lambda t: (t[0], t[1]))
    for _, value, x in scored:
        option = build_option(problem, x, coef, Status.OPTIMAL)
        result = PromiseResult(
            cart_id=req.cart.cart_id,
            channel=req.cart.channel,
            requested_at=req.requested_at,
            order_date=ctx.order_date,
            options=(option,),
            recommended=None,
            solver=SolverStats(
                engine=Engine.MIP, status=Status.OPTIMAL, wall_ms=0, candidates=0, fallback=False
            ),
        )
        if check(result, req, snap).ok:
            assert option.objective == value
            return value
    raise AssertionError("shipping nothing is always feasible")


BRUTE = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@BRUTE
@given(instances(max_nodes=3, max_lines=2, max_qty=1))
def test_mip_equals_brute_force_on_two_line_instances(
    instance: tuple[PromiseRequest, Snapshot],
) -> None:
    """Two single-unit lines over three nodes: both modes hit the brute-force optimum."""
    _assert_brute_force_optimum(*instance)


@BRUTE
@given(instances(max_nodes=2, max_lines=1, max_qty=3))
def test_mip_equals_brute_force_on_one_line_instances(
    instance: tuple[PromiseRequest, Snapshot],
) -> None:
    """One line of up to three units over two nodes: both modes hit the brute-force optimum."""
    _assert_brute_force_optimum(*instance)


def _assert_brute_force_optimum(req: PromiseRequest, snap: Snapshot) -> None:
    """Exact mode, and default mode (which must prove it), equal the brute-force optimum.

    The brute force enumerates every dispatch date of the horizon.
    """
    result = solve(req, snap, params=SolveParams(exact=True, time_budget_ms=5000))
    default = solve(req, snap, params=SolveParams(time_budget_ms=5000))
    assert check(result, req, snap).ok
    assert check(default, req, snap).ok
    for option, quick in zip(result.options, default.options, strict=True):
        assert option.proven
        assert option.status is not Status.FEASIBLE
        best = brute_force(req, snap, option.service_level)
        assert option.objective == best
        assert quick.proven
        assert quick.objective == best
