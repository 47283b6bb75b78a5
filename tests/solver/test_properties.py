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
from solver import SolveParams, solve
from solver.answer import build_option
from solver.checker import check
from solver.costs import coefficients, evaluate
from solver.index import index_of
from solver.problem import build_context, build_problem
from tests.strategies import instances

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# The brute force and the MIP both see this many dispatch dates per (node, service).
SLOTS = 2


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
    ctx = build_context(req, index_of(snap), req.requested_at, slots_per_service=SLOTS)
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
        if not req.allow_partial and int(x.sum()) < units:
            value = coef.unfilled * units  # refused carts promise nothing
        scored.append((value, x))
    scored.sort(key=lambda pair: pair[0])
    for value, x in scored:
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


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(instances(max_nodes=3, max_lines=2, max_qty=2))
def test_mip_equals_brute_force_on_tiny_instances(
    instance: tuple[PromiseRequest, Snapshot],
) -> None:
    """On instances small enough to enumerate, the MIP's objective is the brute-force optimum."""
    req, snap = instance
    result = solve(
        req, snap, params=SolveParams(exact=True, slots_per_service=SLOTS, time_budget_ms=5000)
    )
    assert check(result, req, snap).ok
    for option in result.options:
        assert option.status is not Status.FEASIBLE  # proven, not merely found
        assert option.objective == brute_force(req, snap, option.service_level)
