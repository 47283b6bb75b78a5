"""A principal's holds are counted by each transaction that changes them; limits hold in races."""

from __future__ import annotations

import functools

import pytest

from models import Snapshot
from promise.access.principal import Limits, Principal, Scope
from promise.access.records import HoldUsage
from promise.stock import EventBatch, EventType, StockService, StockSettings
from promise.stock.backend import StoredAnswer
from tests.stock.conftest import OpenStore
from tests.stock.stock_cases import FakeClock, FixedSnapshots, event, network
from tests.stock.test_holds import _together, hold_id, lines_request

pytestmark = pytest.mark.anyio


def caller(name: str, **limits: int) -> Principal:
    """A reserve principal with ``limits``."""
    return Principal(
        id=f"key:{name}", kind="key", scopes=frozenset({Scope.RESERVE}), limits=Limits(**limits)
    )


async def usage(service: StockService, principal: Principal) -> HoldUsage:
    """The authority's count of what ``principal`` holds."""
    return service.backend.usage(principal.id)


async def test_every_way_out_of_a_hold_gives_its_units_back(
    service: StockService, clock: FakeClock
) -> None:
    """Placed, released, consumed in two sales, expired by the sweeper: usage returns to zero."""
    who = caller("counted")
    first = hold_id(await service.reserve(lines_request(("DC1", "A", 3)), "a", who))
    second = hold_id(
        await service.reserve(lines_request(("DC1", "A", 4), ("S1", "A", 1)), "b", who)
    )
    third = hold_id(await service.reserve(lines_request(("DC1", "A", 2), ttl_s=30), "c", who))
    assert await usage(service, who) == HoldUsage(3, 10)
    await service.release(first, who)
    assert await usage(service, who) == HoldUsage(2, 7)
    await service.confirm(second, who)
    sale = event("s1", EventType.SALE, 3, 1, reservation_id=second)
    await service.apply_events(EventBatch(events=(sale,)))
    assert await usage(service, who) == HoldUsage(2, 4)
    rest = event("s2", EventType.SALE, 1, 2, reservation_id=second)
    store_sale = event("s3", EventType.SALE, 1, 1, node_id="S1", reservation_id=second)
    await service.apply_events(EventBatch(events=(rest, store_sale)))
    assert await usage(service, who) == HoldUsage(1, 2)
    clock.advance(60)
    assert await service.sweep() == 1
    assert (await service.reservation(third)).status.value == "expired"
    assert await usage(service, who) == HoldUsage(0, 0)


async def test_racing_holds_of_one_principal_stop_at_its_limit(
    open_store: OpenStore, store_settings: StockSettings, clock: FakeClock
) -> None:
    """40 one-unit holds of one caller through two workers, limit 7 units: exactly 7 granted."""
    snap: Snapshot = network(dc_a=100)
    workers = [
        StockService(open_store(), store_settings, snapshots=FixedSnapshots(snap), clock=clock)
        for _ in range(2)
    ]
    who = caller("racer", max_held_units=7)
    calls = [
        functools.partial(workers[i % 2].reserve, lines_request(("DC1", "A", 1)), f"r{i}", who)
        for i in range(40)
    ]
    answers = await _together(*calls)
    granted = [a for a in answers if isinstance(a, StoredAnswer) and a.status_code == 201]
    refused = [a for a in answers if not isinstance(a, StoredAnswer)]
    assert len(granted) == 7
    assert len(refused) == 33
    assert {type(e).__name__ for e in refused} == {"HoldLimitError"}
    assert await usage(workers[0], who) == HoldUsage(7, 7)
    # Another caller is not held back by this one's limit.
    other = caller("other")
    assert hold_id(await workers[1].reserve(lines_request(("DC1", "A", 5)), "o", other))
