"""Independent solution checker: recompute feasibility and cost of any answer from domain types.

The checker shares no code with the engines beyond the calendar and geography rules
(``solver.calendar``, ``solver.geo``); everything else is recomputed here from
``docs/model.md``, so a bug in the MIP or a greedy baseline shows up as a violation. The
lookups live in ``solver._check_context`` and the families in ``solver._check_families``.

``check(result, request, snapshot)`` builds the lookups for one call; to check many answers
on one snapshot, build a ``Reference`` once and pass it instead of the snapshot.

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
import logging

from models import (
    NO_PRICES,
    PromiseOption,
    PromiseRequest,
    PromiseResult,
    ServiceLevel,
    Snapshot,
    Status,
    StockPrices,
)
from solver._check_context import (
    ACCOUNTING,
    Context,
    Reference,
    Sink,
    Violation,
    computable,
    facts_of,
    make_context,
    recomputed_objective,
)
from solver._check_families import (
    DISTANCE_TOLERANCE_KM,
    family0_accounting,
    family0_status,
    family1_demand,
    family2_availability,
    family3_linking,
    family4_capacity,
    family5_labour,
    family6_max_shipments,
    family7_promise,
    family8_margin,
)
from solver.errors import PromiseError, UnknownChannelError
from solver.geo import ResolvedDestination

__all__ = [
    "DISTANCE_TOLERANCE_KM",
    "CheckReport",
    "Reference",
    "SolutionCheckError",
    "Violation",
    "check",
    "fulfilment_cost",
    "objective_of",
]

logger = logging.getLogger(__name__)


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


def _reference(snapshot: Snapshot | Reference) -> Reference:
    """The lookups of ``snapshot``: a reference as given, else built for this one call."""
    return snapshot if isinstance(snapshot, Reference) else Reference.of(snapshot)


def objective_of(
    option: PromiseOption,
    request: PromiseRequest,
    snapshot: Snapshot | Reference,
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
    reference = _reference(snapshot)
    ctx = make_context(
        request,
        reference,
        requested_at=requested_at,
        order_date=order_date,
        destination=reference.resolve(request.destination),
        prices=prices,
    )
    weights = ctx.weights
    if weights is None:
        raise UnknownChannelError(request.cart.channel)
    facts = [facts_of(shipment, ctx) for shipment in option.shipments]
    if option.status is not Status.UNFULFILLABLE and not computable(facts):
        raise ValueError(
            f"{option.service_level.value} option references unknown nodes, services, "
            "cart lines or SKUs; its objective is undefined"
        )
    return recomputed_objective(option, facts, ctx, weights)


def fulfilment_cost(option: PromiseOption) -> int:
    """Fulfilment cost of ``option`` summed from its shipments' cost components."""
    return sum(s.cost.shipping + s.cost.handling + s.cost.labour for s in option.shipments)


def _check_option(
    option: PromiseOption, ctx: Context
) -> tuple[list[Violation], int | None, int | None]:
    """Every family for one option; returns violations, objective and cost when computable."""
    out = Sink(option.service_level)
    facts = [facts_of(shipment, ctx) for shipment in option.shipments]
    family0_status(option, ctx, out)
    family1_demand(option, ctx, out)
    family2_availability(option, ctx, out)
    family3_linking(option, ctx, out)
    family4_capacity(option, ctx, out)
    family5_labour(option, ctx, out)
    family6_max_shipments(option, ctx, out)
    family7_promise(option, facts, ctx, out)
    money = family0_accounting(option, facts, ctx, out)
    cost: int | None = None
    objective: int | None = None
    if money is not None:
        cost, revenue, margin = money
        family8_margin(option, ctx, margin, revenue, out)
        weights = ctx.weights
        if weights is not None:
            objective = recomputed_objective(option, facts, ctx, weights)
            if option.objective != objective:
                out.add(ACCOUNTING, f"objective {option.objective}, recomputed {objective}")
    return out.items, objective, cost


def _check_result(result: PromiseResult, request: PromiseRequest, ctx: Context, out: Sink) -> None:
    """0. The result answers this request: ids, channel, instant, order date, option levels."""
    if result.cart_id != request.cart.cart_id:
        out.add(ACCOUNTING, f"cart_id {result.cart_id!r} != request {request.cart.cart_id!r}")
    if result.channel != request.cart.channel:
        out.add(ACCOUNTING, f"channel {result.channel!r} != request {request.cart.channel!r}")
    if ctx.policy is None:
        out.add(ACCOUNTING, f"no channel policy for channel {request.cart.channel!r}")
    if request.requested_at is not None and result.requested_at != request.requested_at:
        out.add(
            ACCOUNTING,
            f"requested_at {result.requested_at} != request {request.requested_at}",
        )
    if ctx.destination is not None:
        local = ctx.destination.local_date(ctx.requested_at)
        if result.order_date != local:
            out.add(ACCOUNTING, f"order_date {result.order_date}, destination date is {local}")
    levels = [option.service_level for option in result.options]
    repeated = sorted({level.value for level in levels if levels.count(level) > 1})
    if repeated:
        out.add(ACCOUNTING, f"service levels quoted more than once: {', '.join(repeated)}")
    if request.service_levels is not None:
        extra = sorted({level.value for level in levels} - set(request.service_levels))
        if extra:
            out.add(ACCOUNTING, f"options for levels not requested: {', '.join(extra)}")
    if result.recommended is not None and result.recommended not in levels:
        out.add(ACCOUNTING, f"recommended level {result.recommended.value} has no option")


def check(
    result: PromiseResult,
    request: PromiseRequest,
    snapshot: Snapshot | Reference,
    *,
    prices: StockPrices = NO_PRICES,
) -> CheckReport:
    """Recompute feasibility and cost of every option of ``result`` (docs/model.md).

    ``snapshot`` is the snapshot the answer was made on, or a ``Reference`` built from it;
    ``prices`` is the opportunity-cost table the answer was priced with.
    """
    out = Sink(None)
    requested_at = result.requested_at
    if requested_at.tzinfo is None or requested_at.utcoffset() is None:
        out.add(ACCOUNTING, "requested_at has no time zone; read as UTC")
        requested_at = requested_at.replace(tzinfo=dt.UTC)
    reference = _reference(snapshot)
    destination: ResolvedDestination | None = None
    try:
        destination = reference.resolve(request.destination)
    except PromiseError as exc:
        out.add(ACCOUNTING, f"destination does not resolve: {exc.message}")
    ctx = make_context(
        request,
        reference,
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
