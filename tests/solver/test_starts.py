"""The MIP's cost-per-unit start (solver.greedy.cheapest_start): feasible, and price-aware."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model
from ortools.sat.python import cp_model_helper as cmh

from models import Engine, PromiseRequest, ServiceLevel, Snapshot, StockPrices
from solver import SolveParams, prepare, solve
from solver.checker import check
from solver.costs import coefficients, evaluate
from solver.greedy import BASELINES, allocation, cheapest_start, greedy_picks
from solver.mip import solver_parameters
from solver.problem import build_context, build_problem
from tests.solver.network_cases import CHICAGO, WEB, dc, request, snapshot, stock
from tests.solver.test_bounds import _priced, whole_models
from tests.strategies import instances


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(instances(max_nodes=6, max_lines=4, max_qty=3), st.sampled_from([0, 1, 2]))
def test_cheapest_start_is_a_feasible_answer_of_the_model(
    instance: tuple[PromiseRequest, Snapshot], seed: int
) -> None:
    """Fixed into the MIP, the start satisfies every constraint and scores its evaluation."""
    req, snap = instance
    for problem, coef, proto, model in whole_models(req, snap, _priced(snap, seed)):
        x = cheapest_start(problem, coef)
        # Units only where the model has a variable: the start invents no stock.
        modelled = np.zeros(x.shape, dtype=np.bool_)
        modelled[model.v.xi, model.v.xj] = True
        assert not x[~modelled].any()
        for var, value in zip(model.v.x.tolist(), x[model.v.xi, model.v.xj].tolist(), strict=True):
            domain = proto.variables[var].domain
            domain.clear()
            domain.extend((value, value))
        solver = cmh.SolveWrapper()
        solver.set_parameters(solver_parameters(10.0, 1, 0))
        response = solver.solve(proto)  # type: ignore[no-untyped-call]
        assert response.status == cp_model.OPTIMAL, (problem.level, response.status)
        # CP-SAT reports the objective as a double (999999.9999… for 1,000,000).
        assert round(response.objective_value) == evaluate(problem, x, coef).objective


def test_cheapest_start_ships_from_unpriced_stock_the_baselines_pass_by() -> None:
    """Stock priced at the near DC sends the start to the far one; the baselines stay near.

    Two units of A (1 kg) to New York. From Philadelphia (zone 2, 1 day): base 1,100 +
    handling 200 + split 200, less the refund 200, + 1 kg 100 + pick 2 × 50 + lateness 50 +
    opportunity 2 × 1,000 = 3,550. From Chicago (zone 5, 4 days): 1,400 + 200 + 200 − 200 +
    100 + 100 + 4 × 50 = 2,000. Every baseline ships from the nearer DC; the start does not,
    1,550 cheaper, and the solve proves that answer optimal.
    """
    snap = snapshot(
        [dc("near"), dc("far", location=CHICAGO)],
        [stock("near", "A", 5), stock("far", "A", 5)],
        policies=[WEB],
    )
    prices = StockPrices.of([("near", "A", 1000)], version=1)
    req = request(("A", 2))
    assert req.requested_at is not None
    network = prepare(snap)
    ctx = build_context(req, network, req.requested_at, prices=prices)
    level = ServiceLevel.GROUND
    problem = build_problem(ctx, level, set(ctx.stocking_nodes(level).tolist()))
    coef = coefficients(problem)
    start = cheapest_start(problem, coef)
    far = network.index.node_pos["far"]
    assert set(problem.slot_node[start.sum(axis=0) > 0].tolist()) == {far}
    for engine in BASELINES:
        baseline = allocation(problem, greedy_picks(ctx, level, engine), coef)
        saving = (
            evaluate(problem, baseline, coef).objective - evaluate(problem, start, coef).objective
        )
        assert saving == 1550, engine
    result = solve(req, network, prices=prices, params=SolveParams(engine=Engine.MIP))
    assert check(result, req, snap, prices=prices).ok
    (option,) = result.options
    assert option.status.value == "optimal"
    assert [s.node_id for s in option.shipments] == ["far"]
    assert option.objective == 2000
