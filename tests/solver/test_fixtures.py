"""Hand-checkable instances: each optimum is worked out in a comment and asserted exactly.

Costs follow tests/solver/network_cases.py: a package costs base(zone) + 100 per billable kg +
handling + pick per unit; the objective adds 200 per extra package and 50 per day from the
order date to the promised date. Every answer also passes the independent checker.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from models import (
    Engine,
    Location,
    PromiseOption,
    PromiseRequest,
    PromiseResult,
    Snapshot,
    Status,
    UnfulfilledReason,
)
from solver import SolveParams, solve
from solver.checker import check
from tests.solver.network_cases import (
    BROOKLYN,
    CHICAGO,
    LOS_ANGELES,
    PHILADELPHIA,
    dc,
    ground,
    ground_rates,
    lot,
    request,
    snapshot,
    stock,
    store,
)


def solved(req: PromiseRequest, snap: Snapshot) -> PromiseOption:
    """Solve with the MIP (pre-filter on and off), check every engine, return the MIP's option."""
    result = solve(req, snap, params=SolveParams(time_budget_ms=2000))
    exact = solve(req, snap, params=SolveParams(time_budget_ms=2000, exact=True))
    for answer in (result, exact):
        report = check(answer, req, snap)
        assert report.ok, report.violations
    assert exact.options[0].objective == result.options[0].objective
    for engine in (Engine.PRIORITY, Engine.NEAREST, Engine.FEWEST_SPLITS):
        baseline = solve(req, snap, params=SolveParams(engine=engine))
        assert check(baseline, req, snap).ok
        assert result.options[0].objective <= baseline.options[0].objective
    return only(result)


def only(result: PromiseResult) -> PromiseOption:
    """The single (ground) option of a result."""
    assert len(result.options) == 1
    return result.options[0]


def shipped_from(option: PromiseOption) -> list[str]:
    """Node ids of the option's shipments, sorted."""
    return sorted(s.node_id for s in option.shipments)


@pytest.mark.parametrize(
    ("dc_location", "dc_handling", "nodes", "objective"),
    [
        # DC in zone 2 ships both in one 2 kg box: 1100 + 200 + 200 + 2×50 = 1600, +1 day 50.
        # The split s1+s2 costs 1650 + 1750 + 200 split + 50 = 3650.
        (PHILADELPHIA, 200, ["dc"], 1650),
        # A Chicago DC with handling 3000: 1400 + 200 + 3000 + 100 + 4 days 200 = 4900, so
        # the split from the two stores (3650) wins.
        (CHICAGO, 3000, ["s1", "s2"], 3650),
    ],
)
def test_one_node_versus_split(
    dc_location: Location, dc_handling: int, nodes: list[str], objective: int
) -> None:
    """One package from a DC beats a two-store split unless the DC is far and costly."""
    snap = snapshot(
        [
            dc("dc", location=dc_location, handling_cost=dc_handling),
            store("s1"),
            store("s2", location=BROOKLYN),
        ],
        [stock("dc", "A", 5), stock("dc", "B", 5), stock("s1", "A", 5), stock("s2", "B", 5)],
    )
    option = solved(request(("A", 1), ("B", 1)), snap)
    assert shipped_from(option) == nodes
    assert option.objective == objective
    assert option.split_count == len(nodes) - 1


@pytest.mark.parametrize(
    ("labour", "node", "ship_date", "objective"),
    [
        # Labour free: the store ships Monday, 1000 + 100 + 400 + 150 = 1650, +1 day = 1700.
        ({}, "s1", dt.date(2026, 11, 30), 1700),
        # One minute left on Monday (a pick takes 120 s): Tuesday, 1650 + 2 days = 1750,
        # still cheaper than the Chicago DC (1400 + 100 + 200 + 50 + 4 days = 1950).
        ({"labour_minutes": {dt.date(2026, 11, 30): 1}}, "s1", dt.date(2026, 12, 1), 1750),
        # One minute every day: the store can never pick, the DC ships at 1950.
        ({"daily_labour_minutes": 1}, "dc", dt.date(2026, 11, 30), 1950),
    ],
)
def test_labour_exhausted_at_the_cheap_store(
    labour: dict[str, Any], node: str, ship_date: dt.date, objective: int
) -> None:
    """Exhausted store labour moves the answer to the next day, then to a DC."""
    snap = snapshot(
        [dc("dc", location=CHICAGO), store("s1", **labour)],
        [stock("dc", "A", 5), stock("s1", "A", 5)],
    )
    option = solved(request(("A", 1)), snap)
    assert shipped_from(option) == [node]
    assert option.shipments[0].ship_date == ship_date
    assert option.objective == objective


@pytest.mark.parametrize(
    ("cheap_capacity", "service", "objective"),
    [
        # Capacity left: the cheap service, 1700 as in the labour case.
        (None, "cheap", 1700),
        # No capacity on the cheap service: the other one, 300 dearer per package: 2000.
        (0, "pricey", 2000),
        # No capacity for this store only (a per-node daily capacity): the same answer.
        ({"s1": 0}, "pricey", 2000),
        # Capacity elsewhere does not matter.
        ({"s9": 0}, "cheap", 1700),
    ],
)
def test_zero_carrier_capacity(
    cheap_capacity: int | dict[str, int] | None, service: str, objective: int
) -> None:
    """A service with no capacity left is never used; another service wins."""
    by_node = cheap_capacity if isinstance(cheap_capacity, dict) else {}
    capacity = None if isinstance(cheap_capacity, dict) else cheap_capacity
    services = [
        ground("cheap", daily_capacity=capacity, daily_capacity_by_node=by_node),
        ground("pricey", rates=ground_rates(base=1300)),
    ]
    snap = snapshot([store("s1"), store("s9")], [stock("s1", "A", 5)], services=services)
    option = solved(request(("A", 1)), snap)
    assert [s.carrier_service_id for s in option.shipments] == [service]
    assert option.objective == objective


def test_in_transit_lot_moves_the_promise() -> None:
    """Stock arriving Wednesday ships Wednesday; the promise moves to Thursday."""
    # 0 on hand, 5 arriving 2026-12-02, 95% promisable: floor(4.75) = 4 units.
    # 4 × 500 g = 2 kg from zone 2: 1100 + 200 + 200 + 4×50 = 1700, +3 days = 1850.
    snap = snapshot([dc("dc")], [stock("dc", "A", 0, in_transit=(lot(5, dt.date(2026, 12, 2)),))])
    option = solved(request(("A", 4)), snap)
    assert option.shipments[0].ship_date == dt.date(2026, 12, 2)
    assert option.promised_delivery_date == dt.date(2026, 12, 3)
    assert option.objective == 1850
    # The fifth unit is beyond the in-transit share: the cart cannot be promised.
    short = solved(request(("A", 5)), snap)
    assert short.status is Status.UNFULFILLABLE
    assert [u.reason for u in short.unfulfilled] == [UnfulfilledReason.INSUFFICIENT_STOCK]


@pytest.mark.parametrize(
    ("channel", "node", "objective"),
    [
        # web keeps 1 unit at stores: the store's last unit is hidden, the DC ships (1950).
        ("web", "dc", 1950),
        # store_pickup has no buffer: the store's last unit ships (1700).
        ("store_pickup", "s1", 1700),
    ],
)
def test_buffer_hides_the_last_unit_from_web(channel: str, node: str, objective: int) -> None:
    """A channel buffer hides a store's last unit from web but not from an unbuffered channel."""
    snap = snapshot(
        [dc("dc", location=CHICAGO), store("s1")], [stock("dc", "A", 5), stock("s1", "A", 1)]
    )
    option = solved(request(("A", 1), channel=channel), snap)
    assert shipped_from(option) == [node]
    assert option.objective == objective


@pytest.mark.parametrize(
    ("at", "ship_date", "delivery", "objective"),
    [
        # Friday 20:00 in New York, after the 14:00 cutoff: the store works Saturday but ground
        # picks up Monday to Friday, so it ships Monday 12-07 and arrives Tuesday 12-08:
        # 1650 + 4 days from Friday = 1850.
        (
            dt.datetime(2026, 12, 5, 1, 0, tzinfo=dt.UTC),
            dt.date(2026, 12, 7),
            dt.date(2026, 12, 8),
            1850,
        ),
        # Friday 10:00: ships Friday, delivered Monday (no weekend delivery): 1650 + 3 days = 1800.
        (
            dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC),
            dt.date(2026, 12, 4),
            dt.date(2026, 12, 7),
            1800,
        ),
    ],
)
def test_friday_after_cutoff_without_saturday_pickup(
    at: dt.datetime, ship_date: dt.date, delivery: dt.date, objective: int
) -> None:
    """After Friday's cutoff with no weekend pickup the package leaves on Monday."""
    snap = snapshot([store("s1")], [stock("s1", "A", 5)])
    option = solved(request(("A", 1), at=at), snap)
    assert option.shipments[0].ship_date == ship_date
    assert option.promised_delivery_date == delivery
    assert option.objective == objective


@pytest.mark.parametrize(
    ("at", "ship_date", "objective"),
    [
        # Martin Luther King Jr. Day, Monday 2027-01-18, 10:00: nothing ships; Tuesday, arrives
        # Wednesday: 1650 + 2 days = 1750.
        (dt.datetime(2027, 1, 18, 15, 0, tzinfo=dt.UTC), dt.date(2027, 1, 19), 1750),
        # An ordinary Monday a week earlier ships the same day: 1700.
        (dt.datetime(2027, 1, 11, 15, 0, tzinfo=dt.UTC), dt.date(2027, 1, 11), 1700),
    ],
)
def test_holiday_monday(at: dt.datetime, ship_date: dt.date, objective: int) -> None:
    """A public holiday from the holiday calendar is not a shipping day."""
    snap = snapshot([store("s1")], [stock("s1", "A", 5)])
    option = solved(request(("A", 1), at=at), snap)
    assert option.shipments[0].ship_date == ship_date
    assert option.objective == objective


@pytest.mark.parametrize(
    ("at", "ship_date", "delivery", "objective"),
    [
        # 03:30 UTC on 12-01 is 19:30 on 11-30 in Los Angeles, before the DC's 20:00 cutoff: it
        # ships on its local Monday. Zone 8 ground takes 6 business days: Tuesday 12-08.
        # 1700 + 100 + 200 + 50 = 2050, +8 days from the New York order date (11-30) = 2450.
        (
            dt.datetime(2026, 12, 1, 3, 30, tzinfo=dt.UTC),
            dt.date(2026, 11, 30),
            dt.date(2026, 12, 8),
            2450,
        ),
        # 04:30 UTC is 20:30 in Los Angeles: after cutoff, ships Tuesday, arrives 12-09: 2500.
        (
            dt.datetime(2026, 12, 1, 4, 30, tzinfo=dt.UTC),
            dt.date(2026, 12, 1),
            dt.date(2026, 12, 9),
            2500,
        ),
    ],
)
def test_node_three_time_zones_west_near_midnight_utc(
    at: dt.datetime, ship_date: dt.date, delivery: dt.date, objective: int
) -> None:
    """Cutoff is judged in the node's local time, not in UTC or at the destination."""
    west = dc("la", location=LOS_ANGELES, time_zone="America/Los_Angeles", cutoff=dt.time(20, 0))
    snap = snapshot([west], [stock("la", "A", 5)])
    option = solved(request(("A", 1), at=at), snap)
    assert option.shipments[0].ship_date == ship_date
    assert option.promised_delivery_date == delivery
    assert option.objective == objective


@pytest.mark.parametrize(
    ("floor", "node", "objective"),
    [
        # No floor: the store is cheaper to fulfil from (1700 against the DC's 1950).
        (None, "s1", 1700),
        # 60% floor on a 10,000 sale: the store's margin is 10000 − 3000 − 1650 = 5350 (53.5%),
        # the DC's 10000 − 1000 − 1750 = 7250 (72.5%): the store is excluded.
        (60.0, "dc", 1950),
        # 80%: no node clears the floor; the cart cannot be promised.
        (80.0, None, 1_000_000),
    ],
)
def test_margin_floor_excludes_a_node(
    floor: float | None, node: str | None, objective: int
) -> None:
    """A margin floor removes nodes whose unit cost and fulfilment eat the margin."""
    snap = snapshot(
        [dc("dc", location=CHICAGO), store("s1")],
        [stock("dc", "A", 5, unit_cost=1000), stock("s1", "A", 5, unit_cost=3000)],
    )
    option = solved(request(("A", 1), price=10_000, min_margin_pct=floor), snap)
    assert shipped_from(option) == ([node] if node else [])
    assert option.objective == objective
    if node is None:
        assert option.status is Status.UNFULFILLABLE
        assert [u.reason for u in option.unfulfilled] == [UnfulfilledReason.MARGIN_FLOOR]


@pytest.mark.parametrize(
    ("max_shipments", "allow_partial", "status", "objective"),
    [
        # Two shipments allowed: 1650 (A from s1) + 1750 (B, 2 kg, from s2) + 200 + 50 = 3650.
        (2, False, Status.OPTIMAL, 3650),
        # One shipment, partial allowed: ship A (the cheaper box), B unfilled:
        # 1650 + 50 + 1,000,000 = 1,001,700.
        (1, True, Status.PARTIAL, 1_001_700),
        # One shipment, no partials: nothing ships; objective of shipping nothing = 2,000,000.
        (1, False, Status.UNFULFILLABLE, 2_000_000),
    ],
)
def test_max_shipments_forces_partial_or_unfulfillable(
    max_shipments: int, allow_partial: bool, status: Status, objective: int
) -> None:
    """With one shipment allowed, a cart split across two stores is partial or refused."""
    snap = snapshot(
        [store("s1"), store("s2", location=BROOKLYN)], [stock("s1", "A", 2), stock("s2", "B", 2)]
    )
    req = request(("A", 1), ("B", 1), max_shipments=max_shipments, allow_partial=allow_partial)
    option = solved(req, snap)
    assert option.status is status
    assert option.objective == objective
    if status is not Status.OPTIMAL:
        assert [(u.sku, u.reason) for u in option.unfulfilled] == [
            ("B", UnfulfilledReason.MAX_SHIPMENTS)
        ]


@pytest.mark.parametrize(
    ("weights", "node", "objective"),
    [
        # Default weights: the Philadelphia DC's 3000 handling makes it 1100 + 100 + 3000 + 50
        # + 1 day = 4300; the Chicago store costs 1400 + 100 + 400 + 150 + 4 days = 2250.
        (None, "s1", 2250),
        # Pure shipping cost: only rates count, 1100 + 100 = 1200 from the DC against
        # 1400 + 100 = 1500 from the store.
        (
            {
                "handling": 0,
                "labour": 0,
                "split_penalty": 0,
                "lateness_per_day": 0,
                "protection_per_unit": 0,
            },
            "dc",
            1200,
        ),
    ],
)
def test_request_weights_override_the_policy(
    weights: dict[str, float] | None, node: str, objective: int
) -> None:
    """A caller asking for pure shipping cost gets the cheapest rate, not the cheapest total."""
    snap = snapshot(
        [dc("dc", handling_cost=3000), store("s1", location=CHICAGO)],
        [stock("dc", "A", 5), stock("s1", "A", 5)],
    )
    option = solved(request(("A", 1), weights=weights), snap)
    assert shipped_from(option) == [node]
    assert option.objective == objective
