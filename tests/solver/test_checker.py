"""Tests of the independent checker on the hand-checked network of ``checker_cases``."""

from __future__ import annotations

import datetime as dt
import statistics
import time

import pytest

from models import (
    CarrierService,
    Cart,
    CartLine,
    CatalogItem,
    ChannelPolicy,
    CostBreakdown,
    Destination,
    InventoryPosition,
    Location,
    Node,
    NodeKind,
    PromiseOption,
    PromiseRequest,
    ServiceLevel,
    Shipment,
    ShipmentLine,
    Snapshot,
    Status,
    Unfulfilled,
    UnfulfilledReason,
    WeightOverrides,
    ZoneRate,
)
from solver import checker
from solver.checker import CheckReport, SolutionCheckError, Violation, check, objective_of
from solver.errors import UnknownChannelError
from tests.solver.checker_cases import (
    BASE,
    DC_GROUND,
    GROUND_OPTION,
    L1,
    L2,
    ORDER_DATE,
    PARTIAL_REQUEST,
    PARTIAL_RESULT,
    REQUEST,
    REQUESTED_AT,
    RESULT,
    SAME_DAY_PARTIAL,
    SAME_DAY_UNFULFILLABLE,
    SNAPSHOT,
    STORE_COURIER,
    STORE_GROUND,
    Case,
    answer,
    cart_request,
    day,
    ground,
    shipment,
    snapshot_with,
)

GROUND_LEVEL = ServiceLevel.GROUND
SAME_DAY = ServiceLevel.SAME_DAY

# --- Variants shared by several tables --------------------------------------------------------

# Everything from the store in one package: 2 x 1,200 + 300 g = 2.7 kg -> 3 billable kg.
# shipping 630, handling 150, labour 80 x 3 = 240, total 1,020; delivered Wed 06-11.
STORE_ALL = STORE_GROUND.model_copy(
    update={
        "weight_kg": 2.7,
        "lines": (
            ShipmentLine(line_id="L1", sku="SKU-A", quantity=2),
            ShipmentLine(line_id="L2", sku="SKU-B", quantity=1),
        ),
        "cost": CostBreakdown(shipping=630, handling=150, labour=240, total=1020),
    }
)


def store_only(objective: int) -> PromiseOption:
    """The one-package store answer: revenue 6,000, margin 6,000 - 2,800 - 1,020 = 2,180."""
    return ground(
        promised_delivery_date=day(11),
        shipments=(STORE_ALL,),
        cost=STORE_ALL.cost,
        margin=2180,
        split_count=0,
        objective=objective,
    )


# Web: the store's only SKU-B unit is its buffer. Objective 630 + 150 + 240 + lateness 50 +
# protection 600 (SKU-A: 1 unit below protection as in the base; SKU-B: ATP 0, 1 taken) = 1,670.
WEB_STORE_ONLY = Case(answer(store_only(1670)), REQUEST, SNAPSHOT)
# Pickup has no buffer: store SKU-A ATP 3 (2 free above protection, nothing charged), SKU-B
# ATP 1 (0 free, 1 unit charged). Objective 630 + 150 + 240 + 50 + 300 = 1,370.
PICKUP_STORE_ONLY = Case(
    answer(store_only(1370), channel="pickup"),
    cart_request(L1, L2, channel="pickup"),
    SNAPSHOT,
)

L3 = CartLine(line_id="L3", sku="SKU-C", quantity=2, unit_price=5000)


def in_transit_case(
    *, ship: int, delivery: int, units: int, objective: int, share: float = 0.5
) -> Case:
    """SKU-C (only in transit to the DC) shipped by ground from the DC."""
    weight_g = 2000 * units
    billable = weight_g // 1000
    cost = CostBreakdown(
        shipping=700 + 95 * billable,
        handling=100,
        labour=40 * units,
        total=700 + 95 * billable + 100 + 40 * units,
    )
    package = DC_GROUND.model_copy(
        update={
            "ship_date": day(ship),
            "delivery_date": day(delivery),
            "weight_kg": weight_g / 1000,
            "lines": (ShipmentLine(line_id="L3", sku="SKU-C", quantity=units),),
            "cost": cost,
        }
    )
    revenue = 5000 * units
    option = ground(
        promised_delivery_date=day(delivery),
        shipments=(package,),
        cost=cost,
        revenue=revenue,
        margin=revenue - 2000 * units - cost.total,
        split_count=0,
        objective=objective,
    )
    request = cart_request(L3.model_copy(update={"quantity": units}))
    return Case(answer(option), request, snapshot_with(web={"in_transit_share": share}))


# Unknown SKU-Z on a partial request: the base shipments stand and L4 is unfilled.
# Objective 2,725 + 1 x 1,000,000 = 1,002,725.
L4 = CartLine(line_id="L4", sku="SKU-Z", quantity=1, unit_price=700)
UNKNOWN_SKU_REQUEST = cart_request(L1, L2, L4, allow_partial=True)
UNKNOWN_SKU_PARTIAL = Case(
    answer(
        ground(
            status=Status.PARTIAL,
            unfulfilled=(
                Unfulfilled(
                    line_id="L4", sku="SKU-Z", quantity=1, reason=UnfulfilledReason.UNKNOWN_SKU
                ),
            ),
            objective=1_002_725,
        )
    ),
    UNKNOWN_SKU_REQUEST,
    SNAPSHOT,
)


# --- Valid answers -----------------------------------------------------------------------------

VALID = [
    # Base: ground 2,725 (see checker_cases); same day unfulfillable 1,000,000 x 3 units.
    pytest.param(BASE, {GROUND_LEVEL: 2725, SAME_DAY: 3_000_000}, id="base"),
    # Partial allowed: the courier ships L1 today and L2 is unfilled (1,001,570).
    pytest.param(
        Case(PARTIAL_RESULT, PARTIAL_REQUEST, SNAPSHOT),
        {GROUND_LEVEL: 2725, SAME_DAY: 1_001_570},
        id="partial-courier",
    ),
    # Reported distance 0.04 km off the recomputed 522.617 km: inside the 0.05 km tolerance.
    pytest.param(
        Case(answer(shipment(GROUND_OPTION, 1, distance_km=522.66)), REQUEST, SNAPSHOT),
        {GROUND_LEVEL: 2725},
        id="distance-within-tolerance",
    ),
    # DC ships Wed 06-18; Thu 06-19 is Juneteenth, so delivery is Fri 20, Mon 23, Tue 24 = the
    # ground deadline (06-10 + 14). Lateness 14 x 50 = 700: 2,725 - 350 + 700 = 3,075.
    pytest.param(
        Case(
            answer(
                shipment(
                    ground(promised_delivery_date=day(24), objective=3075),
                    1,
                    ship_date=day(18),
                    delivery_date=day(24),
                )
            ),
            REQUEST,
            SNAPSHOT,
        ),
        {GROUND_LEVEL: 3075},
        id="deadline-met-on-the-day-after-a-holiday",
    ),
    # Request margin floor 22%: 1,345 >= 0.22 x 6,000 = 1,320.
    pytest.param(
        Case(RESULT, REQUEST.model_copy(update={"min_margin_pct": 22.0}), SNAPSHOT),
        {GROUND_LEVEL: 2725, SAME_DAY: 3_000_000},
        id="margin-floor-met",
    ),
    # The request's 22% floor overrides the policy's 23%.
    pytest.param(
        Case(
            RESULT,
            REQUEST.model_copy(update={"min_margin_pct": 22.0}),
            snapshot_with(web={"min_margin_pct": 23.0}),
        ),
        {GROUND_LEVEL: 2725, SAME_DAY: 3_000_000},
        id="request-floor-overrides-policy",
    ),
    # Two packages within a request limit of two.
    pytest.param(
        Case(RESULT, REQUEST.model_copy(update={"max_shipments": 2}), SNAPSHOT),
        {GROUND_LEVEL: 2725, SAME_DAY: 3_000_000},
        id="max-shipments-met",
    ),
    # Pickup channel sees the store's last SKU-B unit (no buffer): 1,370.
    pytest.param(PICKUP_STORE_ONLY, {GROUND_LEVEL: 1370}, id="pickup-sees-buffer-unit"),
    # In-transit SKU-C: released Sat 06-14 (eta 06-13 + 1 lead day); first ground pickup Mon
    # 06-16, delivered Tue 17, Wed 18, Fri 20 (holiday skipped). 2 units = floor(0.5 x 5).
    # 4 kg: 700 + 95 x 4 = 1,080 + 100 + 80 = 1,260; lateness 10 x 50 = 500 -> 1,760.
    pytest.param(
        in_transit_case(ship=16, delivery=20, units=2, objective=1760),
        {GROUND_LEVEL: 1760},
        id="in-transit-released",
    ),
    # With share 1.0 all 5 lot units count: 3 units fit. 6 kg: 700 + 570 + 100 + 120 = 1,490,
    # lateness 500, no protection cost (ATP_last 5 >= 3) -> 1,990.
    pytest.param(
        in_transit_case(ship=16, delivery=20, units=3, objective=1990, share=1.0),
        {GROUND_LEVEL: 1990},
        id="in-transit-full-share",
    ),
    # Unknown SKU left unfilled on a partial request: 2,725 + 1,000,000.
    pytest.param(UNKNOWN_SKU_PARTIAL, {GROUND_LEVEL: 1_002_725}, id="unknown-sku-unfilled"),
]


@pytest.mark.parametrize(("case", "objectives"), VALID)
def test_valid_answers_pass(case: Case, objectives: dict[ServiceLevel, int]) -> None:
    """A hand-checked valid answer breaks no rule and its objectives are recomputed exactly."""
    report = check(*case)
    assert report.ok, report.summary()
    assert report.objectives == objectives


# --- One violated variant per rule -------------------------------------------------------------

VIOLATED = [
    # --- 0: accounting and consistency
    # Store shipping 629 instead of 630.
    pytest.param(
        Case(
            answer(
                shipment(
                    GROUND_OPTION,
                    0,
                    cost=CostBreakdown(shipping=629, handling=150, labour=160, total=939),
                )
            ),
            REQUEST,
            SNAPSHOT,
        ),
        0,
        id="0-shipment-cost",
    ),
    # The store package weighs 2.4 kg, not 2.5.
    pytest.param(
        Case(answer(shipment(GROUND_OPTION, 0, weight_kg=2.5)), REQUEST, SNAPSHOT),
        0,
        id="0-weight",
    ),
    # Option total 1,876 while the parts add up to 1,875.
    pytest.param(
        Case(
            answer(ground(cost=CostBreakdown(shipping=1425, handling=250, labour=200, total=1876))),
            REQUEST,
            SNAPSHOT,
        ),
        0,
        id="0-option-cost",
    ),
    # Revenue 6,001 instead of 6,000.
    pytest.param(Case(answer(ground(revenue=6001)), REQUEST, SNAPSHOT), 0, id="0-revenue"),
    # Margin 1,346 instead of 1,345.
    pytest.param(Case(answer(ground(margin=1346)), REQUEST, SNAPSHOT), 0, id="0-margin"),
    # Two packages are one split, not zero.
    pytest.param(Case(answer(ground(split_count=0)), REQUEST, SNAPSHOT), 0, id="0-split-count"),
    # Objective one cent off.
    pytest.param(Case(answer(ground(objective=2724)), REQUEST, SNAPSHOT), 0, id="0-objective"),
    # A fully filled option called partial (and partial is not even allowed).
    pytest.param(
        Case(answer(ground(status=Status.PARTIAL)), REQUEST, SNAPSHOT), 0, id="0-status-partial"
    ),
    # Unfulfillable objective must be 1,000,000 x every cart unit.
    pytest.param(
        Case(
            answer(GROUND_OPTION, SAME_DAY_UNFULFILLABLE.model_copy(update={"objective": 10**6})),
            REQUEST,
            SNAPSHOT,
        ),
        0,
        id="0-unfulfillable-objective",
    ),
    # Unfulfillable without saying which line falls short.
    pytest.param(
        Case(
            answer(GROUND_OPTION, SAME_DAY_UNFULFILLABLE.model_copy(update={"unfulfilled": ()})),
            REQUEST,
            SNAPSHOT,
        ),
        0,
        id="0-unfulfillable-without-reasons",
    ),
    # Unfulfillable options promise no date.
    pytest.param(
        Case(
            answer(
                GROUND_OPTION,
                SAME_DAY_UNFULFILLABLE.model_copy(update={"promised_delivery_date": day(10)}),
            ),
            REQUEST,
            SNAPSHOT,
        ),
        0,
        id="0-unfulfillable-with-date",
    ),
    # Order date 06-11 is not Chicago's date at 13:30; it also shifts lateness (6 days, 2,675).
    pytest.param(
        Case(answer(GROUND_OPTION, order_date=day(11)), REQUEST, SNAPSHOT), 0, id="0-order-date"
    ),
    # 30 minutes earlier changes no date (13:00 Chicago, 14:00 Detroit) but is not the
    # request's instant.
    pytest.param(
        Case(
            answer(GROUND_OPTION, requested_at=REQUESTED_AT - dt.timedelta(minutes=30)),
            REQUEST,
            SNAPSHOT,
        ),
        0,
        id="0-requested-at",
    ),
    # A naive order instant is ambiguous.
    pytest.param(
        Case(
            answer(GROUND_OPTION, requested_at=REQUESTED_AT.replace(tzinfo=None)),
            REQUEST.model_copy(update={"requested_at": None}),
            SNAPSHOT,
        ),
        0,
        id="0-naive-requested-at",
    ),
    # Answer for another cart.
    pytest.param(Case(answer(GROUND_OPTION, cart_id="cart-2"), REQUEST, SNAPSHOT), 0, id="0-cart"),
    # The recommended level has no option.
    pytest.param(
        Case(answer(GROUND_OPTION, recommended=ServiceLevel.NEXT_DAY), REQUEST, SNAPSHOT),
        0,
        id="0-recommended",
    ),
    # The same level quoted twice.
    pytest.param(
        Case(answer(GROUND_OPTION, GROUND_OPTION), REQUEST, SNAPSHOT), 0, id="0-repeated-level"
    ),
    # A level the request did not ask for.
    pytest.param(
        Case(RESULT, REQUEST.model_copy(update={"service_levels": (GROUND_LEVEL,)}), SNAPSHOT),
        0,
        id="0-level-not-requested",
    ),
    # No policy for the channel: reported, not raised.
    pytest.param(
        Case(
            answer(GROUND_OPTION, channel="kiosk"), cart_request(L1, L2, channel="kiosk"), SNAPSHOT
        ),
        0,
        id="0-unknown-channel",
    ),
    # A postal code the offline dataset does not know: reported, not raised.
    pytest.param(
        Case(
            RESULT,
            REQUEST.model_copy(update={"destination": Destination(postal_code="00000")}),
            SNAPSHOT,
        ),
        0,
        id="0-unknown-postal-code",
    ),
    # --- 1: demand
    # The DC also sends a third unit of L1 (quantity 2). 1.5 kg -> 2 billable kg: 700 + 190 =
    # 890 + 100 + 80 = 1,070; option 1,520 / 250 / 240 = 2,010; revenue 8,500; margin 8,500 -
    # 3,880 - 2,010 = 2,610; objective 1,520 + 250 + 240 + 200 + 350 + 300 = 2,860.
    pytest.param(
        Case(
            answer(
                shipment(
                    ground(
                        cost=CostBreakdown(shipping=1520, handling=250, labour=240, total=2010),
                        revenue=8500,
                        margin=2610,
                        objective=2860,
                    ),
                    1,
                    weight_kg=1.5,
                    lines=(
                        ShipmentLine(line_id="L2", sku="SKU-B", quantity=1),
                        ShipmentLine(line_id="L1", sku="SKU-A", quantity=1),
                    ),
                    cost=CostBreakdown(shipping=890, handling=100, labour=80, total=1070),
                )
            ),
            REQUEST,
            SNAPSHOT,
        ),
        1,
        id="1-over-shipped",
    ),
    # L2 silently dropped: store package only (cost 940, revenue 5,000, margin 1,660), promised
    # 06-11; objective 940 + 50 + 300 + 1 unfilled x 1,000,000 = 1,001,290.
    pytest.param(
        Case(
            answer(
                ground(
                    promised_delivery_date=day(11),
                    shipments=(STORE_GROUND,),
                    cost=STORE_GROUND.cost,
                    revenue=5000,
                    margin=1660,
                    split_count=0,
                    objective=1_001_290,
                )
            ),
            REQUEST,
            SNAPSHOT,
        ),
        1,
        id="1-line-dropped",
    ),
    # L1 both shipped (2) and listed as unfilled (1).
    pytest.param(
        Case(
            answer(
                GROUND_OPTION,
                SAME_DAY_PARTIAL.model_copy(
                    update={
                        "unfulfilled": (
                            *SAME_DAY_PARTIAL.unfulfilled,
                            Unfulfilled(
                                line_id="L1",
                                sku="SKU-A",
                                quantity=1,
                                reason=UnfulfilledReason.CAPACITY,
                            ),
                        )
                    }
                ),
            ),
            PARTIAL_REQUEST,
            SNAPSHOT,
        ),
        1,
        id="1-shipped-and-unfilled",
    ),
    # --- 2: availability
    # Web may not take the store's last SKU-B unit (the buffer).
    pytest.param(WEB_STORE_ONLY, 2, id="2-store-buffer"),
    # Fri 06-13 is the lot's eta but the DC needs a lead day: nothing released until 06-14.
    # Delivered Mon 16, Tue 17, Wed 18; lateness 8 x 50: 1,080 + 100 + 80 + 400 = 1,660.
    pytest.param(
        in_transit_case(ship=13, delivery=18, units=2, objective=1660),
        2,
        id="2-in-transit-before-release",
    ),
    # 3 units of a 5-unit lot at share 0.5 (floor 2.5 = 2). 1,490 + 500 + protection 300
    # (3 taken, 2 free) = 2,290.
    pytest.param(
        in_transit_case(ship=16, delivery=20, units=3, objective=2290),
        2,
        id="2-in-transit-share",
    ),
    # A SKU missing from the catalog has ATP 0 everywhere (objective undefined, not compared).
    pytest.param(
        Case(
            answer(
                shipment(
                    ground(),
                    1,
                    lines=(
                        ShipmentLine(line_id="L2", sku="SKU-B", quantity=1),
                        ShipmentLine(line_id="L4", sku="SKU-Z", quantity=1),
                    ),
                )
            ),
            cart_request(L1, L2, L4),
            SNAPSHOT,
        ),
        2,
        id="2-unknown-sku",
    ),
    # --- 3: linking
    # ``ground-dc`` has the same terms but does not serve the store.
    pytest.param(
        Case(answer(shipment(GROUND_OPTION, 0, carrier_service_id="ground-dc")), REQUEST, SNAPSHOT),
        3,
        id="3-service-does-not-serve-node",
    ),
    # The same-day courier in the ground option: 960 + 150 + 160 = 1,270, delivered today;
    # option 1,755 / 250 / 200 = 2,205, margin 6,000 - 2,780 - 2,205 = 1,015, objective
    # 1,755 + 250 + 200 + 200 + 350 + 300 = 3,055.
    pytest.param(
        Case(
            answer(
                shipment(
                    ground(
                        cost=CostBreakdown(shipping=1755, handling=250, labour=200, total=2205),
                        margin=1015,
                        objective=3055,
                    ),
                    0,
                    carrier_service_id="courier",
                    delivery_date=day(10),
                    cost=STORE_COURIER.cost,
                )
            ),
            REQUEST,
            SNAPSHOT,
        ),
        3,
        id="3-service-level",
    ),
    # The DC line says L2 but ships SKU-A; the package is priced for what it carries (1.2 kg ->
    # 2 kg: 700 + 190 + 100 + 40 = 1,030). Option figures cannot be judged for a foreign SKU.
    pytest.param(
        Case(
            answer(
                shipment(
                    GROUND_OPTION,
                    1,
                    weight_kg=1.2,
                    lines=(ShipmentLine(line_id="L2", sku="SKU-A", quantity=1),),
                    cost=CostBreakdown(shipping=890, handling=100, labour=40, total=1030),
                )
            ),
            REQUEST,
            SNAPSHOT,
        ),
        3,
        id="3-line-sku",
    ),
    # An extra line for a cart line that does not exist; the package is priced for both units
    # (0.6 kg -> 1 kg: 795 + 100 + 80 = 975).
    pytest.param(
        Case(
            answer(
                shipment(
                    GROUND_OPTION,
                    1,
                    weight_kg=0.6,
                    lines=(
                        ShipmentLine(line_id="L2", sku="SKU-B", quantity=1),
                        ShipmentLine(line_id="L9", sku="SKU-B", quantity=1),
                    ),
                    cost=CostBreakdown(shipping=795, handling=100, labour=80, total=975),
                )
            ),
            REQUEST,
            SNAPSHOT,
        ),
        3,
        id="3-unknown-line",
    ),
    # A carrier service the snapshot does not have.
    pytest.param(
        Case(answer(shipment(GROUND_OPTION, 1, carrier_service_id="drone")), REQUEST, SNAPSHOT),
        3,
        id="3-unknown-service",
    ),
    # A node the snapshot does not have.
    pytest.param(
        Case(answer(shipment(GROUND_OPTION, 1, node_id="dc-xyz")), REQUEST, SNAPSHOT),
        3,
        id="3-unknown-node",
    ),
    # Two packages from the store on 06-10, one unit of L1 each. 1.2 kg -> 2 kg: 450 + 120 =
    # 570 + 150 + 80 = 800 each; option 1,935 / 400 / 200 = 2,535; margin 6,000 - 2,780 -
    # 2,535 = 685; objective 1,935 + 400 + 200 + 2 x 200 + 350 + 300 = 3,585.
    pytest.param(
        Case(
            answer(
                ground(
                    shipments=(
                        *(
                            STORE_GROUND.model_copy(
                                update={
                                    "weight_kg": 1.2,
                                    "lines": (ShipmentLine(line_id="L1", sku="SKU-A", quantity=1),),
                                    "cost": CostBreakdown(
                                        shipping=570, handling=150, labour=80, total=800
                                    ),
                                }
                            ),
                        )
                        * 2,
                        DC_GROUND,
                    ),
                    cost=CostBreakdown(shipping=1935, handling=400, labour=200, total=2535),
                    margin=685,
                    split_count=2,
                    objective=3585,
                )
            ),
            REQUEST,
            SNAPSHOT,
        ),
        3,
        id="3-two-packages-one-node-date",
    ),
    # --- 4: carrier capacity
    # Ground at the DC is fully booked on Tue 06-17. Delivered Wed 18, Fri 20, Mon 23;
    # lateness 13 x 50 = 650: 2,725 - 350 + 650 = 3,025.
    pytest.param(
        Case(
            answer(
                shipment(
                    ground(promised_delivery_date=day(23), objective=3025),
                    1,
                    ship_date=day(17),
                    delivery_date=day(23),
                )
            ),
            REQUEST,
            SNAPSHOT,
        ),
        4,
        id="4-capacity",
    ),
    # --- 5: store labour
    # The store has 3 minutes on Wed 06-11; 2 units x 120 s = 4 minutes. Delivered Thu 06-12,
    # so the promise (06-17) and objective do not change.
    pytest.param(
        Case(
            answer(shipment(GROUND_OPTION, 0, ship_date=day(11), delivery_date=day(12))),
            REQUEST,
            SNAPSHOT,
        ),
        5,
        id="5-labour",
    ),
    # --- 6: max shipments
    # Two packages against a request limit of one.
    pytest.param(
        Case(RESULT, REQUEST.model_copy(update={"max_shipments": 1}), SNAPSHOT),
        6,
        id="6-request-limit",
    ),
    # Two packages against a policy limit of one.
    pytest.param(
        Case(RESULT, REQUEST, snapshot_with(web={"max_shipments": 1})), 6, id="6-policy-limit"
    ),
    # --- 7: promise and dates
    # Wed 06-11 is before the DC's earliest dispatch: Detroit was past cutoff at the order.
    # Delivered Thu 12, Fri 13, Mon 16; lateness 6 x 50: 2,725 - 50 = 2,675.
    pytest.param(
        Case(
            answer(
                shipment(
                    ground(promised_delivery_date=day(16), objective=2675),
                    1,
                    ship_date=day(11),
                    delivery_date=day(16),
                )
            ),
            REQUEST,
            SNAPSHOT,
        ),
        7,
        id="7-dispatch-before-cutoff-in-node-zone",
    ),
    # Delivery Mon 06-16 claimed for a Thu 06-12 zone-4 shipment (it is Tue 06-17).
    pytest.param(
        Case(
            answer(shipment(ground(promised_delivery_date=day(16)), 1, delivery_date=day(16))),
            REQUEST,
            SNAPSHOT,
        ),
        7,
        id="7-delivery-date",
    ),
    # Zone 3 for a 522 km trip (zone 4).
    pytest.param(
        Case(answer(shipment(GROUND_OPTION, 1, zone=3)), REQUEST, SNAPSHOT), 7, id="7-zone"
    ),
    # Distance 0.06 km off the recomputed 522.617 km.
    pytest.param(
        Case(answer(shipment(GROUND_OPTION, 1, distance_km=522.68)), REQUEST, SNAPSHOT),
        7,
        id="7-distance",
    ),
    # The courier now reaches only 10 km; the store is 11.1 km away.
    pytest.param(
        Case(PARTIAL_RESULT, PARTIAL_REQUEST, snapshot_with(courier={"max_distance_km": 10.0})),
        7,
        id="7-max-distance",
    ),
    # Promised 06-18 while the last package arrives 06-17.
    pytest.param(
        Case(answer(ground(promised_delivery_date=day(18))), REQUEST, SNAPSHOT),
        7,
        id="7-promised-date",
    ),
    # DC ships Fri 06-20: delivered Mon 23, Tue 24, Wed 25, past the ground deadline 06-24.
    # Lateness 15 x 50: 2,725 - 350 + 750 = 3,125.
    pytest.param(
        Case(
            answer(
                shipment(
                    ground(promised_delivery_date=day(25), objective=3125),
                    1,
                    ship_date=day(20),
                    delivery_date=day(25),
                )
            ),
            REQUEST,
            SNAPSHOT,
        ),
        7,
        id="7-deadline",
    ),
    # --- 8: margin floor
    # Request floor 23%: 1,345 < 0.23 x 6,000 = 1,380.
    pytest.param(
        Case(RESULT, REQUEST.model_copy(update={"min_margin_pct": 23.0}), SNAPSHOT),
        8,
        id="8-request-floor",
    ),
    # Policy floor 23% when the request sets none.
    pytest.param(
        Case(RESULT, REQUEST, snapshot_with(web={"min_margin_pct": 23.0})),
        8,
        id="8-policy-floor",
    ),
]


@pytest.mark.parametrize(("case", "family"), VIOLATED)
def test_altered_answer_breaks_exactly_one_family(case: Case, family: int) -> None:
    """A minimally altered answer is flagged under exactly the family of the rule it breaks."""
    report = check(*case)
    assert not report.ok
    assert report.families == {family}, report.summary()


# --- Focused rules -----------------------------------------------------------------------------


def test_buffer_hides_last_store_unit_from_web_only() -> None:
    """The same one-package answer is fine for pickup but takes web's buffer unit."""
    web = check(*WEB_STORE_ONLY)
    pickup = check(*PICKUP_STORE_ONLY)
    assert pickup.ok, pickup.summary()
    assert [v.family for v in web.violations] == [2]
    assert "SKU-B" in web.violations[0].message
    assert "ATP 0" in web.violations[0].message


@pytest.mark.parametrize(
    ("ship", "units", "share", "released"),
    [
        (13, 2, 0.5, False),  # eta day: still one DC lead day away
        (16, 2, 0.5, True),  # first pickup after release; floor(0.5 x 5) = 2
        (16, 3, 0.5, False),  # only 2 of 5 units may be promised at share 0.5
        (16, 3, 1.0, True),  # full share: 5 units
    ],
)
def test_in_transit_release_and_share(ship: int, units: int, share: float, released: bool) -> None:
    """In-transit units count only from eta + lead time, and only at the channel's share."""
    delivery = {13: 18, 16: 20}[ship]
    # Objective is irrelevant here: compare against the recomputed one to isolate family 2.
    case = in_transit_case(ship=ship, delivery=delivery, units=units, objective=0, share=share)
    families = check(*case).families - {0}
    assert families == (set() if released else {2})


STATUS_RULES = [
    # Partial allowed, some units unfilled: partial is right.
    pytest.param(SAME_DAY_PARTIAL, True, set(), id="partial-allowed"),
    # Same option when partial is not allowed.
    pytest.param(SAME_DAY_PARTIAL, False, {0}, id="partial-not-allowed"),
    # Units unfilled but called feasible.
    pytest.param(
        SAME_DAY_PARTIAL.model_copy(update={"status": Status.FEASIBLE}),
        True,
        {0},
        id="feasible-with-unfilled",
    ),
    # Partial that lists nothing unfilled: also leaves L2's unit unaccounted for (demand).
    pytest.param(
        SAME_DAY_PARTIAL.model_copy(update={"unfulfilled": ()}),
        True,
        {0, 1},
        id="partial-without-unfilled",
    ),
    # Not allowed to be partial, ships nothing: unfulfillable is right.
    pytest.param(SAME_DAY_UNFULFILLABLE, False, set(), id="unfulfillable"),
    # Partial allowed but nothing can ship: unfulfillable carries the same information.
    pytest.param(SAME_DAY_UNFULFILLABLE, True, set(), id="unfulfillable-when-partial-allowed"),
    # Unfulfillable options keep no shipments.
    pytest.param(
        SAME_DAY_UNFULFILLABLE.model_copy(update={"shipments": (STORE_COURIER,)}),
        False,
        {0},
        id="unfulfillable-with-shipments",
    ),
    # Unfulfillable options cost nothing.
    pytest.param(
        SAME_DAY_UNFULFILLABLE.model_copy(update={"cost": STORE_COURIER.cost}),
        False,
        {0},
        id="unfulfillable-with-cost",
    ),
]


@pytest.mark.parametrize(("option", "allow_partial", "families"), STATUS_RULES)
def test_partial_and_unfulfillable_status(
    option: PromiseOption, allow_partial: bool, families: set[int]
) -> None:
    """Status follows the unfilled units and allow_partial."""
    request = REQUEST.model_copy(update={"allow_partial": allow_partial})
    report = check(answer(GROUND_OPTION, option), request, SNAPSHOT)
    assert report.families == families, report.summary()


# --- objective_of ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "overrides", "expected"),
    [
        # Policy weights: the base ground answer.
        pytest.param(GROUND_OPTION, None, 2725, id="policy-weights"),
        # Shipping x1.5, each coefficient rounded once, half up: 675 + 90 x 3 kg + 1,050
        # + round(142.5) = 143 x 1 kg = 2,138. 2,138 + 250 + 200 + 200 + 350 + 300 = 3,438.
        pytest.param(GROUND_OPTION, WeightOverrides(shipping=1.5), 3438, id="shipping-1.5"),
        # Unit cost and revenue at face value: 2,725 + 2,780 - 6,000 = -495.
        pytest.param(
            GROUND_OPTION, WeightOverrides(unit_cost=1.0, revenue=1.0), -495, id="margin-terms"
        ),
        # No split, lateness or protection charges: 1,425 + 250 + 200 = 1,875.
        pytest.param(
            GROUND_OPTION,
            WeightOverrides(split_penalty=0, lateness_per_day=0, protection_per_unit=0),
            1875,
            id="fulfilment-only",
        ),
        # Unfulfillable: unfilled penalty x 3 cart units.
        pytest.param(
            SAME_DAY_UNFULFILLABLE, WeightOverrides(unfilled_per_unit=10), 30, id="unfulfillable"
        ),
    ],
)
def test_objective_of_applies_request_weights(
    option: PromiseOption, overrides: WeightOverrides | None, expected: int
) -> None:
    """The objective uses policy weights overridden field by field by the request."""
    request = REQUEST.model_copy(update={"weights": overrides})
    got = objective_of(option, request, SNAPSHOT, requested_at=REQUESTED_AT, order_date=ORDER_DATE)
    assert got == expected


def test_check_uses_request_weights_for_the_objective() -> None:
    """An answer priced with the request's weights passes; the policy's objective does not."""
    request = REQUEST.model_copy(update={"weights": WeightOverrides(shipping=1.5)})
    priced = answer(ground(objective=3438), SAME_DAY_UNFULFILLABLE)
    assert check(priced, request, SNAPSHOT).ok
    assert check(RESULT, request, SNAPSHOT).families == {0}


def test_objective_of_rejects_unknown_channel_and_nodes() -> None:
    """No policy raises UnknownChannelError; a node the snapshot lacks makes it undefined."""
    kiosk = cart_request(L1, L2, channel="kiosk")
    with pytest.raises(UnknownChannelError):
        objective_of(
            GROUND_OPTION, kiosk, SNAPSHOT, requested_at=REQUESTED_AT, order_date=ORDER_DATE
        )
    with pytest.raises(ValueError, match="undefined"):
        objective_of(
            shipment(GROUND_OPTION, 1, node_id="dc-xyz"),
            REQUEST,
            SNAPSHOT,
            requested_at=REQUESTED_AT,
            order_date=ORDER_DATE,
        )


def test_fulfilment_cost_sums_shipments() -> None:
    """Fulfilment cost is the shipments' shipping + handling + labour (940 + 935)."""
    assert checker.fulfilment_cost(GROUND_OPTION) == 1875
    assert checker.fulfilment_cost(SAME_DAY_UNFULFILLABLE) == 0


# --- Report helpers ----------------------------------------------------------------------------


def test_report_costs_summary_and_raise() -> None:
    """The report carries recomputed costs, renders violations and raises on demand."""
    good = check(*BASE)
    assert good.costs == {GROUND_LEVEL: 1875, SAME_DAY: 0}
    assert good.summary() == "ok"
    good.raise_if_violated()
    bad = check(answer(ground(objective=1)), REQUEST, SNAPSHOT)
    assert bad.violations == (Violation(GROUND_LEVEL, 0, "objective 1, recomputed 2725"),)
    assert bad.summary() == "[ground] family 0: objective 1, recomputed 2725"
    with pytest.raises(SolutionCheckError, match="recomputed 2725"):
        bad.raise_if_violated()


def test_report_is_frozen() -> None:
    """Reports and violations are immutable values."""
    report = CheckReport(violations=(), objectives={}, costs={})
    with pytest.raises(AttributeError):
        report.violations = ()  # type: ignore[misc]
    assert report.ok
    assert report.families == frozenset()


# --- Reference and speed -----------------------------------------------------------------------


def test_a_reference_checks_like_its_snapshot() -> None:
    """A reference built once judges answers as the bare snapshot does, violations included."""
    reference = checker.Reference.of(SNAPSHOT)
    good = answer(GROUND_OPTION)
    assert check(good, REQUEST, reference) == check(good, REQUEST, SNAPSHOT)
    late = GROUND_OPTION.model_copy(update={"promised_delivery_date": day(30)})
    by_reference = check(answer(late), REQUEST, reference)
    assert not by_reference.ok
    assert by_reference == check(answer(late), REQUEST, SNAPSHOT)


def _large_case(nodes: int = 200, skus: int = 500, lines: int = 20) -> Case:
    """200 nodes x 500 SKUs (100k inventory rows) and a 20-line, 2-package answer."""
    node_list = tuple(
        Node(
            node_id=f"n{i}",
            kind=NodeKind.DC if i % 10 == 0 else NodeKind.STORE,
            location=Location(lat=30.0 + i * 0.05, lon=-87.65),
            time_zone="America/Chicago",
        )
        for i in range(nodes)
    )
    items = tuple(CatalogItem(sku=f"S{k}", weight_g=100) for k in range(skus))
    # model_construct: these rows are valid by construction and validation would dominate.
    inventory = tuple(
        InventoryPosition.model_construct(
            node_id=f"n{i}",
            sku=f"S{k}",
            on_hand=50,
            reserved=0,
            safety_stock=0,
            unit_cost=100,
            in_transit=(),
        )
        for i in range(nodes)
        for k in range(skus)
    )
    service = CarrierService(
        service_id="g",
        service_level=ServiceLevel.GROUND,
        transit_days=(1,) * 8,
        rates=(ZoneRate(base=500, per_kg=50),) * 8,
    )
    snapshot = Snapshot(
        version="large",
        as_of=REQUESTED_AT,
        nodes=node_list,
        services=(service,),
        items=items,
        inventory=inventory,
        policies=(ChannelPolicy(channel="web"),),
    )
    cart_lines = tuple(
        CartLine(line_id=f"l{j}", sku=f"S{j * 7}", quantity=1, unit_price=1000)
        for j in range(lines)
    )
    request = PromiseRequest(
        cart=Cart(cart_id="big", lines=cart_lines),
        destination=Destination(lat=41.85, lon=-87.65),
        requested_at=REQUESTED_AT,
    )
    packages = []
    for node_index, chunk in ((199, cart_lines[:10]), (190, cart_lines[10:])):
        node = node_list[node_index]
        packages.append(
            Shipment(
                node_id=node.node_id,
                carrier_service_id="g",
                ship_date=day(10),
                delivery_date=day(11),
                zone=1,
                distance_km=0.0,
                weight_kg=1.0,
                lines=tuple(ShipmentLine(line_id=c.line_id, sku=c.sku, quantity=1) for c in chunk),
                cost=CostBreakdown(),
            )
        )
    option = PromiseOption(
        service_level=ServiceLevel.GROUND,
        status=Status.FEASIBLE,
        promised_delivery_date=day(11),
        shipments=tuple(packages),
    )
    return Case(answer(option, cart_id="big"), request, snapshot)


def test_check_is_fast_on_a_large_snapshot() -> None:
    """Against a reference built once, a 20-line answer checks in a few milliseconds."""
    result, request, snapshot = _large_case()
    reference = checker.Reference.of(snapshot)
    check(result, request, reference)  # the first check fills the reference's holiday years
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        report = check(result, request, reference)
        timings.append(time.perf_counter() - start)
    # The answer's reported figures are deliberately left at zero: every option is recomputed.
    assert report.costs[GROUND_LEVEL] > 0
    assert statistics.median(timings) < 0.005
