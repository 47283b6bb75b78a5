"""The candidate pre-filter never costs the optimum: proven answers equal the exact reference."""

from __future__ import annotations

from scenarios import generate_carts, generate_network
from solver import SolveParams, prepare, solve
from solver.checker import Reference, check


def test_prefilter_keeps_the_exact_optimum_on_generated_carts() -> None:
    """On 80 carts over a 50-node network every proven answer equals exact mode's optimum."""
    snapshot = generate_network(nodes=50, skus=500, seed=11)
    carts = generate_carts(snapshot, count=80, seed=77)
    network, reference = prepare(snapshot), Reference.of(snapshot)
    same = 0
    for request in carts:
        # With no cap on the nodes the proof may add, every answer should end proven.
        filtered = solve(
            request, network, params=SolveParams(time_budget_ms=4000, proof_nodes=10_000)
        )
        exact = solve(request, network, params=SolveParams(time_budget_ms=8000, exact=True))
        assert check(filtered, request, reference).ok
        assert check(exact, request, reference).ok
        assert all(o.proven for o in exact.options)  # the reference is proven
        for f, e in zip(filtered.options, exact.options, strict=True):
            # The pre-filtered answer is feasible for the exact model: never cheaper.
            assert f.objective >= e.objective
            if f.proven:
                assert f.objective == e.objective, (request.cart.cart_id, f.service_level)
        same += all(f.proven for f in filtered.options)
    assert same >= 0.99 * len(carts)
