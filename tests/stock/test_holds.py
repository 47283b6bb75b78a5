"""Holds: never past channel ATP, all lines or none, idempotent, expiring, one outcome per race."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Awaitable, Callable

import anyio
import pytest

from models import Snapshot
from promise.stock import (
    EventBatch,
    EventType,
    IdempotencyKeyReusedError,
    Reservation,
    ReservationConflictError,
    ReservationNotFoundError,
    ReservationRequest,
    ReservationStatus,
    StockService,
    StockSettings,
)
from promise.stock.backend import Clock, StoredAnswer
from promise.stock.errors import HoldLimitError
from solver import availability
from tests.stock.conftest import OpenStore
from tests.stock.stock_cases import FakeClock, FixedSnapshots, event

pytestmark = pytest.mark.anyio


def lines_request(
    *lines: tuple[str, str, int], channel: str = "web", **fields: object
) -> ReservationRequest:
    """A reservation request for explicit (node, sku, quantity) lines."""
    return ReservationRequest.model_validate(
        {
            "lines": [{"node_id": n, "sku": s, "quantity": q} for n, s, q in lines],
            "channel": channel,
            **fields,
        }
    )


def hold_id(answer: StoredAnswer) -> str:
    """The id of a granted hold."""
    assert answer.status_code == 201, answer.body
    return str(json.loads(answer.body)["reservation_id"])


async def available(service: StockService, node: str, sku: str, channel: str = "web") -> int:
    """What ``channel`` may still hold at (node, sku)."""
    return (await service.position(node, sku, channel)).available


async def test_holds_stop_at_channel_atp(service: StockService) -> None:
    """10 on hand at the DC: 7 then 3 are granted, one more is refused with the shortfall."""
    assert hold_id(await service.reserve(lines_request(("DC1", "A", 7)), "k1"))
    refused = await service.reserve(lines_request(("DC1", "A", 4)), "k2")
    assert refused.status_code == 409
    problem = json.loads(refused.body)
    assert problem["shortfalls"] == [{"node_id": "DC1", "sku": "A", "requested": 4, "available": 3}]
    assert hold_id(await service.reserve(lines_request(("DC1", "A", 3)), "k3"))
    assert await available(service, "DC1", "A") == 0
    assert (await service.position("DC1", "A", "web")).held == 10


async def test_a_multi_line_hold_is_all_or_nothing(service: StockService) -> None:
    """One short line refuses the whole hold; the other line's units stay free."""
    refused = await service.reserve(lines_request(("DC1", "A", 5), ("DC1", "B", 9)), "k")
    assert refused.status_code == 409
    assert [s["sku"] for s in json.loads(refused.body)["shortfalls"]] == ["B"]
    assert await available(service, "DC1", "A") == 10
    assert await available(service, "DC1", "B") == 8


async def test_channel_buffers_apply_to_holds_and_to_the_solver_view(
    service: StockService, snap: Snapshot
) -> None:
    """Store S1: 5 on hand, safety 1, 4 in transit (95 % → 3); web keeps 1 unit, pickup none.

    web ATP = (5 − 1 − 1) + 3 = 6; store_pickup ATP = (5 − 1) + 3 = 7. Holds of either channel
    count against both.
    """
    assert await available(service, "S1", "A", "web") == 6
    assert await available(service, "S1", "A", "store_pickup") == 7
    assert hold_id(await service.reserve(lines_request(("S1", "A", 6)), "web-6"))
    assert (await service.reserve(lines_request(("S1", "A", 1)), "web-1")).status_code == 409
    pickup = lines_request(("S1", "A", 1), channel="store_pickup")
    live = await service.network()
    # The solver sees what each channel may still promise: 0 for web, 1 for pickup.
    for channel, left in (("web", 0), ("store_pickup", 1)):
        tiers = availability(live, ["A"], channel).skus[0].nodes
        store_row = next(node.tiers for node in tiers if node.node_id == "S1")
        assert store_row.available_with_in_transit == left
    assert hold_id(await service.reserve(pickup, "pickup-1"))
    again = lines_request(("S1", "A", 1), channel="store_pickup")
    assert (await service.reserve(again, "pickup-2")).status_code == 409


async def test_same_key_replays_and_another_body_is_refused(service: StockService) -> None:
    """Idempotency-Key: same body → the stored answer; another body → 422; one hold only."""
    first = await service.reserve(lines_request(("DC1", "A", 2)), "key")
    second = await service.reserve(lines_request(("DC1", "A", 2)), "key")
    assert (second.status_code, second.body) == (first.status_code, first.body)
    assert (first.replayed, second.replayed) == (False, True)
    with pytest.raises(IdempotencyKeyReusedError, match="different request body"):
        await service.reserve(lines_request(("DC1", "A", 3)), "key")
    assert (await service.position("DC1", "A", "web")).held == 2


async def test_a_refusal_is_replayed_too(service: StockService) -> None:
    """A 409 is stored under its key: freeing stock later does not change the answer."""
    holder = hold_id(await service.reserve(lines_request(("DC1", "A", 10)), "all"))
    refused = await service.reserve(lines_request(("DC1", "A", 1)), "one")
    await service.release(holder)
    again = await service.reserve(lines_request(("DC1", "A", 1)), "one")
    assert (again.status_code, again.body) == (409, refused.body)


async def test_expiry_returns_units_without_a_sweep(
    service: StockService, clock: FakeClock
) -> None:
    """A lapsed hold stops counting at once; confirm and release then conflict; sweep marks it."""
    held = hold_id(await service.reserve(lines_request(("DC1", "A", 10), ttl_s=30), "k"))
    assert await available(service, "DC1", "A") == 0
    clock.advance(29.999)
    assert (await service.reservation(held)).status is ReservationStatus.HELD
    clock.advance(0.001)
    assert await available(service, "DC1", "A") == 10
    assert (await service.reservation(held)).status is ReservationStatus.EXPIRED
    with pytest.raises(ReservationConflictError, match="expired"):
        await service.confirm(held)
    with pytest.raises(ReservationConflictError, match="expired"):
        await service.release(held)
    assert await service.sweep() == 1
    assert await service.sweep() == 0
    expired = await service.reservation(held)
    assert expired.status is ReservationStatus.EXPIRED
    assert expired.ended_at == expired.expires_at


async def test_firm_reservations_outlive_the_ttl_until_sales_consume_them(
    service: StockService, clock: FakeClock
) -> None:
    """Confirmed units stay held; sales naming the reservation take them off on hand and held."""
    held = hold_id(await service.reserve(lines_request(("DC1", "A", 4)), "k"))
    confirmed = await service.confirm(held)
    assert confirmed.status is ReservationStatus.CONFIRMED
    assert confirmed.expires_at is None
    clock.advance(7200)
    assert await available(service, "DC1", "A") == 6
    sale = event("sale-1", EventType.SALE, 3, 1, reservation_id=held)
    answer = await service.apply_events(EventBatch(events=(sale,)))
    assert answer.applied == 1
    position = await service.position("DC1", "A", "web")
    assert (position.on_hand, position.held, position.available) == (7, 1, 6)
    await service.apply_events(
        EventBatch(events=(event("sale-2", EventType.SALE, 1, 2, reservation_id=held),))
    )
    done = await service.reservation(held)
    assert done.status is ReservationStatus.CONSUMED
    assert [line.consumed for line in done.lines] == [4]
    position = await service.position("DC1", "A", "web")
    assert (position.on_hand, position.held, position.available) == (6, 0, 6)


async def test_transitions_from_each_state(service: StockService) -> None:
    """Confirm and release repeat harmlessly; crossing them, or an unknown id, is refused."""
    first = hold_id(await service.reserve(lines_request(("DC1", "A", 1)), "a"))
    assert (await service.confirm(first)).status is ReservationStatus.CONFIRMED
    assert (await service.confirm(first)).status is ReservationStatus.CONFIRMED
    assert (await service.release(first)).status is ReservationStatus.RELEASED
    assert (await service.release(first)).status is ReservationStatus.RELEASED
    with pytest.raises(ReservationConflictError, match="released; cannot confirm"):
        await service.confirm(first)
    assert await available(service, "DC1", "A") == 10
    with pytest.raises(ReservationNotFoundError):
        await service.confirm("no-such-reservation")
    with pytest.raises(ReservationNotFoundError):
        await service.reservation("no-such-reservation")


def _worker(
    open_store: OpenStore, settings: StockSettings, snap: Snapshot, clock: Clock
) -> StockService:
    """A stock service on its own backend instance, as another worker process would have."""
    return StockService(open_store(), settings, snapshots=FixedSnapshots(snap), clock=clock)


async def _together(*calls: Callable[[], Awaitable[object]]) -> list[object]:
    """Run calls concurrently; each result, or the exception it raised."""
    out: list[object] = [None] * len(calls)

    async def run(i: int) -> None:
        try:
            out[i] = await calls[i]()
        except (ReservationConflictError, ReservationNotFoundError, HoldLimitError) as exc:
            out[i] = exc

    async with anyio.create_task_group() as tasks:
        for i in range(len(calls)):
            tasks.start_soon(run, i)
    return out


async def test_confirm_and_release_races_serialise(
    open_store: OpenStore, store_settings: StockSettings, snap: Snapshot, clock: FakeClock
) -> None:
    """Two workers confirm and release the same holds at once: the answers fit one order.

    Release is valid from held and from confirmed, so it always wins; the confirm either ran
    first (and answered confirmed) or after (and answered 409), never a mix of both states.
    """
    one = _worker(open_store, store_settings, snap, clock)
    two = _worker(open_store, store_settings, snap, clock)
    for i in range(15):
        held = hold_id(await one.reserve(lines_request(("DC1", "A", 1)), f"k{i}"))
        confirm, release = await _together(
            functools.partial(one.confirm, held), functools.partial(two.release, held)
        )
        assert isinstance(release, Reservation)
        assert release.status is ReservationStatus.RELEASED
        if isinstance(confirm, Reservation):
            assert confirm.status is ReservationStatus.CONFIRMED
            assert release.confirmed_at == confirm.confirmed_at  # released after the confirm
        else:
            assert isinstance(confirm, ReservationConflictError)
            assert "released" in confirm.message
            assert release.confirmed_at is None
        assert (await one.reservation(held)).status is ReservationStatus.RELEASED
    assert await available(one, "DC1", "A") == 10


@pytest.mark.parametrize(
    ("action", "settled"),
    [("confirm", ReservationStatus.CONFIRMED), ("release", ReservationStatus.RELEASED)],
)
async def test_transitions_racing_expiry_have_one_winner(
    open_store: OpenStore,
    store_settings: StockSettings,
    snap: Snapshot,
    action: str,
    settled: ReservationStatus,
) -> None:
    """A confirm or release that still sees the hold live races a sweeper that sees it lapsed."""
    start = dt.datetime(2026, 11, 30, 15, tzinfo=dt.UTC)
    placer = _worker(open_store, store_settings, snap, FakeClock(start))
    ids = [
        hold_id(await placer.reserve(lines_request(("DC1", "A", 1), ttl_s=60), f"k{i}"))
        for i in range(8)
    ]
    lapse = start + dt.timedelta(seconds=60)
    before = _worker(
        open_store, store_settings, snap, FakeClock(lapse - dt.timedelta(microseconds=1))
    )
    after = _worker(open_store, store_settings, snap, FakeClock(lapse))
    act = before.confirm if action == "confirm" else before.release
    results = await _together(*(functools.partial(act, h) for h in ids), after.sweep)
    swept = results[-1]
    assert isinstance(swept, int)
    won = [h for h, r in zip(ids, results, strict=False) if isinstance(r, Reservation)]
    lost = [r for r in results[:-1] if isinstance(r, ReservationConflictError)]
    assert len(won) + len(lost) == len(ids)
    assert swept == len(lost)
    for h in ids:
        status = (await before.reservation(h)).status
        assert status is (settled if h in won else ReservationStatus.EXPIRED)
    held = len(won) if settled is ReservationStatus.CONFIRMED else 0
    assert (await before.position("DC1", "A", "web")).held == held


async def test_concurrent_holds_from_two_workers_never_oversell(
    open_store: OpenStore, store_settings: StockSettings, snap: Snapshot, clock: FakeClock
) -> None:
    """60 one-unit holds through two backends against 10 units: exactly 10 granted."""
    workers = [_worker(open_store, store_settings, snap, clock) for _ in range(2)]
    calls = [
        functools.partial(workers[i % 2].reserve, lines_request(("DC1", "A", 1)), f"k{i}")
        for i in range(60)
    ]
    answers = await _together(*calls)
    codes = [a.status_code for a in answers if isinstance(a, StoredAnswer)]
    assert sorted(set(codes)) == [201, 409]
    assert codes.count(201) == 10
    position = await workers[0].position("DC1", "A", "web")
    assert (position.held, position.available) == (10, 0)


async def test_a_stale_sale_still_consumes_its_reservation(service: StockService) -> None:
    """A sale already in a newer count changes no stock, but its units did leave the hold."""
    held = hold_id(await service.reserve(lines_request(("DC1", "A", 2)), "k"))
    await service.confirm(held)
    count = event("count", EventType.COUNT, 8, 5)  # taken after the sale below
    sale = event("sale", EventType.SALE, 2, 4, reservation_id=held)
    answer = await service.apply_events(EventBatch(events=(count, sale)))
    assert [r.outcome.value for r in answer.results] == ["applied", "stale"]
    assert (await service.reservation(held)).status is ReservationStatus.CONSUMED
    position = await service.position("DC1", "A", "web")
    assert (position.on_hand, position.held, position.available) == (8, 0, 8)
