"""Re-sourcing open orders: ``POST /v1/reservations/reoptimise`` and its service.

The open holds made from promise answers (soft or confirmed, nothing shipped) are planned again
as one model (solver/resourcing.py) on the live stock with their own units given back, each
order limited to slots delivering by the date it was promised. When the plan is cheaper than the
current one by more than the threshold, every hold that changes is moved in one fenced
transaction of the authority (promise/stock/_resourcing_queries.py); a concurrent change to
those holds or to the stock they join aborts the move whole and the answer says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio.to_thread
from litestar import Router, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from pydantic import Field

from models import Frozen, PromiseOption, PromiseRequest
from promise.access.principal import Principal, Scope
from promise.access.rules import secured
from promise.stock._plans import aggregate as aggregate_lines
from promise.stock._resourcing_queries import (
    ConcurrentChangeError,
    HoldMove,
    MoveCheck,
    OpenOrder,
    ResourcingQueries,
    lines_of,
)
from promise.stock.backend import Key, RowOverlay, to_us
from promise.stock.holds import StockRules, solver_position
from promise.stock.routes import problem_responses
from promise.stock.schemas import Shortfall
from promise.stock.service import StockService
from promise.stock.snapshots import LiveSnapshot
from solver.prepared import PreparedNetwork
from solver.resourcing import HeldOrder, Replan, replan

T = TypeVar("T")

__all__ = [
    "MovedHold",
    "ReoptimiseAnswer",
    "ReoptimiseOutcome",
    "ReoptimiseRequest",
    "Reoptimiser",
    "reoptimise_reservations",
    "reoptimise_router",
]


class ReoptimiseRequest(Frozen):
    """How much cheaper a plan must be to move holds, and how long to search for it."""

    threshold_percent: float = Field(
        default=1.0, ge=0, le=100, description="Minimum saving, percent of the current cost."
    )
    threshold_cents: int = Field(
        default=0, ge=0, le=10**12, description="Minimum saving in minor units."
    )
    time_limit_ms: int = Field(default=2_000, ge=10, le=60_000)


class ReoptimiseOutcome(enum.StrEnum):
    """What a re-sourcing did (never a boolean)."""

    MOVED = "moved"  # a cheaper plan was found and the holds were moved
    UNCHANGED = "unchanged"  # no plan cheaper by more than the threshold
    NO_ORDERS = "no_orders"  # no open hold with a recorded order
    NO_PLAN = "no_plan"  # the solver found no complete plan in time
    SKIPPED = "skipped"  # a hold or the stock changed meanwhile; nothing moved


class MovedHold(Frozen):
    """One hold after the move: its new option and the dates it keeps."""

    reservation_id: str
    promised_delivery_date: dt.date
    option: PromiseOption
    requested_at: dt.datetime
    order_date: dt.date
    packages_before: int
    packages_after: int


class ReoptimiseAnswer(Frozen):
    """The outcome, the costs compared and the holds moved (empty unless ``moved``)."""

    outcome: ReoptimiseOutcome
    orders: int = Field(description="Open orders considered.")
    baseline_cost: int | None = None
    planned_cost: int | None = None
    required_saving: int | None = None
    moved: tuple[MovedHold, ...] = ()
    detail: str = ""
    shortfalls: tuple[Shortfall, ...] = ()


def _given_back(
    stock: StockService, live: LiveSnapshot, orders: Sequence[OpenOrder], now: int
) -> PreparedNetwork:
    """The live network with the units of ``orders`` given back (they are being re-sourced)."""
    rules = stock.rules(live)
    network = stock.live.current(live, live.generation)
    units: dict[Key, int] = {}
    for order in orders:
        for node, sku, quantity in lines_of(order.hold):
            units[node, sku] = units.get((node, sku), 0) + quantity
    overlays = stock.backend.overlays(sorted(units)).rows
    positions = []
    for key, quantity in units.items():
        tiers = rules.tiers(key, overlays[key], now)
        positions.append(
            solver_position(rules, dataclasses.replace(tiers, held=max(0, tiers.held - quantity)))
        )
    return network.with_inventory(network.inventory.replace(positions))


def _packages(option: PromiseOption) -> int:
    """Packages an option ships."""
    return len(option.shipments)


def _option_lines(option: PromiseOption) -> tuple[tuple[str, str, int], ...]:
    """An option's units per row, in first-seen order."""
    return aggregate_lines(
        [(s.node_id, line.sku, line.quantity) for s in option.shipments for line in s.lines]
    )


def _rule_check(rules: StockRules, channels: Mapping[Key, set[str]]) -> MoveCheck:
    """The hold rule for every row some moved holds join, judged inside the move."""

    def check(overlays: Mapping[Key, RowOverlay], at: int) -> list[Shortfall]:
        out: list[Shortfall] = []
        for key, overlay in overlays.items():
            tiers = rules.tiers(key, overlay, at)
            for channel in sorted(channels[key]):
                atp = rules.atp(rules.policies[channel], tiers)
                if tiers.held > atp:
                    out.append(
                        Shortfall(node_id=key[0], sku=key[1], requested=tiers.held, available=atp)
                    )
        return out

    return check


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call (the authority, the solver) off the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args))


class Reoptimiser:
    """Re-sources the open orders of the authority behind a stock service."""

    def __init__(self, stock: StockService) -> None:
        """Work on ``stock``'s authority, live snapshot and clock."""
        if not isinstance(stock.backend, ResourcingQueries):
            raise TypeError(f"{type(stock.backend).__name__} keeps no orders")
        self.stock = stock
        self.backend: ResourcingQueries = stock.backend

    async def run(
        self, request: ReoptimiseRequest, principal: Principal | None = None
    ) -> ReoptimiseAnswer:
        """Re-source the open orders (the caller's own unless it is an admin or internal)."""

        async def attempt(live: LiveSnapshot, _first: bool) -> ReoptimiseAnswer:
            return await self._attempt(live, request, principal)

        return await self.stock.judged(attempt)

    async def _attempt(
        self, live: LiveSnapshot, request: ReoptimiseRequest, principal: Principal | None
    ) -> ReoptimiseAnswer:
        """One judgement under ``live``: plan, compare, move."""
        at = self.stock.clock()
        now = to_us(at)
        owner = None if principal is None or principal.may(Scope.ADMIN) else principal.id
        found = await _in_thread(self.backend.open_orders, now)
        orders = [
            o
            for o in found
            if (owner is None or o.hold.principal == owner)
            and PromiseOption.model_validate_json(o.option).promised_delivery_date is not None
        ]
        plan, orders = await _in_thread(self._plan, live, orders, at, request)
        if not orders:
            return ReoptimiseAnswer(outcome=ReoptimiseOutcome.NO_ORDERS, orders=0)
        if plan.options is None or plan.planned_cost is None:
            return ReoptimiseAnswer(
                outcome=ReoptimiseOutcome.NO_PLAN,
                orders=len(orders),
                baseline_cost=plan.baseline_cost,
                detail=f"no complete plan ({plan.status})",
            )
        required = max(
            math.ceil(abs(plan.baseline_cost) * request.threshold_percent / 100),
            request.threshold_cents,
        )
        costs = {
            "orders": len(orders),
            "baseline_cost": plan.baseline_cost,
            "planned_cost": plan.planned_cost,
            "required_saving": required,
        }
        if plan.baseline_cost - plan.planned_cost <= required:
            return ReoptimiseAnswer(outcome=ReoptimiseOutcome.UNCHANGED, **costs)
        moves, moved, channels = self._moves(orders, plan, at)
        if not moves:
            return ReoptimiseAnswer(outcome=ReoptimiseOutcome.UNCHANGED, **costs)
        check = _rule_check(self.stock.rules(live), channels)
        try:
            await _in_thread(
                self.backend.move_holds,
                moves,
                check,
                self.stock.clock,
                live.generation,
                None if principal is None else principal.id,
            )
        except ConcurrentChangeError as exc:
            return ReoptimiseAnswer(
                outcome=ReoptimiseOutcome.SKIPPED,
                detail=f"skipped: concurrent change ({exc.reason}); nothing moved",
                shortfalls=exc.shortfalls,
                **costs,
            )
        return ReoptimiseAnswer(outcome=ReoptimiseOutcome.MOVED, moved=moved, **costs)

    def _plan(
        self,
        live: LiveSnapshot,
        orders: list[OpenOrder],
        at: dt.datetime,
        request: ReoptimiseRequest,
    ) -> tuple[Replan, list[OpenOrder]]:
        """The joint plan of the orders whose current plan can be priced (in a worker thread)."""
        now = to_us(at)
        while True:
            held = [
                HeldOrder(
                    PromiseRequest.model_validate_json(o.request),
                    PromiseOption.model_validate_json(o.option),
                )
                for o in orders
            ]
            if not held:
                return Replan((), 0, None, None, "empty"), orders
            plan = replan(
                held,
                _given_back(self.stock, live, orders, now),
                at=at,
                time_limit_s=request.time_limit_ms / 1000,
            )
            if not plan.unmapped:
                return plan, orders
            # An order whose slots are gone (a ship date passed) keeps its hold and its units.
            orders = [o for i, o in enumerate(orders) if i not in set(plan.unmapped)]

    def _moves(
        self, orders: Sequence[OpenOrder], plan: Replan, at: dt.datetime
    ) -> tuple[list[HoldMove], tuple[MovedHold, ...], dict[Key, set[str]]]:
        """The holds whose lines change, their answers, and the channels joining each row."""
        assert plan.options is not None
        moves: list[HoldMove] = []
        moved: list[MovedHold] = []
        channels: dict[Key, set[str]] = {}
        for order, option, order_date in zip(orders, plan.options, plan.order_dates, strict=True):
            before = lines_of(order.hold)
            after = _option_lines(option)
            if sorted(before) == sorted(after):
                continue
            old = PromiseOption.model_validate_json(order.option)
            assert old.promised_delivery_date is not None
            # The hold keeps the promised date; the option says when the new plan delivers.
            moves.append(HoldMove(order.hold.hold_id, before, after, option.model_dump_json()))
            for node, sku, _ in after:
                channels.setdefault((node, sku), set()).add(order.hold.channel)
            moved.append(
                MovedHold(
                    reservation_id=order.hold.hold_id,
                    promised_delivery_date=old.promised_delivery_date,
                    option=option,
                    requested_at=at,
                    order_date=order_date,
                    packages_before=_packages(old),
                    packages_after=_packages(option),
                )
            )
        return moves, tuple(moved), channels


@post(
    "/v1/reservations/reoptimise",
    status_code=200,
    summary="Re-source open orders",
    description=(
        "Plans the open holds made from promise answers again, jointly, keeping every promised "
        "delivery date, and moves the holds in one transaction when the plan is cheaper by more "
        "than the threshold. A concurrent change to those holds or their stock aborts the move "
        "(outcome skipped). Admins re-source every order, others their own."
    ),
    tags=["reservations"],
    responses=problem_responses(400, 413, 415, 422, 503),
    **secured(Scope.ADMIN, Scope.RESERVE),
)
async def reoptimise_reservations(
    data: JSONBody[ReoptimiseRequest],
    reoptimiser: NamedDependency[Reoptimiser],
    principal: NamedDependency[Principal],
) -> ReoptimiseAnswer:
    """Re-source the caller's (or, for admins, every) open order."""
    return await reoptimiser.run(data, principal)


def reoptimise_router(stock: StockService, *, max_body_bytes: int) -> Router:
    """The re-sourcing endpoint with its ``reoptimiser`` dependency."""
    reoptimiser = Reoptimiser(stock)
    return Router(
        path="/",
        route_handlers=[reoptimise_reservations],
        dependencies={"reoptimiser": Provide(lambda: reoptimiser, sync_to_thread=False)},
        request_max_body_size=max_body_bytes,
    )
