"""The snapshot index cache: reused for the live snapshot, bypassed and released on request."""

from __future__ import annotations

from solver import Inventory, SolveParams, release, solve
from solver.index import index_of
from tests.solver.network_cases import request, snapshot, stock, store


def test_the_index_is_built_once_and_released_on_request() -> None:
    """Repeated solves share one index; release() drops it and its inventory versions."""
    snap = snapshot([store("s1")], [stock("s1", "A", 3)])
    first = index_of(snap)
    assert index_of(snap) is first
    live = Inventory.of(snap).replace([stock("s1", "A", 2)])
    derived = index_of(snap, live)
    assert index_of(snap, live) is derived
    assert derived.calendar_cache is first.calendar_cache  # network answers are shared
    release(snap)
    assert index_of(snap) is not first
    assert index_of(snap, live) is not derived


def test_one_off_snapshots_are_not_cached() -> None:
    """cache=False indexes a snapshot without keeping it (inline snapshots)."""
    live = snapshot([store("s1")], [stock("s1", "A", 3)])
    kept = index_of(live)
    once = snapshot([store("s1")], [stock("s1", "A", 5)])
    result = solve(request(("A", 1)), once, params=SolveParams(cache=False))
    assert result.options[0].shipments[0].node_id == "s1"
    assert index_of(once, cache=False) is not index_of(once, cache=False)
    assert index_of(live) is kept
