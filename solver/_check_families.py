"""The constraint families of the independent checker, one function each.

Each function judges one option against a ``Context`` and records what it finds in a
``Sink``; the numbering is that of DESIGN.md and docs/model.md (see ``solver.checker``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from models import CostBreakdown, PromiseOption, Shipment, Status, meets_margin_floor
from solver._check_context import (
    ACCOUNTING,
    AVAILABILITY,
    CAPACITY,
    DEMAND,
    LABOUR,
    LINKING,
    MARGIN,
    MAX_SHIPMENTS,
    PROMISE,
    Context,
    Facts,
    Sink,
    channel_atp,
    computable,
    shipped_by_line,
    unit_cost_at,
)
from solver.calendar import LEVEL_DEADLINE_DAYS, dispatch_dates

__all__ = [
    "DISTANCE_TOLERANCE_KM",
    "family0_accounting",
    "family0_status",
    "family1_demand",
    "family2_availability",
    "family3_linking",
    "family4_capacity",
    "family5_labour",
    "family6_max_shipments",
    "family7_promise",
    "family8_margin",
]

# Engines may round the reported distance for display; the zone is what must be exact.
DISTANCE_TOLERANCE_KM = 0.05
# weight_kg is a display figure: allow rounding to the gram.
WEIGHT_TOLERANCE_KG = 0.0005


def label_of(index: int, shipment: Shipment) -> str:
    """Short name of a shipment for messages."""
    return (
        f"shipment {index} ({shipment.node_id}/{shipment.carrier_service_id} {shipment.ship_date})"
    )


def family1_demand(option: PromiseOption, ctx: Context, out: Sink) -> None:
    """1. Every unit of a line is shipped or listed unfilled, never both, never more."""
    unfilled: dict[str, int] = defaultdict(int)
    for entry in option.unfulfilled:
        line = ctx.lines.get(entry.line_id)
        if line is None:
            out.add(ACCOUNTING, f"unfulfilled entry names unknown line {entry.line_id!r}")
        elif line.sku != entry.sku:
            out.add(
                ACCOUNTING,
                f"unfulfilled entry for line {entry.line_id} says sku {entry.sku}, "
                f"the cart says {line.sku}",
            )
        unfilled[entry.line_id] += entry.quantity
    shipped = shipped_by_line(option)
    for line in ctx.request.cart.lines:
        short = unfilled[line.line_id]
        if short > line.quantity:
            out.add(
                DEMAND, f"line {line.line_id}: {short} unfilled units exceed its {line.quantity}"
            )
        elif option.status is not Status.UNFULFILLABLE:
            sent = shipped[line.line_id]
            if sent + short != line.quantity:
                out.add(
                    DEMAND,
                    f"line {line.line_id}: {sent} shipped + {short} unfilled "
                    f"!= quantity {line.quantity}",
                )


def family2_availability(option: PromiseOption, ctx: Context, out: Sink) -> None:
    """2. Cumulative units from (n, k) by each ship date stay within ATP(c, n, k, d)."""
    if ctx.policy is None:
        return
    by_date: dict[tuple[str, str], dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    for shipment in option.shipments:
        for line in shipment.lines:
            by_date[shipment.node_id, line.sku][shipment.ship_date] += line.quantity
    for (node_id, sku), per_day in by_date.items():
        node = ctx.ref.nodes.get(node_id)
        if node is None:
            continue  # family 3 reports the unknown node
        if sku not in ctx.ref.items:
            out.add(AVAILABILITY, f"sku {sku} is not in the catalog but ships from {node_id}")
            continue
        row = ctx.ref.row(node_id, sku)
        cumulative = 0
        for day in sorted(per_day):
            cumulative += per_day[day]
            atp = channel_atp(ctx.policy, node, row, day)
            if cumulative > atp:
                out.add(
                    AVAILABILITY,
                    f"{cumulative} units of {sku} from {node_id} by {day} exceed "
                    f"ATP {atp} for channel {ctx.policy.channel}",
                )
                break


def family3_linking(option: PromiseOption, ctx: Context, out: Sink) -> None:
    """3. Shipments reference real nodes, services and cart lines; one package per (n, d)."""
    slots: dict[tuple[str, dt.date], int] = defaultdict(int)
    for i, shipment in enumerate(option.shipments):
        label = label_of(i, shipment)
        slots[shipment.node_id, shipment.ship_date] += 1
        node = ctx.ref.nodes.get(shipment.node_id)
        service = ctx.ref.services.get(shipment.carrier_service_id)
        if node is None:
            out.add(LINKING, f"{label}: unknown node")
        if service is None:
            out.add(LINKING, f"{label}: unknown carrier service")
        elif node is not None and not service.serves(node.node_id):
            out.add(LINKING, f"{label}: service does not serve the node")
        if service is not None and service.service_level is not option.service_level:
            out.add(LINKING, f"{label}: service level is {service.service_level.value}")
        if not shipment.lines:
            out.add(LINKING, f"{label}: carries no units")
        seen: set[str] = set()
        for line in shipment.lines:
            cart_line = ctx.lines.get(line.line_id)
            if cart_line is None:
                out.add(LINKING, f"{label}: unknown cart line {line.line_id!r}")
            elif cart_line.sku != line.sku:
                out.add(
                    LINKING,
                    f"{label}: line {line.line_id} ships {line.sku}, the cart line is "
                    f"{cart_line.sku}",
                )
            if line.line_id in seen:
                out.add(LINKING, f"{label}: line {line.line_id} appears twice")
            seen.add(line.line_id)
    for (node_id, day), count in slots.items():
        if count > 1:
            out.add(LINKING, f"{count} packages leave {node_id} on {day}; at most one allowed")


def family4_capacity(option: PromiseOption, ctx: Context, out: Sink) -> None:
    """4. Packages per (node, service, date) fit the service's remaining capacity."""
    packages: dict[tuple[str, str, dt.date], int] = defaultdict(int)
    for shipment in option.shipments:
        packages[shipment.node_id, shipment.carrier_service_id, shipment.ship_date] += 1
    for (node_id, service_id, day), count in packages.items():
        service = ctx.ref.services.get(service_id)
        if service is None:
            continue  # family 3
        capacity = service.capacity_on(node_id, day)
        if capacity is not None and count > capacity:
            out.add(
                CAPACITY,
                f"{count} packages via {service_id} at {node_id} on {day}, capacity {capacity}",
            )


def family5_labour(option: PromiseOption, ctx: Context, out: Sink) -> None:
    """5. Pick seconds per (node, date) fit the node's remaining labour."""
    units: dict[tuple[str, dt.date], int] = defaultdict(int)
    for shipment in option.shipments:
        units[shipment.node_id, shipment.ship_date] += sum(x.quantity for x in shipment.lines)
    for (node_id, day), count in units.items():
        node = ctx.ref.nodes.get(node_id)
        if node is None:
            continue  # family 3
        minutes = node.labour_on(day)
        if minutes is not None and count * node.pick_seconds > minutes * 60:
            out.add(
                LABOUR,
                f"{count} units x {node.pick_seconds} s at {node_id} on {day} exceed "
                f"{minutes} labour minutes",
            )


def family6_max_shipments(option: PromiseOption, ctx: Context, out: Sink) -> None:
    """6. No more shipments than the request (else the policy) allows."""
    limit = ctx.request.max_shipments
    if limit is None:
        if ctx.policy is None:
            return
        limit = ctx.policy.max_shipments
    if len(option.shipments) > limit:
        out.add(MAX_SHIPMENTS, f"{len(option.shipments)} shipments exceed the limit {limit}")


def family7_promise(option: PromiseOption, facts: list[Facts], ctx: Context, out: Sink) -> None:
    """7. Dates, zone and distance recomputed; promised date is the latest, within deadline."""
    for i, (shipment, fact) in enumerate(zip(option.shipments, facts, strict=True)):
        label = label_of(i, shipment)
        node, service = fact.node, fact.service
        if node is not None and service is not None:
            allowed = dispatch_dates(
                node, service, ctx.requested_at, ctx.ref.holidays, earliest=ctx.earliest_at(node)
            )
            if shipment.ship_date not in allowed:
                out.add(PROMISE, f"{label}: {shipment.ship_date} is not a dispatch date")
        if fact.distance_km is not None:
            if abs(fact.distance_km - shipment.distance_km) > DISTANCE_TOLERANCE_KM:
                out.add(
                    PROMISE,
                    f"{label}: distance {shipment.distance_km} km, recomputed "
                    f"{fact.distance_km:.3f} km",
                )
            if shipment.zone != fact.zone:
                out.add(PROMISE, f"{label}: zone {shipment.zone}, recomputed {fact.zone}")
            limit = None if service is None else service.max_distance_km
            if limit is not None and fact.distance_km > limit:
                out.add(
                    PROMISE,
                    f"{label}: {fact.distance_km:.1f} km exceeds the service's {limit} km",
                )
        if fact.delivery is not None and shipment.delivery_date != fact.delivery:
            out.add(
                PROMISE,
                f"{label}: delivery {shipment.delivery_date}, recomputed {fact.delivery}",
            )
    promised = option.promised_delivery_date
    if option.status is Status.UNFULFILLABLE:
        return  # accounting checks that it promises nothing
    if option.shipments:
        latest = max(s.delivery_date for s in option.shipments)
        if promised != latest:
            out.add(PROMISE, f"promised {promised}, latest delivery is {latest}")
    elif promised is not None:
        out.add(PROMISE, f"promised {promised} without shipments")
    deadline = ctx.order_date + dt.timedelta(days=LEVEL_DEADLINE_DAYS[option.service_level])
    candidates = [f.delivery for f in facts if f.delivery is not None]
    if promised is not None:
        candidates.append(promised)
    if candidates and max(candidates) > deadline:
        out.add(
            PROMISE,
            f"delivery {max(candidates)} is after the {option.service_level.value} "
            f"deadline {deadline}",
        )


def family8_margin(
    option: PromiseOption, ctx: Context, margin: int, revenue: int, out: Sink
) -> None:
    """8. Margin reaches the floor percentage of revenue."""
    floor = ctx.request.min_margin_pct
    if floor is None and ctx.policy is not None:
        floor = ctx.policy.min_margin_pct
    if not meets_margin_floor(margin, revenue, floor):
        out.add(MARGIN, f"margin {margin} is below {floor}% of revenue {revenue}")


def family0_status(option: PromiseOption, ctx: Context, out: Sink) -> None:
    """0. Status agrees with unfilled units and allow_partial; unfulfillable means nothing."""
    unfilled = sum(entry.quantity for entry in option.unfulfilled)
    status = option.status
    if status is Status.UNFULFILLABLE:
        # With allow_partial an option shipping nothing may still be called unfulfillable: it
        # carries exactly the information of a partial option with no shipments.
        if option.shipments:
            out.add(ACCOUNTING, "unfulfillable option has shipments")
        if option.promised_delivery_date is not None:
            out.add(ACCOUNTING, "unfulfillable option promises a date")
        if not option.unfulfilled:
            out.add(ACCOUNTING, "unfulfillable option lists no unfulfilled lines")
    elif status is Status.PARTIAL:
        if not ctx.request.allow_partial:
            out.add(ACCOUNTING, "partial option although the request does not allow partial")
        if unfilled == 0:
            out.add(ACCOUNTING, "partial option lists no unfilled units")
    elif unfilled:
        out.add(ACCOUNTING, f"status {status.value} with {unfilled} unfilled units")


def family0_accounting(
    option: PromiseOption, facts: list[Facts], ctx: Context, out: Sink
) -> tuple[int, int, int] | None:
    """0. Costs, weight, revenue, margin and split count; returns (cost, revenue, margin)."""
    for i, (shipment, fact) in enumerate(zip(option.shipments, facts, strict=True)):
        if fact.cost is not None and shipment.cost != fact.cost:
            out.add(
                ACCOUNTING,
                f"{label_of(i, shipment)}: cost {shipment.cost.model_dump()}, recomputed "
                f"{fact.cost.model_dump()}",
            )
        if fact.grams is not None and abs(shipment.weight_kg - fact.grams / 1000) > (
            WEIGHT_TOLERANCE_KG
        ):
            out.add(
                ACCOUNTING,
                f"{label_of(i, shipment)}: weight {shipment.weight_kg} kg, actual "
                f"{fact.grams / 1000} kg",
            )
    unfulfillable = option.status is Status.UNFULFILLABLE
    if not unfulfillable and not computable(facts):
        return None
    opportunity = sum(
        line.quantity * ctx.prices.price(shipment.node_id, line.sku)
        for shipment in option.shipments
        for line in shipment.lines
    )
    if option.opportunity_cost != opportunity:
        out.add(ACCOUNTING, f"opportunity cost {option.opportunity_cost}, recomputed {opportunity}")
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
                unit_costs += line.quantity * unit_cost_at(ctx, shipment.node_id, line.sku)
        margin = revenue - unit_costs - cost.total
    if option.cost != cost:
        out.add(
            ACCOUNTING, f"option cost {option.cost.model_dump()}, recomputed {cost.model_dump()}"
        )
    if option.revenue != revenue:
        out.add(ACCOUNTING, f"revenue {option.revenue}, recomputed {revenue}")
    if option.margin != margin:
        out.add(ACCOUNTING, f"margin {option.margin}, recomputed {margin}")
    split = 0 if unfulfillable else max(0, len(option.shipments) - 1)
    if option.split_count != split:
        out.add(ACCOUNTING, f"split_count {option.split_count}, recomputed {split}")
    return cost.total, revenue, margin
