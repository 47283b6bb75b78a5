"""The lower bounds that prove answers optimal without a model never exceed a true optimum.

Each bound is compared with CP-SAT's proven optimum of the same problem restricted to the
family of answers the bound covers, on tiny random networks unlike the demo one, with and
without an opportunity-cost table.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model
from ortools.sat.python import cp_model_helper as cmh

from models import NO_PRICES, PromiseRequest, ServiceLevel, Snapshot, StockPrices
from solver import SolveParams, prepare, solve
from solver.bounds import split_bound
from solver.checker import check
from solver.costs import Coefficients, coefficients
from solver.mip import MipModel, build_model, solver_parameters
from solver.problem import Problem, build_context, build_problem
from tests.solver.network_cases import WEB, dc, request, snapshot, stock
from tests.strategies import instances

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _priced(snap: Snapshot, seed: int) -> StockPrices:
    """A random price table over about half of the network's stock pairs (0 when ``seed`` is 0)."""
    if not seed:
        return NO_PRICES
    rng = np.random.default_rng(seed)
    rows = [
        (row.node_id, row.sku, int(rng.integers(1, 3000)))
        for row in snap.inventory
        if rng.random() < 0.5
    ]
    return StockPrices.of(rows, version=1)


def whole_models(
    req: PromiseRequest, snap: Snapshot, prices: StockPrices
) -> Iterator[tuple[Problem, Coefficients, cmh.CpModelProto, MipModel]]:
    """Per level: the problem over every stocking node, its coefficients and its MIP."""
    assert req.requested_at is not None
    ctx = build_context(req, prepare(snap), req.requested_at, exact=True, prices=prices)
    for level in {service.service_level for service in snap.services}:
        problem = build_problem(ctx, level, set(ctx.stocking_nodes(level).tolist()))
        coef = coefficients(problem)
        proto = cmh.CpModelProto()
        yield problem, coef, proto, build_model(problem, coef, hint=None, into=proto)


def _split_optimum(
    req: PromiseRequest, snap: Snapshot, prices: StockPrices
) -> list[tuple[int | None, int | None]]:
    """Per level: (split_bound, best complete answer with ≥ 2 packages CP-SAT found, or None)."""
    out: list[tuple[int | None, int | None]] = []
    for problem, coef, proto, model in whole_models(req, snap, prices):
        bound = split_bound(problem, coef)
        if model.v.y.size < 2:
            out.append((bound, None))  # no slot pair: no answer with two packages
            continue
        packages = proto.constraints.add().linear
        packages.vars.extend(model.v.y.tolist())
        packages.coeffs.extend([1] * model.v.y.size)
        packages.domain.extend((2, model.v.y.size))
        for u in model.v.u.tolist():  # complete answers only
            proto.variables[u].domain[1] = 0
        for k, slot in enumerate(model.v.slots.tolist()):  # a package carries a unit
            carried = proto.constraints.add().linear
            members = model.v.x[model.v.xj == slot].tolist()
            carried.vars.extend([int(model.v.y[k]), *members])
            carried.coeffs.extend([1] + [-1] * len(members))
            carried.domain.extend((-len(members) * 10**6, 0))
        solver = cmh.SolveWrapper()
        solver.set_parameters(solver_parameters(10.0, 1, 0))
        response = solver.solve(proto)  # type: ignore[no-untyped-call]
        # Every split answer found bounds the bound, proven optimal or not (a loaded machine).
        if response.status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            out.append((bound, int(response.objective_value)))
            continue
        assert response.status == cp_model.INFEASIBLE, response.status
        out.append((bound, None))
    return out


@SETTINGS
@given(instances(max_nodes=6, max_lines=4, max_qty=2), st.sampled_from([0, 1, 2]))
def test_split_bound_never_exceeds_the_best_split_answer(
    instance: tuple[PromiseRequest, Snapshot], seed: int
) -> None:
    """No complete answer with two or more packages is cheaper than the split bound."""
    req, snap = instance
    for bound, optimum in _split_optimum(req, snap, _priced(snap, seed)):
        if optimum is not None:
            assert bound is not None, optimum
            assert bound <= optimum, (bound, optimum)


def test_split_bound_is_tight_when_each_node_ships_its_own_line() -> None:
    """Two DCs each holding one line: the bound is the optimum, worked out by hand.

    Both DCs are in Philadelphia (zone 2, ground base 1,100, 100 per kg, 1 day transit):
    each package costs 1,100 + handling 200 + split 200, less one split refund: 2,800. Pick
    labour 4 × 50 = 200. Kg: A 2 × 500 g = 1 kg, B 2 × 1,500 g = 3 kg, 400. One late day: 50.
    Total 3,450, and no rounding is lost, so the bound meets it.
    """
    snap = snapshot(
        [dc("d1"), dc("d2")], [stock("d1", "A", 5), stock("d2", "B", 5)], policies=[WEB]
    )
    req = request(("A", 2), ("B", 2))
    assert req.requested_at is not None
    ctx = build_context(req, prepare(snap), req.requested_at)
    problem = build_problem(
        ctx, ServiceLevel.GROUND, set(ctx.stocking_nodes(ServiceLevel.GROUND).tolist())
    )
    assert split_bound(problem, coefficients(problem)) == 3450
    result = solve(req, snap, params=SolveParams(exact=True, time_budget_ms=5000))
    assert check(result, req, snap).ok
    assert [o.objective for o in result.options] == [3450]
