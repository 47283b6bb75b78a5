"""The columnar inventory form means exactly what the row form means."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from pydantic import ValidationError

from models import InventoryTable, Snapshot
from scenarios import generate_carts, generate_network
from solver import SolveParams, prepare, solve
from solver.checker import Reference, check
from tests.solver.network_cases import snapshot, stock, store


def table(**overrides: object) -> InventoryTable:
    """A two-row table with one in-transit lot, fields overridable."""
    fields: dict[str, object] = {
        "node_id": ("s1", "s1"),
        "sku": ("A", "B"),
        "on_hand": (3, 1),
        "reserved": (1, 0),
        "safety_stock": (0, 0),
        "unit_cost": (1000, 2000),
        "lot_row": (1,),
        "lot_quantity": (4,),
        "lot_eta": (dt.date(2026, 12, 2),),
    }
    fields.update(overrides)
    return InventoryTable.model_validate(fields)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sku": ("A",)}, "same length"),  # a short column
        ({"reserved": (4, 0)}, "reserved exceeds on_hand in rows [0]"),  # more held than there is
        ({"lot_row": (2,)}, "past the last inventory row"),  # a lot for a row that is not there
        ({"lot_eta": ()}, "lot_row, lot_quantity and lot_eta"),  # lot columns misaligned
    ],
)
def test_bad_tables_are_rejected(overrides: dict[str, object], message: str) -> None:
    """Columns must line up and obey the row rules."""
    with pytest.raises(ValidationError, match=re.escape(message)):
        table(**overrides)


def test_table_rows_read_like_positions() -> None:
    """Row 1 of the table is the same domain object as the equivalent position."""
    row = table().row(1)
    assert row.on_hand == 1
    assert [(lot.quantity, lot.eta) for lot in row.in_transit] == [(4, dt.date(2026, 12, 2))]
    snap = snapshot([store("s1")], []).model_copy(update={"inventory_table": table()})
    assert snap.row_count == 2
    assert snap.row_keys() == (("s1", "s1"), ("A", "B"))
    assert snap.row(1) == row


def test_rows_and_table_together_are_rejected() -> None:
    """A snapshot holds its inventory in one form."""
    base = snapshot([store("s1")], [stock("s1", "A", 1)])
    with pytest.raises(ValidationError, match="not both"):
        Snapshot.model_validate({**base.model_dump(), "inventory_table": table().model_dump()})


def test_columnar_network_solves_and_checks_like_rows() -> None:
    """The same generated network in both forms gives the same answers, which both check."""
    rows = generate_network(nodes=60, skus=300, seed=3)
    columns = generate_network(nodes=60, skus=300, seed=3, columnar=True)
    assert Snapshot.model_validate_json(columns.model_dump_json()) == columns
    assert list(rows.positions()) == list(columns.positions())
    params = SolveParams(time_budget_ms=3000)
    by_rows, by_columns = prepare(rows), prepare(columns)
    reference = Reference.of(columns)
    for request in generate_carts(rows, count=15, seed=2):
        a = solve(request, by_rows, params=params)
        b = solve(request, by_columns, params=params)
        assert [o.objective for o in a.options] == [o.objective for o in b.options]
        assert check(b, request, reference).ok
