"""The candidate pre-filter keeps the exact optimum on generated scenarios."""

from __future__ import annotations

from models import Status
from scenarios import demo_snapshot, generate_carts
from solver import SolveParams, solve
from solver.checker import check


def test_prefilter_keeps_the_exact_optimum_on_generated_carts() -> None:
    """On 120 demo carts the pre-filtered MIP matches exact mode on at least 99% of them."""
    snapshot = demo_snapshot()
    carts = generate_carts(snapshot, count=120, seed=77)
    same = 0
    for request in carts:
        filtered = solve(request, snapshot, params=SolveParams(time_budget_ms=4000))
        exact = solve(request, snapshot, params=SolveParams(time_budget_ms=4000, exact=True))
        assert check(filtered, request, snapshot).ok
        assert all(o.status is not Status.FEASIBLE for o in exact.options)  # exact is proven
        assert filtered.solver.candidates <= exact.solver.candidates
        # The pre-filtered model is a restriction, so it can never beat the proven optimum.
        assert all(
            f.objective >= e.objective for f, e in zip(filtered.options, exact.options, strict=True)
        )
        same += all(
            f.objective == e.objective for f, e in zip(filtered.options, exact.options, strict=True)
        )
    assert same >= 0.99 * len(carts)
