"""The one entry point: ``solve(request, snapshot, *, params=None) -> PromiseResult``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import numpy as np
import numpy.typing as npt

from models import (
    Engine,
    PromiseOption,
    PromiseRequest,
    PromiseResult,
    ServiceLevel,
    Snapshot,
    SolverStats,
    Status,
)
from solver.answer import build_option
from solver.costs import Coefficients, coefficients, evaluate
from solver.greedy import BASELINES, allocation, greedy_picks
from solver.index import index_of
from solver.inventory import Inventory
from solver.mip import solve_mip
from solver.problem import CartContext, Problem, build_context, build_problem, prefilter

__all__ = ["SolveParams", "solve"]

IntArray = npt.NDArray[np.int64]
LEVEL_ORDER: tuple[ServiceLevel, ...] = tuple(ServiceLevel)
# Kept back from a level's share for turning the allocation into the answer.
EXTRACT_RESERVE_S = 0.0005
# Below this a search cannot even load its hint; the greedy answer is returned instead.
MIN_SEARCH_S = 0.001


@dataclasses.dataclass(frozen=True, slots=True)
class SolveParams:
    """Options of a solve; the request's own ``time_budget_ms`` wins over ``time_budget_ms``."""

    engine: Engine = Engine.MIP
    time_budget_ms: int = 50
    exact: bool = False  # switch the candidate pre-filter off
    now: dt.datetime | None = None  # the clock for requests without requested_at
    workers: int = 1  # one CP-SAT worker is fastest for these small models on 2 cores
    seed: int = 0
    per_line: int = 3  # pre-filter: cheapest nodes kept per line
    whole_cart: int = 4  # pre-filter: cheapest nodes kept among those that ship the whole cart
    slots_per_service: int = 2  # dispatch dates per (node, service) besides in-transit ones
    cache: bool = True  # keep the snapshot's index for later solves (False: one-off snapshot)


@dataclasses.dataclass(frozen=True, slots=True)
class _LevelOutcome:
    """The option of one level and how it was found."""

    option: PromiseOption
    status: Status
    candidates: int
    variables: int


def _single_package(problem: Problem, coef: Coefficients) -> tuple[IntArray, int] | None:
    """The cheapest answer that ships the whole cart in one package, if any slot can.

    Every slot that can carry the cart is scored by a bound (its exact objective less the
    protection cost, which is never negative); exact evaluation goes in bound order and stops
    once no remaining bound can beat the best exact objective.
    """
    lines = problem.ctx.lines
    qty = np.array([line.line.quantity for line in lines], dtype=np.int64)
    # Lines sharing a SKU draw on the same ATP, so each needs its SKU's total in the slot.
    need = problem.ctx.sku_need
    fits = (problem.avail >= need[:, None]).all(axis=0) & (problem.slot_capacity != 0)
    labour = problem.slot_labour
    fits &= (labour < 0) | (int(qty.sum()) * coef.pick_seconds <= labour)
    slots = np.flatnonzero(fits)
    if not slots.size:
        return None
    kg = max(1, -(-sum(line.weight_g * line.line.quantity for line in lines) // 1000))
    bound = (
        (coef.unit[:, slots] * qty[:, None]).sum(axis=0)
        + coef.package[slots]
        - coef.split
        + coef.per_kg[slots] * kg
        + coef.lateness * problem.slot_days[slots]
    )
    best: tuple[IntArray, int] | None = None
    margin_bp = problem.ctx.margin_bp
    for k in np.argsort(bound, kind="stable").tolist():
        if best is not None and bound[k] >= best[1]:
            break
        x = np.zeros(problem.avail.shape, dtype=np.int64)
        x[:, slots[k]] = qty
        evaluation = evaluate(problem, x, coef)
        if margin_bp is not None and evaluation.margin * 10_000 < margin_bp * evaluation.revenue:
            continue
        if best is None or evaluation.objective < best[1]:
            best = (x, evaluation.objective)
    return best


def _lower_bound(problem: Problem, coef: Coefficients, packages: int) -> int | None:
    """A bound no complete answer with at least ``packages`` packages beats (None: no answer)."""
    if problem.n_slots == 0:
        return None
    masked = np.where(problem.avail > 0, coef.unit, np.iinfo(np.int64).max)
    per_line = masked.min(axis=1)
    if (per_line == np.iinfo(np.int64).max).any():
        return None
    qty = np.array([line.line.quantity for line in problem.ctx.lines], dtype=np.int64)
    grams = sum(line.weight_g * line.line.quantity for line in problem.ctx.lines)
    # ceil is subadditive and every package bills at least 1 kg.
    kg = max(packages, -(-grams // 1000))
    return int(
        (per_line * qty).sum()
        + packages * coef.package.min()
        - coef.split
        + coef.per_kg.min() * kg
        + coef.lateness * problem.slot_days.min()
    )


def _incomplete_bound(problem: Problem, coef: Coefficients) -> int:
    """A bound no answer that leaves a unit unfilled beats (packages never cost less than 0)."""
    cheapest = np.where(problem.avail > 0, coef.unit, 0).min(axis=1, initial=0)
    qty = np.array([line.line.quantity for line in problem.ctx.lines], dtype=np.int64)
    return coef.unfilled + int((np.minimum(cheapest, 0) * qty).sum())


def _proven(
    problem: Problem, coef: Coefficients, best: int, single: tuple[IntArray, int] | None
) -> bool:
    """Whether ``best`` is optimal without a model.

    The optimum is the least of the best single package (computed exactly), the best answer
    with two or more packages and the best incomplete answer; ``best`` is optimal when it is
    no worse than each of them or their bounds.
    """
    if best > _incomplete_bound(problem, coef):
        return False
    if single is not None and best > single[1]:
        return False
    units = sum(line.line.quantity for line in problem.ctx.lines)
    if units == 1 or problem.ctx.max_shipments == 1:
        return single is not None
    bound = _lower_bound(problem, coef, 2)
    return bound is None or best <= bound


def _baseline(ctx: CartContext, level: ServiceLevel, engine: Engine) -> _LevelOutcome:
    """Answer one level with a greedy baseline over every stocking node."""
    picks = greedy_picks(ctx, level, engine)
    problem = build_problem(ctx, level, {pick.node for pick in picks})
    coef = coefficients(problem)
    x = allocation(problem, picks, coef)
    option = build_option(problem, x, coef, Status.FEASIBLE)
    return _LevelOutcome(option, Status.FEASIBLE, len(ctx.stocking_nodes(level)), 0)


def _solve_level(
    ctx: CartContext, level: ServiceLevel, params: SolveParams, deadline: float
) -> _LevelOutcome:
    """Answer one level with the MIP, its fast paths and its greedy fallback."""
    if params.engine is not Engine.MIP:
        return _baseline(ctx, level, params.engine)
    picks = [greedy_picks(ctx, level, engine) for engine in BASELINES]
    if params.exact:
        candidates = set(ctx.stocking_nodes(level).tolist())
    else:
        candidates = prefilter(ctx, level, per_line=params.per_line, whole_cart=params.whole_cart)
    # The nodes the baselines use join the model, so the MIP is never worse than a baseline.
    candidates.update(pick.node for run in picks for pick in run)
    problem = build_problem(ctx, level, candidates)
    coef = coefficients(problem)
    count = len(problem.candidates)
    if problem.n_slots == 0:
        empty = np.zeros(problem.avail.shape, dtype=np.int64)
        return _LevelOutcome(
            build_option(problem, empty, coef, Status.OPTIMAL), Status.OPTIMAL, count, 0
        )
    scored = [
        (evaluate(problem, x, coef).objective, k, x)
        for k, x in enumerate(allocation(problem, run, coef) for run in picks)
    ]
    best, _, x_best = min(scored, key=lambda t: (t[0], t[1]))
    single = _single_package(problem, coef)
    if single is not None and single[1] < best:
        x_best, best = single
    if _proven(problem, coef, best, single):
        return _LevelOutcome(
            build_option(problem, x_best, coef, Status.OPTIMAL), Status.OPTIMAL, count, 0
        )
    # The search gets what is left of this level's share once the model inputs are built,
    # less a little for building the answer; with nothing left the greedy answer stands.
    limit = deadline - time.perf_counter() - EXTRACT_RESERVE_S
    if limit < MIN_SEARCH_S:
        option = build_option(problem, x_best, coef, Status.FALLBACK)
        return _LevelOutcome(option, Status.FALLBACK, count, 0)
    outcome = solve_mip(
        problem, coef, hint=x_best, time_limit_s=limit, workers=params.workers, seed=params.seed
    )
    if outcome.x is None:
        status = Status.FALLBACK
    else:
        status = Status.OPTIMAL if outcome.optimal else Status.FEASIBLE
        if evaluate(problem, outcome.x, coef).objective <= best:
            x_best = outcome.x
    return _LevelOutcome(
        build_option(problem, x_best, coef, status), status, count, outcome.variables
    )


def _levels(request: PromiseRequest, snapshot: Snapshot) -> tuple[ServiceLevel, ...]:
    """Levels to quote: the requested ones, else every level the network offers, fastest first."""
    if request.service_levels is not None:
        wanted = set(request.service_levels)
    else:
        wanted = {service.service_level for service in snapshot.services}
    return tuple(level for level in LEVEL_ORDER if level in wanted)


def _overall(outcomes: list[_LevelOutcome]) -> Status:
    """One status for the whole answer: the weakest guarantee among the options."""
    statuses = {o.option.status for o in outcomes}
    if not statuses or statuses == {Status.UNFULFILLABLE}:
        return Status.UNFULFILLABLE
    if Status.FALLBACK in {o.status for o in outcomes}:
        return Status.FALLBACK
    if Status.PARTIAL in statuses:
        return Status.PARTIAL
    if all(o.status is Status.OPTIMAL for o in outcomes):
        return Status.OPTIMAL
    return Status.FEASIBLE


def _recommend(options: list[PromiseOption]) -> ServiceLevel | None:
    """The complete option with the lowest objective (ties to the faster level)."""
    complete = [
        o for o in options if o.status not in (Status.PARTIAL, Status.UNFULFILLABLE) and o.shipments
    ]
    if not complete:
        return None
    return min(
        complete, key=lambda o: (o.objective, LEVEL_ORDER.index(o.service_level))
    ).service_level


def solve(
    request: PromiseRequest,
    snapshot: Snapshot,
    *,
    params: SolveParams | None = None,
    inventory: Inventory | None = None,
) -> PromiseResult:
    """Source the cart and promise delivery dates, one option per service level.

    ``inventory`` (live stock of the snapshot's network) replaces the snapshot's own rows.
    """
    params = params or SolveParams()
    started = time.perf_counter()
    budget_s = (request.time_budget_ms or params.time_budget_ms) / 1000.0
    requested_at = request.requested_at or params.now or dt.datetime.now(dt.UTC)
    index = index_of(snapshot, inventory, cache=params.cache)
    ctx = build_context(request, index, requested_at, slots_per_service=params.slots_per_service)
    levels = _levels(request, snapshot)
    outcomes: list[_LevelOutcome] = []
    for k, level in enumerate(levels):
        now = time.perf_counter()
        # Each level still to solve gets an equal share of what is left of the budget.
        left = max(0.0, started + budget_s - now)
        outcomes.append(_solve_level(ctx, level, params, now + left / (len(levels) - k)))
    options = [o.option for o in outcomes]
    return PromiseResult(
        cart_id=request.cart.cart_id,
        channel=request.cart.channel,
        requested_at=requested_at,
        order_date=ctx.order_date,
        options=tuple(options),
        recommended=_recommend(options),
        solver=SolverStats(
            engine=params.engine,
            status=_overall(outcomes),
            wall_ms=round((time.perf_counter() - started) * 1000.0, 3),
            candidates=max((o.candidates for o in outcomes), default=0),
            fallback=any(o.option.fallback for o in outcomes),
            variables=sum(o.variables for o in outcomes),
        ),
    )
