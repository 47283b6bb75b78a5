"""Independent solution checker: recompute feasibility and cost of any answer from domain types.

The checker shares no code with the engines beyond the calendar and geography rules
(``solver.calendar``, ``solver.geo``); everything else is recomputed here from
``docs/model.md``, so a bug in the MIP or a greedy baseline shows up as a violation.

Constraint families (numbering of DESIGN.md and docs/model.md)::

    0. accounting: result matches the request (cart, channel, order instant, order date of the
       destination), per-shipment and per-option costs, weight, revenue, margin, split count and
       objective recomputed exactly, status consistent with the unfilled units and allow_partial
    1. demand: for every cart line, shipped units + unfilled units = quantity
    2. availability: units shipped from (n, k) on dates <= d never exceed ATP(c, n, k, d), with
       the channel's buffer, its in-transit share and lot release dates (eta + lead time)
    3. linking: known node and service, the service serves the node and has the option's level,
       shipment lines name cart lines with their SKU, at most one package per (node, date)
    4. carrier capacity: packages per (node, service, date) <= remaining capacity
    5. store labour: units per (node, date) x pick seconds <= remaining labour minutes x 60
    6. max shipments: shipments <= request.max_shipments, else the policy's
    7. promise: ship date is a dispatch date, zone, distance (0.05 km) and delivery date
       recomputed, max_distance_km respected, promised date = latest delivery date, promised
       date <= order date + the level's deadline
    8. margin floor: margin >= f/100 x revenue, f = request.min_margin_pct else the policy's
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import weakref
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
    PerSnapshot,
    PromiseOption,
    PromiseRequest,
    PromiseResult,
    ServiceLevel,
    Shipment,
    Snapshot,
    Status,
    StockPrices,
    meets_margin_floor,
    scale_cents,
)
from solver.calendar import LEVEL_DEADLINE_DAYS, delivery_date, dispatch_dates, earliest_dispatch
from solver.errors import PromiseError, UnknownChannelError
from solver.geo import ResolvedDestination, haversine_km, resolve_destination, zone_of

__all__ = [
    "DISTANCE_TOLERANCE_KM",
    "CheckReport",
    "SolutionCheckError",
    "Violation",
    "check",
    "fulfilment_cost",
    "objective_of",
]

logger = logging.getLogger(__name__)

# Engines may round the reported distance for display; the zone is what must be exact.
DISTANCE_TOLERANCE_KM = 0.05
# weight_kg is a display figure: allow rounding to the gram.
_WEIGHT_TOLERANCE_KG = 0.0005
_ACCOUNTING, _DEMAND, _AVAILABILITY, _LINKING = 0, 1, 2, 3
_CAPACITY, _LABOUR, _MAX_SHIPMENTS, _PROMISE, _MARGIN = 4, 5, 6, 7, 8
_SOLVED = frozenset({Status.OPTIMAL, Status.FEASIBLE, Status.FALLBACK})


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


class SolutionCheckError(AssertionError):
    """An answer broke at least one rule of docs/model.md."""


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """Violations of an answer plus the recomputed objective and cost of each option."""

    violations: tuple[Violation, ...]
    objectives: dict[ServiceLevel, int]
    costs: dict[ServiceLevel, int]

    @property
    def ok(self) -> bool:
        """Whether the answer broke no rule."""
        return not self.violations

    @property
    def families(self) -> frozenset[int]:
        """Constraint families with at least one violation."""
        return frozenset(v.family for v in self.violations)

    def summary(self) -> str:
        """One line per violation, or ``ok``."""
        if self.ok:
            return "ok"
        return "\n".join(str(v) for v in self.violations)

    def raise_if_violated(self) -> None:
        """Raise ``SolutionCheckError`` listing every violation, if there is any."""
        if not self.ok:
            raise SolutionCheckError(self.summary())


# --------------------------------------------------------------------------------------------
# Lookups: built once per snapshot object, then shared by every check against it.


class _Rows:
    """Inventory rows by (node_id, SKU), read through the snapshot's own row lookup.

    Holds the snapshot weakly, like the index cache, and memoises what it has looked up.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        """Remember the snapshot without keeping it alive."""
        self._snapshot = weakref.ref(snapshot)
        self._seen: dict[tuple[str, str], InventoryPosition | None] = {}

    def get(self, key: tuple[str, str]) -> InventoryPosition | None:
        """The row of (node_id, SKU), or None."""
        if key not in self._seen:
            snapshot = self._snapshot()
            self._seen[key] = None if snapshot is None else snapshot.position(*key)
        return self._seen[key]


@dataclasses.dataclass(frozen=True, slots=True)
class _SnapshotIndex:
    """Dict lookups of a snapshot's nodes, services, items, inventory rows and policies."""

    nodes: dict[str, Node]
    services: dict[str, CarrierService]
    items: dict[str, CatalogItem]
    inventory: _Rows
    policies: dict[str, ChannelPolicy]


# Keyed by id(snapshot) with a weak reference to confirm identity: hashing a snapshot would walk
# every inventory row, and a strong reference would keep old snapshots alive.
_INDEXES: PerSnapshot[_SnapshotIndex] = PerSnapshot(8)


def _build_index(snapshot: Snapshot) -> _SnapshotIndex:
    """Dicts of everything an answer can reference."""
    return _SnapshotIndex(
        nodes={node.node_id: node for node in snapshot.nodes},
        services={service.service_id: service for service in snapshot.services},
        items={item.sku: item for item in snapshot.items},
        inventory=_Rows(snapshot),
        policies={policy.channel: policy for policy in snapshot.policies},
    )


def _index_for(snapshot: Snapshot) -> _SnapshotIndex:
    """The cached index of ``snapshot``, built on first use."""
    return _INDEXES.get(snapshot, _build_index)


@functools.lru_cache(maxsize=1024)
def _resolve(destination: Destination) -> ResolvedDestination:
    """Cached destination resolution (a bare coordinate scans every postal code)."""
    return resolve_destination(destination)


# --------------------------------------------------------------------------------------------
# Per-check context and per-shipment facts.


@dataclasses.dataclass(frozen=True, slots=True)
class _Context:
    """Everything an option is judged against."""

    request: PromiseRequest
    index: _SnapshotIndex
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
            day = earliest_dispatch(node, self.requested_at)
            self.earliest[node.node_id] = day
        return day


def _make_context(
    request: PromiseRequest,
    index: _SnapshotIndex,
    *,
    requested_at: dt.datetime,
    order_date: dt.date,
    destination: ResolvedDestination | None,
    prices: StockPrices,
) -> _Context:
    """Bundle the lookups one option check needs."""
    return _Context(
        request=request,
        index=index,
        policy=index.policies.get(request.cart.channel),
        destination=destination,
        requested_at=requested_at,
        order_date=order_date,
        lines={line.line_id: line for line in request.cart.lines},
        earliest={},
        prices=prices,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Facts:
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


def _facts(shipment: Shipment, ctx: _Context) -> _Facts:
    """Recompute distance, zone, weight, cost and delivery date of one shipment."""
    index = ctx.index
    node = index.nodes.get(shipment.node_id)
    service = index.services.get(shipment.carrier_service_id)
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
        item = index.items.get(line.sku)
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
    delivery = None if service is None else delivery_date(service, shipment.ship_date, zone)
    return _Facts(
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


def _computable(facts: Iterable[_Facts]) -> bool:
    """Whether costs, revenue and objective can be recomputed from these shipments."""
    return all(f.cost is not None and f.lines_known for f in facts)


def _atp(
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


def _shipped_by_line(option: PromiseOption) -> dict[str, int]:
    """Units shipped per cart line id."""
    shipped: dict[str, int] = defaultdict(int)
    for shipment in option.shipments:
        for line in shipment.lines:
            shipped[line.line_id] += line.quantity
    return shipped


def _taken(option: PromiseOption) -> dict[tuple[str, str], int]:
    """Units taken per (node, sku)."""
    taken: dict[tuple[str, str], int] = defaultdict(int)
    for shipment in option.shipments:
        for line in shipment.lines:
            taken[shipment.node_id, line.sku] += line.quantity
    return taken


def _unit_cost(ctx: _Context, node_id: str, sku: str) -> int:
    """Unit cost of ``sku`` at ``node_id`` (0 without an inventory row)."""
    row = ctx.index.inventory.get((node_id, sku))
    return 0 if row is None else row.unit_cost


# --------------------------------------------------------------------------------------------
# Objective and accounting.


def _objective(
    option: PromiseOption, facts: list[_Facts], ctx: _Context, weights: ObjectiveWeights
) -> int:
    """The objective of docs/model.md; the caller guarantees ``_computable(facts)``."""
    cart_units = sum(line.quantity for line in ctx.request.cart.lines)
    if option.status is Status.UNFULFILLABLE:
        return weights.unfilled_per_unit * cart_units
    total = 0
    for shipment, fact in zip(option.shipments, facts, strict=True):
        # _computable guarantees the node, service and weight.
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
                + scale_cents(weights.unit_cost, _unit_cost(ctx, node.node_id, line.sku))
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
    for (node_id, sku), units in _taken(option).items():
        node = ctx.index.nodes[node_id]
        atp_last = _atp(ctx.policy, node, ctx.index.inventory.get((node_id, sku)), None)
        protected_free = max(0, atp_last - node.protection_units)
        total += weights.protection_per_unit * max(0, units - protected_free)
    shipped = _shipped_by_line(option)
    unfilled = sum(max(0, line.quantity - shipped[line.line_id]) for line in ctx.request.cart.lines)
    return total + weights.unfilled_per_unit * unfilled


def objective_of(
    option: PromiseOption,
    request: PromiseRequest,
    snapshot: Snapshot,
    *,
    requested_at: dt.datetime,
    order_date: dt.date,
    prices: StockPrices = NO_PRICES,
) -> int:
    """Objective of docs/model.md for ``option``, with the request's weight overrides.

    Raises:
        UnknownChannelError: the snapshot has no policy for the cart's channel.
        UnknownPostalCodeError: the destination does not resolve.
        ValueError: the option names nodes, services, cart lines or SKUs the inputs lack.
    """
    index = _index_for(snapshot)
    ctx = _make_context(
        request,
        index,
        requested_at=requested_at,
        order_date=order_date,
        destination=_resolve(request.destination),
        prices=prices,
    )
    weights = ctx.weights
    if weights is None:
        raise UnknownChannelError(request.cart.channel)
    facts = [_facts(shipment, ctx) for shipment in option.shipments]
    if option.status is not Status.UNFULFILLABLE and not _computable(facts):
        raise ValueError(
            f"{option.service_level.value} option references unknown nodes, services, "
            "cart lines or SKUs; its objective is undefined"
        )
    return _objective(option, facts, ctx, weights)


def fulfilment_cost(option: PromiseOption) -> int:
    """Fulfilment cost of ``option`` summed from its shipments' cost components."""
    return sum(s.cost.shipping + s.cost.handling + s.cost.labour for s in option.shipments)


# --------------------------------------------------------------------------------------------
# Constraint families, one function each.


class _Sink:
    """Collects violations of one option."""

    def __init__(self, level: ServiceLevel | None) -> None:
        """Start empty for ``level``."""
        self.level = level
        self.items: list[Violation] = []

    def add(self, family: int, message: str) -> None:
        """Record one violation."""
        self.items.append(Violation(self.level, family, message))


def _label(index: int, shipment: Shipment) -> str:
    """Short name of a shipment for messages."""
    return (
        f"shipment {index} ({shipment.node_id}/{shipment.carrier_service_id} {shipment.ship_date})"
    )


def _family1_demand(option: PromiseOption, ctx: _Context, out: _Sink) -> None:
    """1. Every unit of a line is shipped or listed unfilled, never both, never more."""
    unfilled: dict[str, int] = defaultdict(int)
    for entry in option.unfulfilled:
        line = ctx.lines.get(entry.line_id)
        if line is None:
            out.add(_ACCOUNTING, f"unfulfilled entry names unknown line {entry.line_id!r}")
        elif line.sku != entry.sku:
            out.add(
                _ACCOUNTING,
                f"unfulfilled entry for line {entry.line_id} says sku {entry.sku}, "
                f"the cart says {line.sku}",
            )
        unfilled[entry.line_id] += entry.quantity
    shipped = _shipped_by_line(option)
    for line in ctx.request.cart.lines:
        short = unfilled[line.line_id]
        if short > line.quantity:
            out.add(
                _DEMAND, f"line {line.line_id}: {short} unfilled units exceed its {line.quantity}"
            )
        elif option.status is not Status.UNFULFILLABLE:
            sent = shipped[line.line_id]
            if sent + short != line.quantity:
                out.add(
                    _DEMAND,
                    f"line {line.line_id}: {sent} shipped + {short} unfilled "
                    f"!= quantity {line.quantity}",
                )


def _family2_availability(option: PromiseOption, ctx: _Context, out: _Sink) -> None:
    """2. Cumulative units from (n, k) by each ship date stay within ATP(c, n, k, d)."""
    if ctx.policy is None:
        return
    by_date: dict[tuple[str, str], dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    for shipment in option.shipments:
        for line in shipment.lines:
            by_date[shipment.node_id, line.sku][shipment.ship_date] += line.quantity
    for (node_id, sku), per_day in by_date.items():
        node = ctx.index.nodes.get(node_id)
        if node is None:
            continue  # family 3 reports the unknown node
        if sku not in ctx.index.items:
            out.add(_AVAILABILITY, f"sku {sku} is not in the catalog but ships from {node_id}")
            continue
        row = ctx.index.inventory.get((node_id, sku))
        cumulative = 0
        for day in sorted(per_day):
            cumulative += per_day[day]
            atp = _atp(ctx.policy, node, row, day)
            if cumulative > atp:
                out.add(
                    _AVAILABILITY,
                    f"{cumulative} units of {sku} from {node_id} by {day} exceed "
                    f"ATP {atp} for channel {ctx.policy.channel}",
                )
                break


def _family3_linking(option: PromiseOption, ctx: _Context, out: _Sink) -> None:
    """3. Shipments reference real nodes, services and cart lines; one package per (n, d)."""
    slots: dict[tuple[str, dt.date], int] = defaultdict(int)
    for i, shipment in enumerate(option.shipments):
        label = _label(i, shipment)
        slots[shipment.node_id, shipment.ship_date] += 1
        node = ctx.index.nodes.get(shipment.node_id)
        service = ctx.index.services.get(shipment.carrier_service_id)
        if node is None:
            out.add(_LINKING, f"{label}: unknown node")
        if service is None:
            out.add(_LINKING, f"{label}: unknown carrier service")
        elif node is not None and not service.serves(node.node_id):
            out.add(_LINKING, f"{label}: service does not serve the node")
        if service is not None and service.service_level is not option.service_level:
            out.add(_LINKING, f"{label}: service level is {service.service_level.value}")
        if not shipment.lines:
            out.add(_LINKING, f"{label}: carries no units")
        seen: set[str] = set()
        for line in shipment.lines:
            cart_line = ctx.lines.get(line.line_id)
            if cart_line is None:
                out.add(_LINKING, f"{label}: unknown cart line {line.line_id!r}")
            elif cart_line.sku != line.sku:
                out.add(
                    _LINKING,
                    f"{label}: line {line.line_id} ships {line.sku}, the cart line is "
                    f"{cart_line.sku}",
                )
            if line.line_id in seen:
                out.add(_LINKING, f"{label}: line {line.line_id} appears twice")
            seen.add(line.line_id)
    for (node_id, day), count in slots.items():
        if count > 1:
            out.add(_LINKING, f"{count} packages leave {node_id} on {day}; at most one allowed")


def _family4_capacity(option: PromiseOption, ctx: _Context, out: _Sink) -> None:
    """4. Packages per (node, service, date) fit the service's remaining capacity."""
    packages: dict[tuple[str, str, dt.date], int] = defaultdict(int)
    for shipment in option.shipments:
        packages[shipment.node_id, shipment.carrier_service_id, shipment.ship_date] += 1
    for (node_id, service_id, day), count in packages.items():
        service = ctx.index.services.get(service_id)
        if service is None:
            continue  # family 3
        capacity = service.capacity_on(node_id, day)
        if capacity is not None and count > capacity:
            out.add(
                _CAPACITY,
                f"{count} packages via {service_id} at {node_id} on {day}, capacity {capacity}",
            )


def _family5_labour(option: PromiseOption, ctx: _Context, out: _Sink) -> None:
    """5. Pick seconds per (node, date) fit the node's remaining labour."""
    units: dict[tuple[str, dt.date], int] = defaultdict(int)
    for shipment in option.shipments:
        units[shipment.node_id, shipment.ship_date] += sum(x.quantity for x in shipment.lines)
    for (node_id, day), count in units.items():
        node = ctx.index.nodes.get(node_id)
        if node is None:
            continue  # family 3
        minutes = node.labour_on(day)
        if minutes is not None and count * node.pick_seconds > minutes * 60:
            out.add(
                _LABOUR,
                f"{count} units x {node.pick_seconds} s at {node_id} on {day} exceed "
                f"{minutes} labour minutes",
            )


def _family6_max_shipments(option: PromiseOption, ctx: _Context, out: _Sink) -> None:
    """6. No more shipments than the request (else the policy) allows."""
    limit = ctx.request.max_shipments
    if limit is None:
        if ctx.policy is None:
            return
        limit = ctx.policy.max_shipments
    if len(option.shipments) > limit:
        out.add(_MAX_SHIPMENTS, f"{len(option.shipments)} shipments exceed the limit {limit}")


def _family7_promise(option: PromiseOption, facts: list[_Facts], ctx: _Context, out: _Sink) -> None:
    """7. Dates, zone and distance recomputed; promised date is the latest, within deadline."""
    for i, (shipment, fact) in enumerate(zip(option.shipments, facts, strict=True)):
        label = _label(i, shipment)
        node, service = fact.node, fact.service
        if node is not None and service is not None:
            allowed = dispatch_dates(
                node, service, ctx.requested_at, earliest=ctx.earliest_at(node)
            )
            if shipment.ship_date not in allowed:
                out.add(_PROMISE, f"{label}: {shipment.ship_date} is not a dispatch date")
        if fact.distance_km is not None:
            if abs(fact.distance_km - shipment.distance_km) > DISTANCE_TOLERANCE_KM:
                out.add(
                    _PROMISE,
                    f"{label}: distance {shipment.distance_km} km, recomputed "
                    f"{fact.distance_km:.3f} km",
                )
            if shipment.zone != fact.zone:
                out.add(_PROMISE, f"{label}: zone {shipment.zone}, recomputed {fact.zone}")
            limit = None if service is None else service.max_distance_km
            if limit is not None and fact.distance_km > limit:
                out.add(
                    _PROMISE,
                    f"{label}: {fact.distance_km:.1f} km exceeds the service's {limit} km",
                )
        if fact.delivery is not None and shipment.delivery_date != fact.delivery:
            out.add(
                _PROMISE,
                f"{label}: delivery {shipment.delivery_date}, recomputed {fact.delivery}",
            )
    promised = option.promised_delivery_date
    if option.status is Status.UNFULFILLABLE:
        return  # accounting checks that it promises nothing
    if option.shipments:
        latest = max(s.delivery_date for s in option.shipments)
        if promised != latest:
            out.add(_PROMISE, f"promised {promised}, latest delivery is {latest}")
    elif promised is not None:
        out.add(_PROMISE, f"promised {promised} without shipments")
    deadline = ctx.order_date + dt.timedelta(days=LEVEL_DEADLINE_DAYS[option.service_level])
    candidates = [f.delivery for f in facts if f.delivery is not None]
    if promised is not None:
        candidates.append(promised)
    if candidates and max(candidates) > deadline:
        out.add(
            _PROMISE,
            f"delivery {max(candidates)} is after the {option.service_level.value} "
            f"deadline {deadline}",
        )


def _family8_margin(
    option: PromiseOption, ctx: _Context, margin: int, revenue: int, out: _Sink
) -> None:
    """8. Margin reaches the floor percentage of revenue."""
    floor = ctx.request.min_margin_pct
    if floor is None and ctx.policy is not None:
        floor = ctx.policy.min_margin_pct
    if not meets_margin_floor(margin, revenue, floor):
        out.add(_MARGIN, f"margin {margin} is below {floor}% of revenue {revenue}")


def _family0_status(option: PromiseOption, ctx: _Context, out: _Sink) -> None:
    """0. Status agrees with unfilled units and allow_partial; unfulfillable means nothing."""
    unfilled = sum(entry.quantity for entry in option.unfulfilled)
    status = option.status
    if status is Status.UNFULFILLABLE:
        # With allow_partial an option shipping nothing may still be called unfulfillable: it
        # carries exactly the information of a partial option with no shipments.
        if option.shipments:
            out.add(_ACCOUNTING, "unfulfillable option has shipments")
        if option.promised_delivery_date is not None:
            out.add(_ACCOUNTING, "unfulfillable option promises a date")
        if not option.unfulfilled:
            out.add(_ACCOUNTING, "unfulfillable option lists no unfulfilled lines")
    elif status is Status.PARTIAL:
        if not ctx.request.allow_partial:
            out.add(_ACCOUNTING, "partial option although the request does not allow partial")
        if unfilled == 0:
            out.add(_ACCOUNTING, "partial option lists no unfilled units")
    elif unfilled:
        out.add(_ACCOUNTING, f"status {status.value} with {unfilled} unfilled units")


def _family0_accounting(
    option: PromiseOption, facts: list[_Facts], ctx: _Context, out: _Sink
) -> tuple[int, int, int] | None:
    """0. Costs, weight, revenue, margin and split count; returns (cost, revenue, margin)."""
    for i, (shipment, fact) in enumerate(zip(option.shipments, facts, strict=True)):
        if fact.cost is not None and shipment.cost != fact.cost:
            out.add(
                _ACCOUNTING,
                f"{_label(i, shipment)}: cost {shipment.cost.model_dump()}, recomputed "
                f"{fact.cost.model_dump()}",
            )
        if fact.grams is not None and abs(shipment.weight_kg - fact.grams / 1000) > (
            _WEIGHT_TOLERANCE_KG
        ):
            out.add(
                _ACCOUNTING,
                f"{_label(i, shipment)}: weight {shipment.weight_kg} kg, actual "
                f"{fact.grams / 1000} kg",
            )
    unfulfillable = option.status is Status.UNFULFILLABLE
    if not unfulfillable and not _computable(facts):
        return None
    opportunity = sum(
        line.quantity * ctx.prices.price(shipment.node_id, line.sku)
        for shipment in option.shipments
        for line in shipment.lines
    )
    if option.opportunity_cost != opportunity:
        out.add(
            _ACCOUNTING, f"opportunity cost {option.opportunity_cost}, recomputed {opportunity}"
        )
    if unfulfillable:
        cost, revenue, margin = CostBreakdown(), 0, 0
    else:
        shipping = sum(f.cost.shipping for f in facts if f.cost is not None)
        handling = sum(f.cost.handling for f in facts if f.cost is not None)
        labour = sum(f.cost.labour for f in facts if f.cost is not None)
        cost = CostBreakdown(
            shipping=shipping, handling=handling, labour=labour, total=shipping + handling + labour
        )
        revenue = 0
        unit_costs = 0
        for shipment in option.shipments:
            for line in shipment.lines:
                revenue += line.quantity * ctx.lines[line.line_id].unit_price
                unit_costs += line.quantity * _unit_cost(ctx, shipment.node_id, line.sku)
        margin = revenue - unit_costs - cost.total
    if option.cost != cost:
        out.add(
            _ACCOUNTING, f"option cost {option.cost.model_dump()}, recomputed {cost.model_dump()}"
        )
    if option.revenue != revenue:
        out.add(_ACCOUNTING, f"revenue {option.revenue}, recomputed {revenue}")
    if option.margin != margin:
        out.add(_ACCOUNTING, f"margin {option.margin}, recomputed {margin}")
    split = 0 if unfulfillable else max(0, len(option.shipments) - 1)
    if option.split_count != split:
        out.add(_ACCOUNTING, f"split_count {option.split_count}, recomputed {split}")
    return cost.total, revenue, margin


def _check_option(
    option: PromiseOption, ctx: _Context
) -> tuple[list[Violation], int | None, int | None]:
    """Every family for one option; returns violations, objective and cost when computable."""
    out = _Sink(option.service_level)
    facts = [_facts(shipment, ctx) for shipment in option.shipments]
    _family0_status(option, ctx, out)
    _family1_demand(option, ctx, out)
    _family2_availability(option, ctx, out)
    _family3_linking(option, ctx, out)
    _family4_capacity(option, ctx, out)
    _family5_labour(option, ctx, out)
    _family6_max_shipments(option, ctx, out)
    _family7_promise(option, facts, ctx, out)
    money = _family0_accounting(option, facts, ctx, out)
    cost: int | None = None
    objective: int | None = None
    if money is not None:
        cost, revenue, margin = money
        _family8_margin(option, ctx, margin, revenue, out)
        weights = ctx.weights
        if weights is not None:
            objective = _objective(option, facts, ctx, weights)
            if option.objective != objective:
                out.add(_ACCOUNTING, f"objective {option.objective}, recomputed {objective}")
    return out.items, objective, cost


def _check_result(
    result: PromiseResult, request: PromiseRequest, ctx: _Context, out: _Sink
) -> None:
    """0. The result answers this request: ids, channel, instant, order date, option levels."""
    if result.cart_id != request.cart.cart_id:
        out.add(_ACCOUNTING, f"cart_id {result.cart_id!r} != request {request.cart.cart_id!r}")
    if result.channel != request.cart.channel:
        out.add(_ACCOUNTING, f"channel {result.channel!r} != request {request.cart.channel!r}")
    if ctx.policy is None:
        out.add(_ACCOUNTING, f"no channel policy for channel {request.cart.channel!r}")
    if request.requested_at is not None and result.requested_at != request.requested_at:
        out.add(
            _ACCOUNTING,
            f"requested_at {result.requested_at} != request {request.requested_at}",
        )
    if ctx.destination is not None:
        local = ctx.destination.local_date(ctx.requested_at)
        if result.order_date != local:
            out.add(_ACCOUNTING, f"order_date {result.order_date}, destination date is {local}")
    levels = [option.service_level for option in result.options]
    repeated = sorted({level.value for level in levels if levels.count(level) > 1})
    if repeated:
        out.add(_ACCOUNTING, f"service levels quoted more than once: {', '.join(repeated)}")
    if request.service_levels is not None:
        extra = sorted({level.value for level in levels} - set(request.service_levels))
        if extra:
            out.add(_ACCOUNTING, f"options for levels not requested: {', '.join(extra)}")
    if result.recommended is not None and result.recommended not in levels:
        out.add(_ACCOUNTING, f"recommended level {result.recommended.value} has no option")


def check(
    result: PromiseResult,
    request: PromiseRequest,
    snapshot: Snapshot,
    *,
    prices: StockPrices = NO_PRICES,
) -> CheckReport:
    """Recompute feasibility and cost of every option of ``result`` (docs/model.md).

    ``prices`` is the opportunity-cost table the answer was priced with.
    """
    out = _Sink(None)
    requested_at = result.requested_at
    if requested_at.tzinfo is None or requested_at.utcoffset() is None:
        out.add(_ACCOUNTING, "requested_at has no time zone; read as UTC")
        requested_at = requested_at.replace(tzinfo=dt.UTC)
    destination: ResolvedDestination | None = None
    try:
        destination = _resolve(request.destination)
    except PromiseError as exc:
        out.add(_ACCOUNTING, f"destination does not resolve: {exc.message}")
    ctx = _make_context(
        request,
        _index_for(snapshot),
        requested_at=requested_at,
        order_date=result.order_date,
        destination=destination,
        prices=prices,
    )
    _check_result(result, request, ctx, out)
    violations = list(out.items)
    objectives: dict[ServiceLevel, int] = {}
    costs: dict[ServiceLevel, int] = {}
    for option in result.options:
        found, objective, cost = _check_option(option, ctx)
        violations.extend(found)
        if objective is not None:
            objectives[option.service_level] = objective
        if cost is not None:
            costs[option.service_level] = cost
    if violations:
        logger.debug("answer for cart %s broke %d rules", result.cart_id, len(violations))
    return CheckReport(violations=tuple(violations), objectives=objectives, costs=costs)
