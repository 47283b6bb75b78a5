"""The prepared network: built once, read by every solve, derived per live inventory version."""

from __future__ import annotations

import numpy as np
import pytest

from solver import Inventory, SolveParams, prepare, solve
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
