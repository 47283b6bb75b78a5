"""What the independent checker judges an answer against, and the facts it recomputes.

``Reference`` holds one snapshot's lookups and a holiday calendar; ``Context`` adds one
request; ``facts_of`` recomputes what the rules say about a shipment (distance, zone, weight,
cost, delivery date); ``recomputed_objective`` is the objective of docs/model.md. Nothing here
is shared with the engines beyond the calendar and geography rules (see ``solver.checker``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from models import (
    NO_PRICES,
    CarrierService,
    CartLine,
    CatalogItem,
    ChannelPolicy,
    CostBreakdown,
    Destination,
    InventoryPosition,
    Node,
    ObjectiveWeights,
    PromiseOption,
    PromiseRequest,
    ServiceLevel,
    Shipment,
    Snapshot,
    Status,
    StockPrices,
    scale_cents,
)
from solver.calendar import HolidayCalendar, delivery_date, earliest_dispatch
from solver.geo import ResolvedDestination, haversine_km, resolve_destination, zone_of

__all__ = [
    "ACCOUNTING",
    "AVAILABILITY",
    "CAPACITY",
    "DEMAND",
    "LABOUR",
    "LINKING",
    "MARGIN",
    "MAX_SHIPMENTS",
    "PROMISE",
    "Context",
    "Facts",
    "Reference",
    "Sink",
    "Violation",
    "channel_atp",
    "computable",
    "facts_of",
    "make_context",
    "recomputed_objective",
    "shipped_by_line",
    "taken_by_row",
    "unit_cost_at",
]

# Destinations one reference keeps resolved before it starts over.
MAX_DESTINATIONS = 1_024
# Constraint families (numbering of DESIGN.md and docs/model.md).
ACCOUNTING, DEMAND, AVAILABILITY, LINKING = 0, 1, 2, 3
CAPACITY, LABOUR, MAX_SHIPMENTS, PROMISE, MARGIN = 4, 5, 6, 7, 8


@dataclasses.dataclass(frozen=True)
class Violation:
    """One broken rule: the option's level (None for the whole result), family and detail."""

    service_level: ServiceLevel | None
    family: int
    message: str

    def __str__(self) -> str:
        """Render as ``[level] family N: message``."""
        level = self.service_level.value if self.service_level is not None else "result"
        return f"[{level}] family {self.family}: {self.message}"


class Sink:
    """Collects violations of one option (or of the whole result)."""

    def __init__(self, level: ServiceLevel | None) -> None:
        """Start empty for ``level``."""
        self.level = level
        self.items: list[Violation] = []

    def add(self, family: int, message: str) -> None:
        """Record one violation."""
        self.items.append(Violation(self.level, family, message))


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Reference:
    """What answers on one snapshot are checked against: its lookups and a holiday calendar.

    Build it once (``Reference.of``) to check many answers on the same snapshot; ``check``
    builds one per call when it is given a bare snapshot. Rows are looked up by key and built
    on demand, so a columnar snapshot is never expanded whole. Destinations are resolved once
    per reference (a bare coordinate scans every postal code, about a millisecond).
    """

    snapshot: Snapshot
    nodes: dict[str, Node]
    services: dict[str, CarrierService]
    items: dict[str, CatalogItem]
    policies: dict[str, ChannelPolicy]
    rows: dict[tuple[str, str], int]  # (node_id, sku) → row index of the snapshot
    holidays: HolidayCalendar
    destinations: dict[Destination, ResolvedDestination]

    @classmethod
    def of(cls, snapshot: Snapshot, *, holidays: HolidayCalendar | None = None) -> Reference:
        """Dicts of everything an answer on ``snapshot`` can reference."""
        nodes, skus = snapshot.row_keys()
        return cls(
            snapshot=snapshot,
            nodes={node.node_id: node for node in snapshot.nodes},
            services={service.service_id: service for service in snapshot.services},
            items={item.sku: item for item in snapshot.items},
            policies={policy.channel: policy for policy in snapshot.policies},
            rows={key: i for i, key in enumerate(zip(nodes, skus, strict=True))},
            holidays=holidays if holidays is not None else HolidayCalendar(),
            destinations={},
        )

    def row(self, node_id: str, sku: str) -> InventoryPosition | None:
        """The inventory row of (node_id, SKU), or None."""
        index = self.rows.get((node_id, sku))
        return None if index is None else self.snapshot.row(index)

    def resolve(self, destination: Destination) -> ResolvedDestination:
        """``destination`` with coordinates, time zone and region (raises as the solver does)."""
        found = self.destinations.get(destination)
        if found is None:
            found = resolve_destination(destination)
            if len(self.destinations) >= MAX_DESTINATIONS:
                self.destinations.clear()
            self.destinations[destination] = found
        return found


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """Everything an option is judged against."""

    request: PromiseRequest
    ref: Reference
    policy: ChannelPolicy | None
    destination: ResolvedDestination | None
    requested_at: dt.datetime
    order_date: dt.date
    lines: dict[str, CartLine]
    earliest: dict[str, dt.date]
    prices: StockPrices

    @property
    def weights(self) -> ObjectiveWeights | None:
        """Policy weights overridden field by field by the request's."""
        if self.policy is None:
            return None
        weights = self.policy.weights
        overrides = self.request.weights
        return weights if overrides is None else overrides.apply(weights)

    def earliest_at(self, node: Node) -> dt.date:
        """Earliest dispatch date of ``node``, memoised for this check."""
        day = self.earliest.get(node.node_id)
        if day is None:
            day = earliest_dispatch(node, self.requested_at, self.ref.holidays)
            self.earliest[node.node_id] = day
        return day


def make_context(
    request: PromiseRequest,
    ref: Reference,
    *,
    requested_at: dt.datetime,
    order_date: dt.date,
    destination: ResolvedDestination | None,
    prices: StockPrices = NO_PRICES,
) -> Context:
    """Bundle the lookups one option check needs (``prices``: the answer's price table)."""
    return Context(
        request=request,
        ref=ref,
        policy=ref.policies.get(request.cart.channel),
        destination=destination,
        requested_at=requested_at,
        order_date=order_date,
        lines={line.line_id: line for line in request.cart.lines},
        earliest={},
        prices=prices,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Facts:
    """What the rules say about one shipment; None where the inputs do not allow it."""

    node: Node | None
    service: CarrierService | None
    distance_km: float | None
    zone: int
    grams: int | None
    units: int
    cost: CostBreakdown | None
    delivery: dt.date | None
    lines_known: bool

    @property
    def billable_kg(self) -> int | None:
        """Billable weight: actual kg rounded up, at least 1."""
        return None if self.grams is None else max(1, -(-self.grams // 1000))


def facts_of(shipment: Shipment, ctx: Context) -> Facts:
    """Recompute distance, zone, weight, cost and delivery date of one shipment."""
    ref = ctx.ref
    node = ref.nodes.get(shipment.node_id)
    service = ref.services.get(shipment.carrier_service_id)
    distance: float | None = None
    zone = shipment.zone
    if node is not None and ctx.destination is not None:
        distance = float(
            haversine_km(
                node.location.lat, node.location.lon, ctx.destination.lat, ctx.destination.lon
            )
        )
        zone = zone_of(distance)
    units = sum(line.quantity for line in shipment.lines)
    grams: int | None = 0
    for line in shipment.lines:
        item = ref.items.get(line.sku)
        if item is None or grams is None:
            grams = None
        else:
            grams += line.quantity * item.weight_g
    lines_known = all(
        line.line_id in ctx.lines and ctx.lines[line.line_id].sku == line.sku
        for line in shipment.lines
    )
    cost: CostBreakdown | None = None
    if node is not None and service is not None and grams is not None:
        rate = service.rates[zone - 1]
        shipping = rate.base + rate.per_kg * max(1, -(-grams // 1000))
        labour = node.pick_cost * units
        cost = CostBreakdown(
            shipping=shipping,
            handling=node.handling_cost,
            labour=labour,
            total=shipping + node.handling_cost + labour,
        )
    delivery = (
        None if service is None else delivery_date(service, shipment.ship_date, zone, ref.holidays)
    )
    return Facts(
        node=node,
        service=service,
        distance_km=distance,
        zone=zone,
        grams=grams,
        units=units,
        cost=cost,
        delivery=delivery,
        lines_known=lines_known,
    )


def computable(facts: Iterable[Facts]) -> bool:
    """Whether costs, revenue and objective can be recomputed from these shipments."""
    return all(f.cost is not None and f.lines_known for f in facts)


def channel_atp(
    policy: ChannelPolicy, node: Node, row: InventoryPosition | None, day: dt.date | None
) -> int:
    """ATP of the channel at (node, sku) by ``day``; ``day`` None releases every lot."""
    if row is None:
        return 0
    buffer = policy.buffer_units(node.kind, row.on_hand)
    on_hand_atp = max(0, row.on_hand - row.reserved - row.safety_stock - buffer)
    lead = dt.timedelta(days=node.lead_time_days)
    released = sum(lot.quantity for lot in row.in_transit if day is None or lot.eta + lead <= day)
    return on_hand_atp + policy.in_transit_units(released)


def shipped_by_line(option: PromiseOption) -> dict[str, int]:
    """Units shipped per cart line id."""
    shipped: dict[str, int] = defaultdict(int)
    for shipment in option.shipments:
        for line in shipment.lines:
            shipped[line.line_id] += line.quantity
    return shipped


def taken_by_row(option: PromiseOption) -> dict[tuple[str, str], int]:
    """Units taken per (node, sku)."""
    taken: dict[tuple[str, str], int] = defaultdict(int)
    for shipment in option.shipments:
        for line in shipment.lines:
            taken[shipment.node_id, line.sku] += line.quantity
    return taken


def unit_cost_at(ctx: Context, node_id: str, sku: str) -> int:
    """Unit cost of ``sku`` at ``node_id`` (0 without an inventory row)."""
    row = ctx.ref.row(node_id, sku)
    return 0 if row is None else row.unit_cost


def recomputed_objective(
    option: PromiseOption, facts: list[Facts], ctx: Context, weights: ObjectiveWeights
) -> int:
    """The objective of docs/model.md; the caller guarantees ``computable(facts)``."""
    cart_units = sum(line.quantity for line in ctx.request.cart.lines)
    if option.status is Status.UNFULFILLABLE:
        return weights.unfilled_per_unit * cart_units
    total = 0
    for shipment, fact in zip(option.shipments, facts, strict=True):
        # computable guarantees the node, service and weight.
        assert fact.node is not None
        assert fact.service is not None
        assert fact.billable_kg is not None
        node = fact.node
        rate = fact.service.rates[fact.zone - 1]
        total += scale_cents(weights.shipping, rate.base)
        total += scale_cents(weights.shipping, rate.per_kg) * fact.billable_kg
        total += scale_cents(weights.handling, node.handling_cost)
        for line in shipment.lines:
            price = ctx.lines[line.line_id].unit_price
            per_unit = (
                scale_cents(weights.labour, node.pick_cost)
                + scale_cents(weights.unit_cost, unit_cost_at(ctx, node.node_id, line.sku))
                + scale_cents(weights.opportunity, ctx.prices.price(node.node_id, line.sku))
                - scale_cents(weights.revenue, price)
            )
            total += per_unit * line.quantity
    if option.shipments:
        total += weights.split_penalty * (len(option.shipments) - 1)
        latest = max(f.delivery for f in facts if f.delivery is not None)
        # Lateness never counts below 0 days, even when delivery lands before the order date.
        total += weights.lateness_per_day * max(0, (latest - ctx.order_date).days)
    assert ctx.policy is not None  # weights come from the policy
    for (node_id, sku), units in taken_by_row(option).items():
        node = ctx.ref.nodes[node_id]
        atp_last = channel_atp(ctx.policy, node, ctx.ref.row(node_id, sku), None)
        protected_free = max(0, atp_last - node.protection_units)
        total += weights.protection_per_unit * max(0, units - protected_free)
    shipped = shipped_by_line(option)
    unfilled = sum(max(0, line.quantity - shipped[line.line_id]) for line in ctx.request.cart.lines)
    return total + weights.unfilled_per_unit * unfilled
