"""The solver's live view: follows every worker's changes, lapses, and promise-then-hold."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import ServiceLevel, Snapshot
from promise.stock import (
    EventBatch,
    EventType,
    ReservationRequest,
    StockRequestError,
    StockService,
    StockSettings,
    UnknownPromiseError,
)
from promise.stock.backend import utc_now
from promise.stock.holds import LiveTiers, StockRules, solver_position
from promise.stock.live import LiveInventory
from promise.stock.snapshots import LiveSnapshot
from solver import Inventory, prepare, solve
from solver.checker import check
from tests.solver.network_cases import request
from tests.stock.conftest import OpenStore
from tests.stock.stock_cases import ETA, FakeClock, event, network
from tests.stock.test_holds import hold_id, lines_request

pytestmark = pytest.mark.anyio


def live_snapshot(snapshot: Snapshot) -> LiveSnapshot:
    """``snapshot`` loaded as generation 0, as a worker would serve it."""
    return LiveSnapshot.of(prepare(snapshot), 0, "", dt.datetime.now(dt.UTC))


def on_hand(inventory: Inventory) -> int:
    """Units on hand at DC1/A."""
    row = inventory.position("DC1", "A")
    assert row is not None
    return row.on_hand


async def test_each_worker_sees_the_others_changes(
    open_store: OpenStore, snap: Snapshot, clock: FakeClock
) -> None:
    """A view refreshes only when the version moved, and then shows the other worker's event."""
    mine, theirs = open_store(), open_store()
    live = LiveInventory(mine, clock)
    loaded = live_snapshot(snap)
    first = live.current(loaded, 0)
    assert on_hand(first.inventory) == 10
    assert live.current(loaded, 0) is first  # nothing changed: no rebuild, no refresh
    assert (live.rebuilds, live.refreshes) == (1, 0)
    theirs.apply_events([event("count", EventType.COUNT, 3, 1)], StockRules(snap).unknown, utc_now)
    second = live.current(loaded, 0)
    assert on_hand(second.inventory) == 3
    assert second.inventory.version == first.inventory.version + 1
    assert second.calendar is first.calendar  # the network's memo outlives stock versions
    assert (live.rebuilds, live.refreshes) == (1, 1)
    assert on_hand(live.current(live_snapshot(network()), 0).inventory) == 3  # a swap: rebuilt
    assert live.rebuilds == 2


async def test_a_staleness_bound_skips_version_checks(
    open_store: OpenStore, snap: Snapshot, clock: FakeClock
) -> None:
    """With max_staleness_ms a view serves unchecked until it is that old, then catches up."""
    mine, theirs = open_store(), open_store()
    live = LiveInventory(mine, clock, max_staleness_ms=500)
    loaded = live_snapshot(snap)
    live.current(loaded, 0)
    theirs.apply_events([event("c", EventType.COUNT, 3, 1)], StockRules(snap).unknown, utc_now)
    clock.advance(0.499)
    assert on_hand(live.current(loaded, 0).inventory) == 10
    clock.advance(0.001)
    assert on_hand(live.current(loaded, 0).inventory) == 3


async def reserved(service: StockService, snap: Snapshot) -> int:
    """Units the solver sees reserved at DC1/A."""
    row = (await service.network()).inventory.position("DC1", "A")
    assert row is not None
    return row.reserved


async def test_a_lapsed_hold_leaves_the_view_without_a_new_version(
    service: StockService, snap: Snapshot, clock: FakeClock
) -> None:
    """Holds show as reserved until they lapse; the view notices the lapse by itself."""
    hold_id(await service.reserve(lines_request(("DC1", "A", 4), ttl_s=10), "k"))
    version = await service.state_version()
    assert await reserved(service, snap) == 4
    clock.advance(10)
    assert await reserved(service, snap) == 0
    assert await service.state_version() == version


@st.composite
def tiers(draw: st.DrawFn) -> LiveTiers:
    """Live tiers of the store row S1/A, holds within what store_pickup could grant."""
    on_hand = draw(st.integers(0, 30))
    reserved = draw(st.integers(0, on_hand))
    safety = draw(st.integers(0, 5))
    lots = tuple(
        (draw(st.integers(1, 30)), ETA.toordinal() + i) for i in range(draw(st.integers(0, 3)))
    )
    ceiling = max(0, on_hand - reserved - safety) + math.floor(0.95 * sum(q for q, _ in lots))
    return LiveTiers(
        node_id="S1",
        sku="A",
        on_hand=on_hand,
        reserved=reserved,
        safety_stock=safety,
        unit_cost=0,
        lots=lots,
        held=draw(st.integers(0, ceiling)),
    )


@settings(max_examples=300, deadline=None)
@given(tiers())
def test_the_solver_view_is_valid_and_matches_the_hold_rule(row: LiveTiers) -> None:
    """View rows are valid; their ATP is the hold rule's (exact while holds fit on hand).

    Beyond on hand above every buffer the view is off by at most the in-transit share rounding.
    """
    rules = StockRules(network())
    position = solver_position(rules, row)  # raises if reserved > on_hand
    lots = sum(lot.quantity for lot in position.in_transit)
    for policy in rules.policies.values():
        buffer = rules.buffer(policy, row)
        view = max(0, position.on_hand - position.reserved - position.safety_stock - buffer)
        view += math.floor(policy.in_transit_share * lots)
        left = rules.atp(policy, row) - row.held
        strict = rules.strictest_buffer(rules.kinds["S1"], row.on_hand)
        if row.held <= max(0, row.on_hand - row.reserved - row.safety_stock - strict):
            assert view == max(0, left)
        else:
            slack = row.held - max(0, row.on_hand - row.reserved - row.safety_stock - strict)
            assert view <= max(0, left) + math.ceil((1 - policy.in_transit_share) * slack)


async def test_promises_see_events_at_once(service: StockService, snap: Snapshot) -> None:
    """After the DC's count drops to 0 the same cart ships from the store."""
    req = request(("A", 1))
    before = solve(req, await service.network())
    assert [s.node_id for s in before.options[0].shipments] == ["DC1"]
    await service.apply_events(EventBatch(events=(event("c", EventType.COUNT, 0, 1),)))
    live = await service.network()
    after = solve(req, live)
    assert [s.node_id for s in after.options[0].shipments] == ["S1"]
    assert check(after, req, live.inventory.as_snapshot()).ok


def _allocation(result_options: object, level: ServiceLevel) -> Counter[tuple[str, str]]:
    """Units per (node, SKU) of one option of a result."""
    units: Counter[tuple[str, str]] = Counter()
    for option in result_options:  # type: ignore[attr-defined]
        if option.service_level is level:
            for shipment in option.shipments:
                for line in shipment.lines:
                    units[(shipment.node_id, line.sku)] += line.quantity
    return units


async def test_promise_and_hold_holds_exactly_the_chosen_option(
    service: StockService, snap: Snapshot
) -> None:
    """The hold's lines are the recommended option's allocation, unit for unit."""
    result = solve(request(("A", 3), ("B", 2)), await service.network())
    assert result.recommended is not None
    answer = await service.promise_and_hold(
        result, live=service.snapshots.current(), promise_id=uuid.uuid4()
    )
    assert answer.held
    assert answer.reservation is not None
    held = Counter({(line.node_id, line.sku): line.quantity for line in answer.reservation.lines})
    assert held == _allocation(result.options, result.recommended)
    for (node, sku), units in held.items():
        assert (await service.position(node, sku, "web")).held == units


async def test_promise_and_hold_says_what_could_not_be_held(
    service: StockService, snap: Snapshot
) -> None:
    """Stock taken between the solve and the hold: nothing held, the short line named."""
    result = solve(request(("A", 1), ("B", 8)), await service.network())
    hold_id(await service.reserve(lines_request(("DC1", "B", 1)), "other-checkout"))
    answer = await service.promise_and_hold(
        result, live=service.snapshots.current(), promise_id=uuid.uuid4()
    )
    assert not answer.held
    assert answer.reservation is None
    assert [(s.sku, s.requested, s.available) for s in answer.shortfalls] == [("B", 8, 7)]
    assert (await service.position("DC1", "A", "web")).held == 0
    assert (await service.position("S1", "A", "web")).held == 0


async def test_reserve_a_remembered_promise_by_id(
    service: StockService, snap: Snapshot, clock: FakeClock, store_settings: StockSettings
) -> None:
    """Any worker can hold an option of a remembered answer until the memo expires."""
    result = solve(request(("A", 2)), await service.network())
    promise_id = uuid.uuid4()
    await service.remember_promise(promise_id, result)
    level = result.options[0].service_level
    body = ReservationRequest(promise_id=promise_id, service_level=level)
    answer = await service.reserve(body, "by-promise")
    assert answer.status_code == 201
    reserved = await service.reservation(hold_id(answer))
    assert reserved.promise_id == promise_id
    assert reserved.service_level is level
    assert Counter({(r.node_id, r.sku): r.quantity for r in reserved.lines}) == _allocation(
        result.options, level
    )
    with pytest.raises(StockRequestError, match="no same_day option"):
        await service.reserve(
            ReservationRequest(promise_id=promise_id, service_level=ServiceLevel.SAME_DAY), "x"
        )
    clock.advance(store_settings.promise_ttl_s)
    with pytest.raises(UnknownPromiseError, match="promise again"):
        await service.reserve(ReservationRequest(promise_id=promise_id), "late")
    # A retry under the first key still gets its stored answer after the memo expired.
    retried = await service.reserve(body, "by-promise")
    assert (retried.status_code, retried.body, retried.replayed) == (201, answer.body, True)


async def test_promise_and_hold_retried_under_one_key_holds_once(
    service: StockService, snap: Snapshot
) -> None:
    """The key names the checkout: a retry returns the first hold, even after a new solve."""
    key = "checkout-42"
    first_result = solve(request(("A", 2)), await service.network())
    first = await service.promise_and_hold(
        first_result, live=service.snapshots.current(), promise_id=uuid.uuid4(), idempotency_key=key
    )
    retry_result = solve(request(("A", 2)), await service.network())
    retry = await service.promise_and_hold(
        retry_result, live=service.snapshots.current(), promise_id=uuid.uuid4(), idempotency_key=key
    )
    assert first.reservation is not None
    assert retry.reservation == first.reservation
    held = [(await service.position(node, "A", "web")).held for node in ("DC1", "S1")]
    assert sum(held) == 2
