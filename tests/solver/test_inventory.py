"""Live inventory versions: solves and availability see replaced rows, the snapshot does not."""

from __future__ import annotations

import pytest

from models import NodeKind
from solver import InvalidRequestError, Inventory, availability, prepare, solve
from solver.checker import check
from tests.solver.network_cases import CHICAGO, dc, request, snapshot, stock, store


def test_replaced_rows_move_the_answer_and_keep_the_snapshot() -> None:
    """Selling the store's stock sends the cart to the DC; the original version is unchanged."""
    snap = snapshot(
        [dc("dc", location=CHICAGO), store("s1")], [stock("dc", "A", 5), stock("s1", "A", 3)]
    )
    prepared = prepare(snap)
    live = Inventory.of(snap)
    req = request(("A", 1))
    first = solve(req, prepared.with_inventory(live))
    assert [s.node_id for s in first.options[0].shipments] == ["s1"]
    sold = live.replace([stock("s1", "A", 1)])  # 1 on hand, web keeps 1 unit at stores
    answer = solve(req, prepared.with_inventory(sold))
    assert [s.node_id for s in answer.options[0].shipments] == ["dc"]
    assert check(answer, req, sold.as_snapshot()).ok
    assert sold.version == live.version + 1
    assert live.position("s1", "A") == stock("s1", "A", 3)
    assert sold.position("s1", "A") == stock("s1", "A", 1)


def test_new_rows_are_added_and_unknown_ones_rejected() -> None:
    """A receipt of a SKU new to a node adds a row; unknown nodes and SKUs are errors."""
    snap = snapshot([store("s1"), store("s2")], [stock("s1", "A", 3)])
    live = Inventory.of(snap).replace([stock("s2", "B", 4)])
    report = availability(prepare(snap).with_inventory(live), ["B"], "web")
    assert report.skus[0].total.on_hand == 4
    assert report.skus[0].nodes[0].kind is NodeKind.STORE
    assert report.snapshot_version == "case+1"
    assert availability(snap, ["B"], "web").skus[0].total.on_hand == 0
    with pytest.raises(InvalidRequestError, match="unknown node"):
        live.replace([stock("nowhere", "A", 1)])
    with pytest.raises(InvalidRequestError, match="unknown SKU"):
        live.replace([stock("s1", "ZZZ", 1)])
