"""A day of orders in arrival order on depleting stock, and its clairvoyant plan.

Each order is answered at its level against the network as the earlier orders left it: the
units it ships leave ``on_hand``, its packages use carrier capacity on their (node, service,
date) and its picks use the node's labour on the ship date. A policy is an engine, optionally
with the opportunity cost of stock priced once at the start of the day (``fixed``) or again every
``every`` orders from what is left of the day's forecast (``repriced``). Every answer is checked
by the independent checker against the state it was made on.

The day's cost is the contract objective of docs/model.md without its unfilled and opportunity
terms (what the per-order engine minimises in money and penalties); unfilled units are counted
apart. The clairvoyant plan solves every order of the day at once (solver/joint.py) on the
day's starting state: the best any policy could have done knowing the day in advance.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
from collections.abc import Callable, Sequence

import numpy as np

from models import (
    NO_PRICES,
    ChannelPolicy,
    Engine,
    InTransitLot,
    InventoryPosition,
    NodeKind,
    PromiseOption,
    PromiseRequest,
    PromiseResult,
    ServiceLevel,
    Snapshot,
    StockPrices,
    WeightOverrides,
)
from solver import SolveParams, prepare, solve
from solver.basket_pricing import BasketForecast, price_baskets
from solver.calendar import HolidayCalendar
from solver.checker import CheckReport, Reference, check, objective_of
from solver.joint import JointPlan, plan_jointly
from solver.pricing import Forecast, price_stock

__all__ = ["Day", "DayPolicy", "DayResult", "Observer", "clairvoyant", "run_day"]


@dataclasses.dataclass(frozen=True, slots=True)
class Day:
    """A network at the start of a day, its orders in arrival order and its forecast."""

    name: str
    snapshot: Snapshot
    orders: tuple[PromiseRequest, ...]
    level: ServiceLevel
    forecast: Forecast  # expected demand of the whole day by region × SKU
    baskets: BasketForecast  # the same demand as orders: region × set of SKUs

    @property
    def units(self) -> int:
        """Units ordered over the day."""
        return sum(line.quantity for order in self.orders for line in order.cart.lines)


@dataclasses.dataclass(frozen=True, slots=True)
class DayPolicy:
    """How each order is answered: an engine, and whether and how often stock is priced."""

    name: str
    engine: Engine = Engine.MIP
    pricing: str = "none"  # none | fixed | repriced
    lp: str = "baskets"  # units (solver/pricing.py) | baskets (solver/basket_pricing.py)
    every: int = 100  # orders between re-pricings (repriced)
    nearest: int = 8  # pricing LP: cheapest stocking nodes per region
    units_per_package: float = 1.0  # units LP: units sharing one package's fixed cost
    baskets: int = 400  # baskets LP: frequent multi-SKU baskets kept whole
    time_budget_ms: int = 200
    # The opportunity weight each request asks for (None: the channel policy's).
    opportunity: float | None = None

    def __post_init__(self) -> None:
        """Pricing names a known mode and re-prices at least every order."""
        if self.pricing not in ("none", "fixed", "repriced"):
            raise ValueError(f"unknown pricing mode {self.pricing!r}")
        if self.lp not in ("units", "baskets"):
            raise ValueError(f"unknown pricing LP {self.lp!r}")
        if self.every < 1:
            raise ValueError("every must be at least 1")


@dataclasses.dataclass(frozen=True, slots=True)
class DayResult:
    """What a policy did to a day."""

    day: str
    policy: str
    orders: int
    cost: int  # Σ contract objective without unfilled and opportunity terms, cents
    fulfilment: int  # Σ shipping + handling + labour, cents
    packages: int
    shipped_orders: int  # orders with at least one package
    split_orders: int  # orders shipped in more than one package
    units: int
    unfilled: int
    violations: int  # answers the independent checker refused
    solve_ms: tuple[float, ...]
    pricing_runs: int
    pricing_s: float
    answers: tuple[PromiseOption, ...]  # the option each order got, in order

    @property
    def split_rate(self) -> float:
        """Share of shipped orders that ship in more than one package."""
        return self.split_orders / self.shipped_orders if self.shipped_orders else 0.0

    def as_dict(self) -> dict[str, object]:
        """The figures as plain JSON values."""
        ms = np.array(self.solve_ms or (0.0,))
        return {
            "policy": self.policy,
            "orders": self.orders,
            "cost": self.cost,
            "cost_per_order": self.cost / self.orders if self.orders else 0.0,
            "fulfilment": self.fulfilment,
            "packages": self.packages,
            "split_rate": self.split_rate,
            "units": self.units,
            "unfilled": self.unfilled,
            "violations": self.violations,
            "solve_p50_ms": float(np.median(ms)),
            "solve_p99_ms": float(np.percentile(ms, 99)),
            "pricing_runs": self.pricing_runs,
            "pricing_s": self.pricing_s,
        }


class _State:
    """The network as the orders so far left it: stock, carrier capacity and labour."""

    def __init__(self, snapshot: Snapshot) -> None:
        """Start from ``snapshot``."""
        self.snapshot = snapshot
        self.rows = {(row.node_id, row.sku): row for row in snapshot.inventory}
        self.nodes = {node.node_id: node for node in snapshot.nodes}
        self.services = {service.service_id: service for service in snapshot.services}
        # Labour is tracked in seconds: minutes are floored only when written to a node.
        self.labour_s: dict[tuple[str, dt.date], int] = {}

    def take(self, option: PromiseOption, policy: ChannelPolicy) -> None:
        """Remove what ``option`` ships and the capacity and labour it uses."""
        if not option.shipments:
            return
        changed_nodes: set[str] = set()
        changed_services: set[str] = set()
        for shipment in option.shipments:
            units = 0
            kind = self.nodes[shipment.node_id].kind
            for line in shipment.lines:
                key = (shipment.node_id, line.sku)
                self.rows[key] = _taken(self.rows[key], line.quantity, policy, kind)
                units += line.quantity
            service = self.services[shipment.carrier_service_id]
            left = service.capacity_on(shipment.node_id, shipment.ship_date)
            if left is not None:
                by_node = dict(service.remaining_capacity)
                by_day = dict(by_node.get(shipment.node_id, {}))
                by_day[shipment.ship_date] = left - 1
                by_node[shipment.node_id] = by_day
                self.services[service.service_id] = service.model_copy(
                    update={"remaining_capacity": by_node}
                )
                changed_services.add(service.service_id)
            node = self.nodes[shipment.node_id]
            minutes = node.labour_on(shipment.ship_date)
            if minutes is not None and node.pick_seconds > 0:
                key_day = (node.node_id, shipment.ship_date)
                seconds = self.labour_s.get(key_day, minutes * 60) - units * node.pick_seconds
                self.labour_s[key_day] = seconds
                labour = {**node.labour_minutes, shipment.ship_date: max(0, seconds) // 60}
                self.nodes[node.node_id] = node.model_copy(update={"labour_minutes": labour})
                changed_nodes.add(node.node_id)
        update: dict[str, object] = {"inventory": tuple(self.rows.values())}
        if changed_nodes:
            update["nodes"] = tuple(self.nodes[n.node_id] for n in self.snapshot.nodes)
        if changed_services:
            update["services"] = tuple(self.services[s.service_id] for s in self.snapshot.services)
        self.snapshot = self.snapshot.model_copy(update=update)


def _taken(
    row: InventoryPosition, units: int, policy: ChannelPolicy, kind: NodeKind
) -> InventoryPosition:
    """``row`` once ``units`` shipped: from the free units on hand, then the earliest lots.

    The authority folds a hold the same way (promise/stock/holds.py): units beyond what is
    free on hand came from in-transit lots, so the lots shrink until the channel's share of
    them has dropped by those units.
    """
    buffer = policy.buffer_units(kind, row.on_hand)
    free = max(0, row.on_hand - row.reserved - row.safety_stock - buffer)
    from_hand = min(units, free)
    rest = units - from_hand
    lots = sorted(row.in_transit, key=lambda lot: lot.eta)
    total = sum(lot.quantity for lot in lots)
    remove = 0
    target = policy.in_transit_units(total) - rest
    while remove < total and policy.in_transit_units(total - remove) > target:
        remove += 1
    kept: list[InTransitLot] = []
    for lot in lots:
        take = min(remove, lot.quantity)
        remove -= take
        if lot.quantity > take:
            kept.append(lot.model_copy(update={"quantity": lot.quantity - take}))
    return row.model_copy(update={"on_hand": row.on_hand - from_hand, "in_transit": tuple(kept)})


def _day_cost(
    option: PromiseOption, request: PromiseRequest, result: PromiseResult, reference: Reference
) -> tuple[int, int]:
    """The option's contract objective without unfilled and opportunity terms; unfilled units.

    The checker's objective without a price table is the objective without the opportunity
    term, exactly; the unfilled term is the request's weight times the unfilled units.
    """
    unfilled = sum(entry.quantity for entry in option.unfulfilled)
    objective = objective_of(
        option,
        request,
        reference,
        requested_at=result.requested_at,
        order_date=result.order_date,
    )
    policy = reference.snapshot.policy(request.cart.channel)
    assert policy is not None  # the request was answered, so its channel exists
    weights = policy.weights if request.weights is None else request.weights.apply(policy.weights)
    return objective - weights.unfilled_per_unit * unfilled, unfilled


Observer = Callable[[int, PromiseResult, CheckReport], None]


def run_day(day: Day, policy: DayPolicy, *, observe: Observer | None = None) -> DayResult:
    """Answer the day's orders in arrival order under ``policy`` on depleting stock.

    ``observe`` sees each order's position, answer and checker report as they come.
    """
    state = _State(day.snapshot)
    # Each order sees a new network (stock, capacity and labour taken): it is prepared anew,
    # and only the holidays, which no order changes, are kept for the whole day.
    holidays = HolidayCalendar()
    params = SolveParams(engine=policy.engine, time_budget_ms=policy.time_budget_ms)
    prices: StockPrices = NO_PRICES
    total = len(day.orders)
    cost = fulfilment = packages = shipped = split = units = unfilled = violations = runs = 0
    pricing_s = 0.0
    solve_ms: list[float] = []
    answers: list[PromiseOption] = []
    channel = day.orders[0].cart.channel if day.orders else ""
    for t, order in enumerate(day.orders):
        request = order
        network = prepare(state.snapshot, holidays=holidays)
        reference = Reference.of(state.snapshot, holidays=holidays)
        due = policy.pricing == "fixed" and t == 0
        due |= policy.pricing == "repriced" and t % policy.every == 0
        if due:
            left = (total - t) / total
            # The two LPs differ in their forecast and one knob; the rest is passed once.
            if policy.lp == "baskets":
                price = functools.partial(
                    price_baskets, forecast=day.baskets.scaled(left), baskets=policy.baskets
                )
            else:
                price = functools.partial(
                    price_stock,
                    forecast=day.forecast.scaled(left),
                    units_per_package=policy.units_per_package,
                )
            run = price(
                network, channel=channel, level=day.level, nearest=policy.nearest, version=runs + 1
            )
            prices, runs, pricing_s = run.prices, runs + 1, pricing_s + run.seconds
        if policy.opportunity is not None:
            # The weight goes with the request, as a caller overrides the channel's.
            weights = (order.weights or WeightOverrides()).model_copy(
                update={"opportunity": policy.opportunity}
            )
            request = order.model_copy(update={"weights": weights})
        started = time.perf_counter()
        result = solve(request, network, params=params, prices=prices)
        solve_ms.append((time.perf_counter() - started) * 1000.0)
        report = check(result, request, reference, prices=prices)
        violations += not report.ok
        if observe is not None:
            observe(t, result, report)
        option = result.options[0]
        order_cost, order_unfilled = _day_cost(option, request, result, reference)
        cost += order_cost
        unfilled += order_unfilled
        fulfilment += option.cost.total
        packages += len(option.shipments)
        shipped += len(option.shipments) > 0
        split += len(option.shipments) > 1
        units += sum(line.quantity for s in option.shipments for line in s.lines)
        answers.append(option)
        policy_of = state.snapshot.policy(request.cart.channel)
        assert policy_of is not None  # the request was answered, so its channel exists
        state.take(option, policy_of)
    return DayResult(
        day=day.name,
        policy=policy.name,
        orders=total,
        cost=cost,
        fulfilment=fulfilment,
        packages=packages,
        shipped_orders=shipped,
        split_orders=split,
        units=units,
        unfilled=unfilled,
        violations=violations,
        solve_ms=tuple(solve_ms),
        pricing_runs=runs,
        pricing_s=pricing_s,
        answers=tuple(answers),
    )


def clairvoyant(
    day: Day,
    *,
    time_limit_s: float,
    hints: Sequence[Sequence[PromiseOption]] = (),
    engine: str = "scip",
    strengthen: bool = True,
) -> JointPlan:
    """Every order of ``day`` solved at once on its starting state (solver/joint.py).

    ``hints`` are the options of sequential runs (one per order, in order): each run is
    feasible for the joint model, so the plan is never worse than the best of them. ``engine``
    and ``strengthen`` are those of ``solver.joint.solve_joint``.
    """
    return plan_jointly(
        day.orders,
        day.snapshot,
        day.level,
        time_limit_s=time_limit_s,
        hints=hints,
        engine=engine,
        strengthen=strengthen,
    )
