"""The prepared network: built once, read by every solve, derived per live inventory version."""

from __future__ import annotations

import numpy as np
import pytest

from models import ServiceLevel
from solver import Inventory, SolveParams, prepare, solve
from solver.costs import coefficients, evaluate
from solver.problem import build_context, build_problem
from tests.solver.network_cases import CHICAGO, dc, request, snapshot, stock, store


def test_a_live_version_shares_the_network_and_replaces_the_stock() -> None:
    """with_inventory keeps the network arrays and calendar memo, and reads the new rows."""
    snap = snapshot([store("s1")], [stock("s1", "A", 3)])
    prepared = prepare(snap)
    live = Inventory.of(snap).replace([stock("s1", "A", 2)])
    derived = prepared.with_inventory(live)
    assert derived.calendar is prepared.calendar  # calendar answers never depend on stock
    assert derived.index.node_lat is prepared.index.node_lat
    assert derived.inventory is live
    assert prepared.inventory is not live  # the prepared network itself is never changed
    assert derived.index.row_on_hand.tolist() == [2]
    assert prepared.index.row_on_hand.tolist() == [3]
    assert (prepared.version, derived.version) == ("case", "case+1")


def test_inventory_of_another_snapshot_is_refused() -> None:
    """An inventory is tied to the snapshot its prepared network was made from."""
    first = snapshot([store("s1")], [stock("s1", "A", 3)])
    second = snapshot([store("s1")], [stock("s1", "A", 3)])
    with pytest.raises(ValueError, match="another snapshot"):
        prepare(second).with_inventory(Inventory.of(first))


def test_a_bare_snapshot_solves_like_its_prepared_network() -> None:
    """solve() prepares a bare snapshot for one call: the same answer as the prepared network."""
    snap = snapshot(
        [dc("dc", location=CHICAGO), store("s1")], [stock("dc", "A", 5), stock("s1", "A", 3)]
    )
    req = request(("A", 2), ("B", 1))
    prepared = prepare(snap)
    # A generous budget: both searches end proven, whatever else the machine runs.
    generous = SolveParams(time_budget_ms=10_000)
    once = solve(req, snap, params=generous)
    kept = solve(req, prepared, params=generous)
    assert once.options == kept.options
    assert once.recommended == kept.recommended


def test_solving_leaves_the_prepared_network_as_it_was() -> None:
    """A solve reads its prepared network: arrays unchanged, a repeat gives the same answer."""
    snap = snapshot(
        [dc("dc", location=CHICAGO), store("s1")], [stock("dc", "A", 5), stock("s1", "A", 3)]
    )
    prepared = prepare(snap)
    before = {name: getattr(prepared.index, name).copy() for name in ("row_on_hand", "row_node")}
    req = request(("A", 4))
    generous = SolveParams(time_budget_ms=10_000)
    first = solve(req, prepared, params=generous)
    second = solve(req, prepared, params=generous)
    assert first.options == second.options
    for name, values in before.items():
        assert np.array_equal(getattr(prepared.index, name), values)


def test_a_nodes_slots_are_computed_once_and_shared_by_later_requests() -> None:
    """Two requests with the same order date and zone read one LevelSlots of the network."""
    snap = snapshot(
        [dc("dc", location=CHICAGO), store("s1")], [stock("dc", "A", 5), stock("s1", "A", 3)]
    )
    prepared = prepare(snap)
    first = request(("A", 1))
    second = request(("A", 2))
    assert first.requested_at is not None
    first_ctx = build_context(first, prepared, first.requested_at)
    second_ctx = build_context(second, prepared, first.requested_at)
    level = ServiceLevel.GROUND
    node = int(first_ctx.stocking_nodes(level)[0])
    one, two = first_ctx.block(node, level), second_ctx.block(node, level)
    assert one.size
    assert np.shares_memory(one.date, two.date)  # the network's arrays
    assert not one.date.flags.writeable  # shared, so nobody may write to them
    # The cart's part is each request's own: ATP per line on each slot's date.
    assert one.avail is not two.avail


def test_an_allocation_evaluated_again_is_the_same_evaluation() -> None:
    """evaluate() keeps what it computed on a problem: equal to a fresh problem's answer."""
    snap = snapshot(
        [dc("dc", location=CHICAGO), store("s1")], [stock("dc", "A", 5), stock("s1", "A", 3)]
    )
    prepared = prepare(snap)
    req = request(("A", 2))
    assert req.requested_at is not None
    ctx = build_context(req, prepared, req.requested_at)
    level = ServiceLevel.GROUND
    problem = build_problem(ctx, level, set(ctx.stocking_nodes(level).tolist()))
    coef = coefficients(problem)
    x = np.zeros(problem.avail.shape, dtype=np.int64)
    x[0, 0] = 2
    first = evaluate(problem, x, coef)
    assert evaluate(problem, x.copy(), coef) is first
    x[0, 0] = 1  # another allocation: evaluated afresh
    assert evaluate(problem, x, coef).objective != first.objective
    fresh = build_problem(
        build_context(req, prepared, req.requested_at), level, set(problem.candidates)
    )
    x[0, 0] = 2
    again = evaluate(fresh, x, coefficients(fresh))
    assert again is not first
    assert (again.objective, again.margin, again.fulfilment) == (
        first.objective,
        first.margin,
        first.fulfilment,
    )
    assert again.billable_kg.tolist() == first.billable_kg.tolist()
