"""Moving holds to a new plan: all or nothing, fenced on the holds and on the hold rule.

Runs on SQLite and PostgreSQL. DC1 stocks A×10, S1 A×5 (safety 1, so the web channel may
hold 4 there before its lot arrives, 7 with it).
"""

from __future__ import annotations

import json

import pytest

from promise.reoptimise import _rule_check
from promise.stock import ReservationRequest, StockService
from promise.stock._resourcing_queries import ConcurrentChangeError, HoldMove
from promise.stock.sql import SqlStockBackend

pytestmark = pytest.mark.anyio

ORDER = "{}"  # the tests move holds directly: the order's content is not read


async def _hold(service: StockService, node: str, quantity: int, key: str) -> str:
    """A web hold of A at ``node`` with an order recorded; its id."""
    answer = await service.reserve(
        ReservationRequest.model_validate(
            {"lines": [{"node_id": node, "sku": "A", "quantity": quantity}], "channel": "web"}
        ),
        key,
    )
    assert answer.status_code == 201, answer.body
    hold_id = str(json.loads(answer.body)["reservation_id"])
    assert isinstance(service.backend, SqlStockBackend)
    service.backend.record_order(hold_id, ORDER, ORDER, service.clock)
    return hold_id


def _lines(backend: SqlStockBackend, hold_id: str) -> list[tuple[str, str, int]]:
    """A hold's (node, sku, quantity) lines as stored."""
    hold = backend.get_hold(hold_id)
    assert hold is not None
    return [(line.node_id, line.sku, line.quantity) for line in hold.lines]


def _move(service: StockService, backend: SqlStockBackend, moves: list[HoldMove]) -> int:
    """Move holds under the web channel's hold rule, audited as 'tester'."""
    channels = {(n, s): {"web"} for move in moves for n, s, _ in move.after}
    check = _rule_check(service.rules(service.snapshots.current()), channels)
    return backend.move_holds(moves, check, service.clock, None, "tester")


async def test_a_move_rewrites_the_hold_and_is_audited(
    service: StockService, backend: SqlStockBackend
) -> None:
    """3 units move from DC1 to S1: the hold's lines, the open orders and the audit say so."""
    hold_id = await _hold(service, "DC1", 3, "k1")
    assert [o.hold.hold_id for o in backend.open_orders(0)] == [hold_id]
    _move(service, backend, [HoldMove(hold_id, (("DC1", "A", 3),), (("S1", "A", 3),), "{}")])
    assert _lines(backend, hold_id) == [("S1", "A", 3)]
    assert (await service.position("DC1", "A", "web")).held == 0
    assert (await service.position("S1", "A", "web")).held == 3
    trail = backend.audit_trail(action="hold.resource")
    assert [entry.subject for entry in trail] == [hold_id]


async def test_a_hold_changed_since_the_plan_aborts_every_move(
    service: StockService, backend: SqlStockBackend
) -> None:
    """A plan made from stale lines moves nothing, not even the holds that did not change."""
    first = await _hold(service, "DC1", 2, "k1")
    second = await _hold(service, "DC1", 1, "k2")
    moves = [
        HoldMove(first, (("DC1", "A", 2),), (("S1", "A", 2),), "{}"),
        HoldMove(second, (("DC1", "A", 5),), (("S1", "A", 1),), "{}"),  # stale: it holds 1
    ]
    with pytest.raises(ConcurrentChangeError):
        _move(service, backend, moves)
    assert _lines(backend, first) == [("DC1", "A", 2)]
    assert _lines(backend, second) == [("DC1", "A", 1)]


async def test_a_move_past_the_joined_rows_atp_is_refused(
    service: StockService, backend: SqlStockBackend
) -> None:
    """S1 lets web hold 7 of A; another checkout took 5, so moving 3 more there is refused."""
    hold_id = await _hold(service, "DC1", 3, "k1")
    await _hold(service, "S1", 5, "k2")
    with pytest.raises(ConcurrentChangeError) as refused:
        _move(service, backend, [HoldMove(hold_id, (("DC1", "A", 3),), (("S1", "A", 3),), "{}")])
    assert [s.node_id for s in refused.value.shortfalls] == ["S1"]
    assert _lines(backend, hold_id) == [("DC1", "A", 3)]
    assert (await service.position("S1", "A", "web")).held == 5
