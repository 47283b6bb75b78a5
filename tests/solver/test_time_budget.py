"""A solver that runs out of time still answers: the greedy fallback, flagged, and feasible."""

from __future__ import annotations

import time

from models import Engine, Status
from scenarios import demo_snapshot, generate_carts
from solver import SolveParams, solve
from solver.checker import check
from tests.solver.wide_network import wide_request, wide_snapshot


def test_a_one_millisecond_budget_still_answers_every_level() -> None:
    """Big carts with a 1 ms budget get complete, checked answers; fallbacks are flagged."""
    snapshot = demo_snapshot()
    carts = generate_carts(snapshot, count=12, seed=5, lines=20)
    fallbacks = 0
    for request in carts:
        result = solve(request, snapshot, params=SolveParams(time_budget_ms=1))
        assert check(result, request, snapshot).ok
        assert len(result.options) == len({s.service_level for s in snapshot.services})
        flagged = [o for o in result.options if o.fallback]
        assert result.solver.fallback == bool(flagged)
        # A fallback is the greedy answer: complete and flagged, or refused and flagged.
        assert all(o.status in (Status.FALLBACK, Status.UNFULFILLABLE) for o in flagged)
        fallbacks += len(flagged)
        generous = solve(request, snapshot, params=SolveParams(time_budget_ms=2000))
        assert not any(o.fallback for o in generous.options)
        for quick, slow in zip(result.options, generous.options, strict=True):
            # With time to search the answer is never worse.
            assert quick.objective >= slow.objective
    assert fallbacks > 0  # 20-line carts cannot all be proven without a search


def test_greedy_baselines_stop_at_the_deadline_on_a_wide_network() -> None:
    """8,000 stocking nodes and a 50 ms budget: answered in well under 2 s, flagged fallback.

    Every node is visited and none can ship (tests/solver/wide_network.py), so full greedy
    passes took 13 s here before the baselines checked the clock.
    """
    snapshot = wide_snapshot(copies=8, skus=20)
    request = wide_request(snapshot, lines=20, time_budget_ms=50)
    # Once per process: the postal-code table, holiday calendars and time zones load on first
    # use; only what every inline solve pays (indexing the snapshot, the solve) is timed.
    solve(request, snapshot, params=SolveParams(cache=False))
    for engine in (Engine.MIP, Engine.NEAREST, Engine.FEWEST_SPLITS):
        started = time.perf_counter()
        result = solve(request, snapshot, params=SolveParams(engine=engine, cache=False))
        elapsed = time.perf_counter() - started
        assert elapsed < 2.0, (engine, elapsed)
        if engine is not Engine.NEAREST:
            # Nearest-first visits cost little here (no slot is built) and finish in time;
            # the other passes rank nodes by slots and are cut: their answers are flagged.
            assert result.solver.fallback
            assert all(option.fallback for option in result.options)
        assert check(result, request, snapshot).ok
