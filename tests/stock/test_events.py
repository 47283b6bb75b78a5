"""Inventory events: exactly once, counts against deltas by seq, order never changes the state."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import Snapshot
from promise.stock import EventOutcome, EventType, InventoryEvent
from promise.stock.backend import RowOverlay, utc_now
from promise.stock.events import CountState, after, judge
from promise.stock.holds import StockRules
from promise.stock.sql import SqlStockBackend
from tests.stock.stock_cases import ETA, event

DELTA_TYPES = (EventType.RECEIPT, EventType.SALE, EventType.ADJUSTMENT, EventType.TRANSFER_OUT)


def apply(
    backend: SqlStockBackend, snap: Snapshot, events: Sequence[InventoryEvent], batch: int = 50
) -> list[EventOutcome]:
    """Send ``events`` in batches; every outcome in order."""
    rules = StockRules(snap)
    out: list[EventOutcome] = []
    for start in range(0, len(events), batch):
        results, _ = backend.apply_events(events[start : start + batch], rules.unknown, utc_now)
        out.extend(result.outcome for result in results)
    return out


def replay(stream: Sequence[InventoryEvent]) -> CountState:
    """The rules of ``promise.stock.events`` over an in-memory journal, in arrival order."""
    seen: set[str] = set()
    deltas: list[tuple[int, int]] = []
    state = CountState()
    for item in stream:
        if item.event_id in seen:
            continue
        seen.add(item.event_id)
        outcome, _ = judge(item, state)
        if item.delta is not None:
            deltas.append((item.seq, item.delta))
        if outcome is EventOutcome.APPLIED:
            state = after(item, state, lambda s: sum(d for q, d in deltas if q > s))
    return state


def expected_on_hand(stream: Sequence[InventoryEvent], baseline: int) -> int:
    """Independent oracle: the latest count by seq, plus every delta after it."""
    unique = {item.event_id: item for item in stream}.values()
    counts = [item for item in unique if item.type is EventType.COUNT]
    last = max(counts, key=lambda item: item.seq) if counts else None
    start = baseline if last is None else last.quantity
    after_seq = -1 if last is None else last.seq
    return start + sum(i.delta or 0 for i in unique if i.delta is not None and i.seq > after_seq)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[InventoryEvent], list[InventoryEvent]]:
    """A clean stream of one row (distinct seqs) and a shuffled copy with duplicates."""
    size = draw(st.integers(min_value=1, max_value=25))
    seqs = draw(st.lists(st.integers(0, 60), min_size=size, max_size=size, unique=True))
    clean: list[InventoryEvent] = []
    for i, seq in enumerate(sorted(seqs)):
        if draw(st.booleans()):
            clean.append(event(f"c{i}", EventType.COUNT, draw(st.integers(0, 50)), seq))
        else:
            kind = draw(st.sampled_from(DELTA_TYPES))
            quantity = draw(st.integers(1, 9))
            sign = draw(st.sampled_from((-1, 1))) if kind is EventType.ADJUSTMENT else 1
            clean.append(event(f"d{i}", kind, sign * quantity, seq))
    noisy = clean + draw(st.lists(st.sampled_from(clean), max_size=size))
    return clean, draw(st.permutations(noisy))


@settings(max_examples=300, deadline=None)
@given(streams())
def test_any_order_with_duplicates_gives_the_clean_state(
    pair: tuple[list[InventoryEvent], list[InventoryEvent]],
) -> None:
    """Shuffled, duplicated and replayed streams end where the clean stream does (rule level)."""
    clean, noisy = pair
    state = replay(clean)
    assert replay(noisy) == state
    assert replay(noisy + noisy) == state
    assert state.on_hand(7) == expected_on_hand(clean, 7)


def test_count_supersedes_older_deltas_and_keeps_newer_ones(
    backend: SqlStockBackend, snap: Snapshot
) -> None:
    """A late delta before the count is stale; deltas after it apply whenever they arrive."""
    outcomes = apply(
        backend,
        snap,
        [
            event("after", EventType.RECEIPT, 5, seq=12),  # early arrival, after the count
            event("count", EventType.COUNT, 40, seq=10),
            event("before", EventType.SALE, 3, seq=8),  # already in the count
            event("tie", EventType.SALE, 1, seq=10),  # same seq: taken as in the count
            event("later", EventType.SALE, 2, seq=11),
            event("old-count", EventType.COUNT, 99, seq=9),
        ],
    )
    assert outcomes == [
        EventOutcome.APPLIED,
        EventOutcome.APPLIED,
        EventOutcome.STALE,
        EventOutcome.STALE,
        EventOutcome.APPLIED,
        EventOutcome.STALE,
    ]
    overlay = backend.overlays([("DC1", "A")]).rows[("DC1", "A")]
    assert overlay.count == CountState(count_seq=10, count_value=40, delta_sum=3)
    assert overlay.count.on_hand(10) == 43  # 40 counted + 5 received − 2 sold after it
    recorded = backend.recorded_event("before")
    assert recorded is not None
    assert recorded.outcome is EventOutcome.STALE
    assert "already reflected" in (recorded.reason or "")


def _relabel(stream: Sequence[InventoryEvent], sku: str, prefix: str) -> list[InventoryEvent]:
    """The same events for another SKU, with their ids (and lot references) prefixed."""
    out = []
    for item in stream:
        update: dict[str, object] = {"sku": sku, "event_id": prefix + item.event_id}
        if item.lot_id is not None:
            update["lot_id"] = prefix + item.lot_id
        out.append(item.model_copy(update=update))
    return out


def _stream(rng: random.Random, count: int) -> list[InventoryEvent]:
    """A clean stream over DC1 and S1: counts, deltas, lots in transit and their receipts."""
    out: list[InventoryEvent] = []
    open_lots: dict[str, list[str]] = {"DC1": [], "S1": []}
    seq = {"DC1": 0, "S1": 0}
    for i in range(count):
        node = rng.choice(("DC1", "S1"))
        seq[node] += rng.randint(1, 3)
        roll = rng.random()
        if roll < 0.15:
            item = event(f"e{i}", EventType.COUNT, rng.randint(0, 40), seq[node], node_id=node)
        elif roll < 0.3:
            item = event(
                f"e{i}", EventType.IN_TRANSIT, rng.randint(1, 9), seq[node], node_id=node, eta=ETA
            )
            open_lots[node].append(item.event_id)
        elif roll < 0.4 and open_lots[node]:
            lot_id = open_lots[node].pop(0)
            item = event(
                f"e{i}",
                EventType.RECEIPT,
                rng.randint(1, 9),
                seq[node],
                node_id=node,
                lot_id=lot_id,
            )
        else:
            kind = rng.choice(DELTA_TYPES)
            quantity = rng.randint(1, 9) * (
                rng.choice((-1, 1)) if kind is EventType.ADJUSTMENT else 1
            )
            item = event(f"e{i}", kind, quantity, seq[node], node_id=node)
        out.append(item)
    return out


def _rows(backend: SqlStockBackend, sku: str) -> dict[str, RowOverlay]:
    """Overlays of a SKU's rows by node, lots sorted (their order is not part of the state)."""
    rows = backend.changes(-1, [("DC1", sku), ("S1", sku)]).rows
    return {
        node: dataclasses.replace(overlay, lots=tuple(sorted(overlay.lots)))
        for (node, row_sku), overlay in rows.items()
        if row_sku == sku
    }


def test_shuffled_duplicated_stream_applied_twice_matches_the_clean_stream(
    backend: SqlStockBackend, snap: Snapshot
) -> None:
    """Acceptance 3: duplicates and shuffled order, applied twice, end in the clean state."""
    rng = random.Random(20261130)
    clean = _stream(rng, 160)
    apply(backend, snap, _relabel(clean, "A", "x-"), batch=40)
    noisy = _relabel(clean, "C", "y-")
    noisy += rng.sample(noisy, 40)
    rng.shuffle(noisy)
    first = apply(backend, snap, noisy, batch=30)
    second = apply(backend, snap, noisy, batch=17)
    assert set(second) == {EventOutcome.DUPLICATE}
    assert first.count(EventOutcome.DUPLICATE) == 40
    assert EventOutcome.REJECTED not in first
    expected = _rows(backend, "A")
    assert set(expected) == {"DC1", "S1"}
    assert _rows(backend, "C") == expected
    # Every lot that got its receipt is closed in both; the open ones match in size and date.
    assert any(overlay.lots for overlay in expected.values())


def test_rejections_are_not_recorded(backend: SqlStockBackend, snap: Snapshot) -> None:
    """Unknown rows, reservations and lots of another row are rejected with a reason."""
    apply(backend, snap, [event("lot", EventType.IN_TRANSIT, 3, 1, eta=ETA)])
    results, _ = backend.apply_events(
        [
            event("n", EventType.RECEIPT, 1, 1, node_id="NOWHERE"),
            event("s", EventType.RECEIPT, 1, 1, sku="ZZZ"),
            event("r", EventType.SALE, 1, 2, reservation_id="no-such-hold"),
            event("l", EventType.RECEIPT, 3, 1, node_id="S1", lot_id="lot"),
        ],
        StockRules(snap).unknown,
        utc_now,
    )
    assert [r.outcome for r in results] == [EventOutcome.REJECTED] * 4
    reasons = [r.reason or "" for r in results]
    assert "unknown node" in reasons[0]
    assert "unknown SKU" in reasons[1]
    assert "unknown reservation" in reasons[2]
    assert "lot 'lot' is of A at DC1" in reasons[3]
    assert all(backend.recorded_event(name) is None for name in ("n", "s", "r", "l"))


def test_a_reused_event_id_is_a_duplicate_that_says_so(
    backend: SqlStockBackend, snap: Snapshot
) -> None:
    """The first event with an id wins; a different event under that id is named as such."""
    apply(backend, snap, [event("same", EventType.RECEIPT, 2, 1)])
    results, _ = backend.apply_events(
        [event("same", EventType.RECEIPT, 2, 1), event("same", EventType.SALE, 9, 2)],
        StockRules(snap).unknown,
        utc_now,
    )
    assert [r.outcome for r in results] == [EventOutcome.DUPLICATE] * 2
    assert results[0].reason == "event_id already recorded; ignored"
    assert "different content" in (results[1].reason or "")
    assert backend.overlays([("DC1", "A")]).rows[("DC1", "A")].count.delta_sum == 2


def test_a_receipt_can_close_its_lot_before_the_lot_arrives(
    backend: SqlStockBackend, snap: Snapshot
) -> None:
    """Receipt then in_transit (out of order) leaves no open lot and the units on hand."""
    apply(backend, snap, [event("rcv", EventType.RECEIPT, 4, 2, lot_id="lot-1")])
    apply(backend, snap, [event("lot-1", EventType.IN_TRANSIT, 4, 1, eta=ETA)])
    overlay = backend.overlays([("DC1", "A")]).rows[("DC1", "A")]
    assert overlay.lots == ()
    assert overlay.count.delta_sum == 4
    apply(backend, snap, [event("lot-2", EventType.IN_TRANSIT, 6, 3, eta=ETA)])
    assert backend.overlays([("DC1", "A")]).rows[("DC1", "A")].lots == ((6, ETA.toordinal()),)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        # a count is an absolute quantity
        ({"type": "count", "quantity": -1}, "must be >= 0"),
        # an adjustment of nothing is a producer bug
        ({"type": "adjustment", "quantity": 0}, "must not be 0"),
        # a sale of a negative quantity would be a receipt
        ({"type": "sale", "quantity": -2}, "must be > 0"),
        # a lot without an arrival date cannot be released
        ({"type": "in_transit", "quantity": 2}, "eta is required"),
        # only sales and shipments consume reservations
        ({"type": "receipt", "quantity": 2, "reservation_id": "r"}, "only for sale"),
        # only arrivals close lots
        ({"type": "sale", "quantity": 2, "lot_id": "l"}, "only for receipt"),
    ],
)
def test_malformed_events_are_refused(fields: dict[str, object], message: str) -> None:
    """Field rules per event type are validation errors (422 at the API)."""
    base = {"event_id": "e", "node_id": "DC1", "sku": "A", "seq": 1}
    base["occurred_at"] = "2026-11-30T15:00:00Z"
    with pytest.raises(pydantic.ValidationError, match=message):
        InventoryEvent.model_validate({**base, **fields})
