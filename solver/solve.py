"""The one entry point: ``solve(request, network, *, params=None) -> PromiseResult``.

``network`` is a ``PreparedNetwork`` (``solver.prepare``, with live stock through
``with_inventory``); the solve reads it and its arguments, nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import numpy as np
import numpy.typing as npt

from models import (
    EARLIEST_DATE,
    LATEST_DATE,
    NO_PRICES,
    Engine,
    PromiseOption,
    PromiseRequest,
    PromiseResult,
    ServiceLevel,
    Snapshot,
    SolverStats,
    Status,
    StockPrices,
    scale_cents_array,
)
from solver.answer import build_option
from solver.bounds import PAIR_CELLS, complete_bound, incomplete_bound, node_bounds, split_bound
from solver.costs import Coefficients, coefficients, evaluate, meets_floor
from solver.errors import InvalidRequestError
from solver.greedy import BASELINES, Pick, allocation, cheapest_start, greedy_run
from solver.mip import MIN_SEARCH_S, solve_mip
from solver.prepared import PreparedNetwork, as_prepared
from solver.problem import CartContext, Problem, build_context, build_problem, prefilter

__all__ = ["SolveParams", "solve"]

IntArray = npt.NDArray[np.int64]
LEVEL_ORDER: tuple[ServiceLevel, ...] = tuple(ServiceLevel)
# The baseline whose answer the proof without a model tries first: the one covering most
# units per package is most often the optimum among the three (realistic mix, demo network).
QUICK_BASELINE = Engine.FEWEST_SPLITS
# Models the proof without a model builds before it hands over: the pre-filter's, and once
# more with the nodes whose bound says they could win.
QUICK_ROUNDS = 2
# Time a full pair table of the proof takes at most (solver/bounds.py, PAIR_CELLS); with less
# left before the request's deadline the proof builds a proportionally smaller one.
PAIR_TABLE_S = 0.010
# Kept back from a level's share for turning the allocation into the answer.
EXTRACT_RESERVE_S = 0.0005
# A larger model for the optimality proof needs at least this much of the level's time left;
# starting it later would only overrun the budget and leave the answer unproven anyway.
MIN_PROOF_S = 0.005
# Calendar arithmetic (local dates, dispatch days, horizons) must stay inside datetime's years;
# an order instant outside the models' date range is no checkout and once ended in an
# OverflowError (a 500). The API refuses it at parsing; this guards direct library calls.
EARLIEST_REQUEST = dt.datetime.combine(EARLIEST_DATE, dt.time(), tzinfo=dt.UTC)
LATEST_REQUEST = dt.datetime.combine(LATEST_DATE + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class SolveParams:
    """Options of a solve; the request's own ``time_budget_ms`` wins over ``time_budget_ms``."""

    engine: Engine = Engine.MIP
    time_budget_ms: int = 50
    # The exact reference: every stocking node, every dispatch date of the horizon, no
    # dominance pruning and no proof without a model (give it a long time budget).
    exact: bool = False
    now: dt.datetime | None = None  # the clock for requests without requested_at
    workers: int = 1  # one CP-SAT worker is fastest for these small models on 2 cores
    seed: int = 0
    per_line: int = 3  # pre-filter: cheapest nodes kept per line
    whole_cart: int = 4  # pre-filter: cheapest nodes kept among those that ship the whole cart
    # Nodes the optimality proof may add to the model beyond the pre-filter's, per level;
    # past it the answer is returned unproven (feasible).
    proof_nodes: int = 64
    # When the request arrived (``time.perf_counter()``): the budget runs from then, so time
    # spent queued for a solver thread counts. None: from the start of ``solve()``.
    arrived: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _LevelOutcome:
    """The option of one level and how it was found."""

    option: PromiseOption
    status: Status
    candidates: int
    variables: int
    error: str | None = None  # CP-SAT refused the model or called it infeasible
    cp_status: str | None = None  # CP-SAT's own status of the level's last search (None: no MIP)


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
        + coef.lateness * np.maximum(0, problem.slot_days[slots])
    )
    best: tuple[IntArray, int] | None = None
    for k in np.argsort(bound, kind="stable").tolist():
        if best is not None and bound[k] >= best[1]:
            break
        x = np.zeros(problem.avail.shape, dtype=np.int64)
        x[:, slots[k]] = qty
        evaluation = evaluate(problem, x, coef)
        if not meets_floor(problem, evaluation):
            continue
        if best is None or evaluation.objective < best[1]:
            best = (x, evaluation.objective)
    return best


def _proven(
    problem: Problem, coef: Coefficients, best: int, single: tuple[IntArray, int] | None
) -> bool:
    """Whether ``best`` is optimal for ``problem`` without a model.

    The optimum is the least of the best single package (computed exactly), the best answer
    with two or more packages and the best incomplete answer; ``best`` is optimal when it is
    no worse than each of them or their bounds.
    """
    if best > incomplete_bound(problem, coef):
        return False
    if single is not None and best > single[1]:
        return False
    units = sum(line.line.quantity for line in problem.ctx.lines)
    if units == 1 or problem.ctx.max_shipments == 1:
        return single is not None
    # Both bound every complete answer with two or more packages; the pair bound is the
    # sharper one whenever a few nodes hold the cart (and the only one that sees prices), but
    # dearer to compute, so it is asked only when the cheap bound does not settle it.
    bound = complete_bound(problem, coef, 2)
    if bound is None or best <= bound:
        return True
    pairs = split_bound(problem, coef)
    return pairs is None or best <= pairs


def _baseline(
    ctx: CartContext, level: ServiceLevel, engine: Engine, deadline: float, final: float
) -> _LevelOutcome:
    """Answer one level with a greedy baseline over every stocking node (until ``deadline``)."""
    picks, cut = greedy_run(ctx, level, engine, deadline=deadline, final=final)
    # A pass cut short by the deadline is flagged like any answer the time budget ended.
    return _picked(ctx, level, [picks], Status.FALLBACK if cut else Status.FEASIBLE)


def _late(ctx: CartContext, level: ServiceLevel, engine: Engine, final: float) -> _LevelOutcome:
    """Answer one level of a request whose budget was spent before the solve started.

    ``final`` has passed, so greedy passes stop after MIN_VISITS node visits (LATE_VISITS on
    large networks): on ordinary networks a whole pass. The answer is flagged as a fallback.
    """
    engines = BASELINES if engine is Engine.MIP else (engine,)
    runs = [greedy_run(ctx, level, each, deadline=final, final=final)[0] for each in engines]
    return _picked(ctx, level, runs, Status.FALLBACK)


def _picked(
    ctx: CartContext, level: ServiceLevel, runs: list[list[Pick]], status: Status
) -> _LevelOutcome:
    """The cheapest of greedy ``runs`` as the option of ``level``, answered as ``status``."""
    problem = build_problem(ctx, level, {pick.node for run in runs for pick in run})
    coef = coefficients(problem)
    starts = [allocation(problem, run, coef) for run in runs]
    x = min(starts, key=lambda start: evaluate(problem, start, coef).objective)
    option = build_option(problem, x, coef, status)
    return _LevelOutcome(option, status, len(ctx.stocking_nodes(level)), 0)


def _remap(old: Problem, new: Problem, x: IntArray) -> IntArray:
    """Allocation ``x`` of ``old`` as an allocation of ``new`` (whose nodes include old's)."""
    out = np.zeros(new.avail.shape, dtype=np.int64)
    for j in np.flatnonzero(x.sum(axis=0)).tolist():
        node = int(old.slot_node[j])
        local = j - int(np.searchsorted(old.slot_node, node, side="left"))
        out[:, new.slot_of(node, local)] = x[:, j]
    return out


@dataclasses.dataclass(slots=True)
class _Search:
    """The best answer of one level so far, on the current candidate set."""

    problem: Problem
    coef: Coefficients
    x: IntArray
    objective: int
    proven: bool  # optimal for the current candidate set
    timed_out: bool = False  # the model's time ran out before any solution
    variables: int = 0
    error: str | None = None
    cp_status: str | None = None


def _trimmed(
    problem: Problem, coef: Coefficients, x: IntArray, best: int
) -> tuple[Problem, Coefficients, IntArray]:
    """``problem`` without the nodes no answer cheaper than ``best`` can ship from, and ``x``.

    A node whose bound (solver/bounds.py, over every answer shipping from it) is at least
    ``best`` is in no strictly cheaper answer, so the model's optimum over the other nodes,
    or ``best`` itself, is the optimum over all of them; a smaller model proves it sooner.
    The nodes ``x`` ships from stay, so ``x`` remains the start.
    """
    ctx, level = problem.ctx, problem.level
    nodes = np.intersect1d(np.array(problem.candidates, dtype=np.int64), ctx.stocking_nodes(level))
    bounds = node_bounds(ctx, level, nodes, coef, target=best, refine_at_most=nodes.size)
    used = set(problem.slot_node[np.flatnonzero(x.sum(axis=0))].tolist())
    keep = {
        node for node, bound in zip(nodes.tolist(), bounds.tolist(), strict=True) if bound < best
    }
    keep |= used
    if len(keep) == len(problem.candidates):
        return problem, coef, x
    trimmed = build_problem(ctx, level, keep)
    return trimmed, coefficients(trimmed), _remap(problem, trimmed, x)


def _best_known(
    problem: Problem, coef: Coefficients, starts: list[IntArray], *, prove: bool
) -> tuple[IntArray, int, tuple[IntArray, int] | None, bool]:
    """The best answer known without a model, the best single package, and whether it is proven.

    The cheapest of ``starts`` or the best single package; when the bounds do not prove that
    (or ``prove`` is off), the cheapest package-by-package answer too, which sees prices the
    baselines ignore and may itself be proven. Needs at least one slot.
    """
    scored = [(evaluate(problem, x, coef).objective, k, x) for k, x in enumerate(starts)]
    best, _, x_best = min(scored, key=lambda t: (t[0], t[1]))
    single = _single_package(problem, coef)
    if single is not None and single[1] < best:
        x_best, best = single
    if prove and _proven(problem, coef, best, single):
        return x_best, best, single, True
    cheapest = cheapest_start(problem, coef)
    value = evaluate(problem, cheapest, coef).objective
    if value < best:
        return cheapest, value, single, prove and _proven(problem, coef, value, single)
    return x_best, best, single, False


def _search(
    problem: Problem,
    coef: Coefficients,
    starts: list[IntArray],
    params: SolveParams,
    deadline: float,
) -> _Search:
    """Best answer of ``problem``: greedy starts, single package, bounds, then the MIP."""
    if problem.n_slots == 0:
        x = np.zeros(problem.avail.shape, dtype=np.int64)
        return _Search(problem, coef, x, evaluate(problem, x, coef).objective, proven=True)
    x_best, best, _, proven = _best_known(problem, coef, starts, prove=not params.exact)
    if proven:
        return _Search(problem, coef, x_best, best, proven=True)
    # The search gets what is left of this level's share once the model inputs are built,
    # less a little for building the answer; with nothing left the greedy answer stands (and
    # trimming the model, whose bounds cost milliseconds on a large cart, would be wasted).
    if deadline - time.perf_counter() - EXTRACT_RESERVE_S < MIN_SEARCH_S:
        return _Search(problem, coef, x_best, best, proven=False, timed_out=True)
    if not params.exact:
        problem, coef, x_best = _trimmed(problem, coef, x_best, best)
    if deadline - time.perf_counter() - EXTRACT_RESERVE_S < MIN_SEARCH_S:
        return _Search(problem, coef, x_best, best, proven=False, timed_out=True)
    outcome = solve_mip(
        problem,
        coef,
        hint=x_best,
        deadline=deadline - EXTRACT_RESERVE_S,
        workers=params.workers,
        seed=params.seed,
    )
    found = _Search(
        problem,
        coef,
        x_best,
        best,
        proven=False,
        timed_out=outcome.x is None and outcome.error is None,
        variables=outcome.variables,
        error=outcome.error,
        cp_status=outcome.cp_status,
    )
    if outcome.x is not None:
        value = evaluate(problem, outcome.x, coef).objective
        if value <= best:
            found.x, found.objective = outcome.x, value
        # A proof covers the model's optimum; a cheaper start would contradict it.
        found.proven = outcome.optimal and value <= best
    return found


def _unpriced(problem: Problem, coef: Coefficients, x: IntArray) -> int:
    """The objective of ``x`` without its opportunity-cost term (exact: the term is separate)."""
    weighted = scale_cents_array(problem.ctx.weights.opportunity, coef.opportunity)
    return evaluate(problem, x, coef).objective - int((weighted * x).sum())


def _steering(first: Problem, coef: Coefficients, starts: list[IntArray], found: _Search) -> str:
    """Say so when the opportunity cost of stock changed the answer, else nothing.

    It changed the answer when a known alternative filling as many units (a greedy start or
    the best single package) is cheaper without the term; the saving and the stock value it
    would have spent are reported.
    """
    if not found.coef.opportunity.any() or first.ctx.weights.opportunity <= 0:
        return ""
    chosen = evaluate(found.problem, found.x, found.coef)
    mine = _unpriced(found.problem, found.coef, found.x)
    best: tuple[int, int] | None = None
    for x in starts:
        other = evaluate(first, x, coef)
        if other.unfilled.sum() != chosen.unfilled.sum() or not meets_floor(first, other):
            continue
        cheaper = _unpriced(first, coef, x)
        if cheaper < mine and (best is None or cheaper < best[0]):
            best = (cheaper, other.opportunity)
    if best is None:
        return ""
    saving, spent = mine - best[0], best[1] - chosen.opportunity
    return (
        f" The opportunity cost of stock changed this answer: one {saving / 100:.2f} cheaper to "
        f"fulfil would use stock worth {spent / 100:.2f} more to later orders."
    )


def _may_win(
    ctx: CartContext, level: ServiceLevel, found: _Search, most: int, final: float
) -> set[int]:
    """Stocking nodes outside the model whose bound is below the best answer's objective.

    Bounds are sharpened for at most about four times ``most`` nodes: when more than ``most``
    remain the proof is abandoned anyway, so sharpening the rest would be wasted. The pair
    table shrinks with the time left before ``final``: a full one took 20 ms on a slow
    machine, past the request's budget; nodes it leaves out keep a looser, still valid bound.
    """
    stocking = ctx.stocking_nodes(level)
    outside = stocking[~np.isin(stocking, np.array(found.problem.candidates, dtype=np.int64))]
    left = final - time.perf_counter()
    cells = PAIR_CELLS if left >= PAIR_TABLE_S else max(0, int(PAIR_CELLS * left / PAIR_TABLE_S))
    bounds = node_bounds(
        ctx,
        level,
        outside,
        found.coef,
        target=found.objective,
        refine_at_most=4 * most + 32,
        pair_cells=cells,
    )
    return set(outside[bounds < found.objective].tolist())


def _quick_proof(
    ctx: CartContext,
    level: ServiceLevel,
    params: SolveParams,
    picks: list[Pick],
    ranked: set[int],
    *,
    final: float,
) -> _LevelOutcome | None:
    """The level's answer when one baseline and the bounds prove it optimal, else None.

    Most levels are proven without a model (solver/bounds.py): then the other baselines'
    answers cannot be cheaper, and computing them would only cost time. The model is the
    pre-filter's nodes and the baseline's; the proof covers every stocking node, as the full
    path's does. When it fails, the caller runs the full path from the start. Past the
    request's deadline (``final``) the proof over the other nodes is not started: the answer
    stands, flagged as the fallback the time budget left. Within it a proof may run past the
    level's share, as the full path's does: the levels after it share what is left.
    """
    candidates = ranked | {pick.node for pick in picks}
    for _ in range(QUICK_ROUNDS):
        proven = _bound_proof(ctx, level, picks, candidates)
        if proven is None:
            return None
        found, known = proven
        status = Status.OPTIMAL
        if time.perf_counter() >= final:
            status = Status.FALLBACK
        else:
            extra = _may_win(ctx, level, found, params.proof_nodes, final)
            if extra:
                # A node left out could win: once more with it (proof_nodes bounds the model).
                candidates = candidates | extra
                if len(candidates) > len(ranked) + params.proof_nodes:
                    return None
                continue
        note = _steering(found.problem, found.coef, known, found)
        option = build_option(found.problem, found.x, found.coef, status, note=note)
        return _LevelOutcome(option, status, len(found.problem.candidates), 0)
    return None


def _bound_proof(
    ctx: CartContext, level: ServiceLevel, picks: list[Pick], candidates: set[int]
) -> tuple[_Search, list[IntArray]] | None:
    """The best answer over ``candidates`` when the bounds prove it, with the known answers.

    The known answers are the baseline's, the best single package's and the cheapest
    package-by-package one's, as far as they were built (for ``_steering``).
    """
    problem = build_problem(ctx, level, candidates)
    coef = coefficients(problem)
    start = allocation(problem, picks, coef)
    if problem.n_slots:
        x, best, single, proven = _best_known(problem, coef, [start], prove=True)
    else:
        # Without a slot, shipping nothing is the only answer on these nodes (as in _search).
        x, best, single, proven = start, evaluate(problem, start, coef).objective, None, True
    if not proven:
        return None
    known = [start] if single is None else [start, single[0]]
    return _Search(problem, coef, x, best, proven=True), known


def _solve_level(
    ctx: CartContext, level: ServiceLevel, params: SolveParams, deadline: float, final: float
) -> _LevelOutcome:
    """Answer one level with the MIP, its fast paths and its greedy fallback.

    The pre-filter only ranks nodes; optimality is then proven over every node: a node left
    out joins the model when its lower bound (solver/bounds.py) is below the best answer, and
    the search runs again, until no node outside can win or the time is up (then unproven).
    ``deadline`` ends this level's share of the budget, ``final`` the request's budget.
    """
    if params.engine is not Engine.MIP:
        return _baseline(ctx, level, params.engine, deadline, final)
    quick_run = greedy_run(ctx, level, QUICK_BASELINE, deadline=deadline, final=final)
    ranked: set[int] | None = None
    if not params.exact and not quick_run[1]:
        ranked = prefilter(ctx, level, per_line=params.per_line, whole_cart=params.whole_cart)
        quick = _quick_proof(ctx, level, params, quick_run[0], ranked, final=final)
        if quick is not None:
            return quick
    runs = [
        quick_run
        if engine is QUICK_BASELINE
        else greedy_run(ctx, level, engine, deadline=deadline, final=final)
        for engine in BASELINES
    ]
    picks = [run for run, _ in runs]
    if any(cut for _, cut in runs):
        # The baselines used the level's whole share (tens of thousands of stocking nodes):
        # the pre-filter, the search and the proof would each take longer still.
        return _picked(ctx, level, picks, Status.FALLBACK)
    if params.exact:
        candidates = set(ctx.stocking_nodes(level).tolist())
    elif ranked is not None:
        candidates = set(ranked)
    else:
        candidates = prefilter(ctx, level, per_line=params.per_line, whole_cart=params.whole_cart)
    # The nodes the baselines use join the model, so the MIP is never worse than a baseline.
    candidates.update(pick.node for run in picks for pick in run)
    first = problem = build_problem(ctx, level, candidates)
    first_coef = coef = coefficients(problem)
    starts = [allocation(problem, run, coef) for run in picks]
    found = _search(problem, coef, starts, params, deadline)
    variables = found.variables
    error = found.error
    cp_status = found.cp_status
    added = 0
    while found.proven and not params.exact:
        if time.perf_counter() >= final:
            # The request's budget is spent: the answer stands, proven on the model's nodes.
            found.proven = False
            break
        extra = _may_win(ctx, level, found, params.proof_nodes, final)
        if not extra:
            break
        added += len(extra)
        if deadline - time.perf_counter() < MIN_PROOF_S or added > params.proof_nodes:
            # A left-out node might still win: the answer stands, not proven. (A model of
            # every plausible node would rarely finish within a checkout budget anyway.)
            found.proven = False
            break
        candidates |= extra
        problem = build_problem(ctx, level, candidates)
        coef = coefficients(problem)
        start = _remap(found.problem, problem, found.x)
        # The answer proven on the smaller set stays the start: it is no fallback any more.
        found = _search(problem, coef, [start], params, deadline)
        found.timed_out = False
        variables += found.variables
        error = error or found.error
        cp_status = found.cp_status or cp_status
    if found.proven:
        status = Status.OPTIMAL
    elif found.timed_out or error is not None:
        status = Status.FALLBACK
    else:
        status = Status.FEASIBLE
    note = _steering(first, first_coef, starts, found)
    option = build_option(found.problem, found.x, found.coef, status, note=note)
    return _LevelOutcome(option, status, len(found.problem.candidates), variables, error, cp_status)


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
    network: PreparedNetwork | Snapshot,
    *,
    params: SolveParams | None = None,
    prices: StockPrices = NO_PRICES,
) -> PromiseResult:
    """Source the cart and promise delivery dates, one option per service level.

    ``prices`` is the opportunity cost of stock the objective charges (none by default). A
    bare ``Snapshot`` is prepared for this one call (and forgotten with it): callers that
    solve on the same snapshot again keep ``prepare(snapshot)`` and pass that.
    The time budget counts from ``params.arrived`` when given: what is left of it when the
    solve starts is what the solve gets, and with nothing left every level is the greedy
    fallback (status FALLBACK, flagged), as is every level after the budget ran out.
    """
    params = params or SolveParams()
    started = time.perf_counter()
    budget_s = (request.time_budget_ms or params.time_budget_ms) / 1000.0
    deadline = (started if params.arrived is None else params.arrived) + budget_s
    # A request that waited past its whole budget gets the greedy fallback at once, and so do
    # the levels left once the levels before them have spent it; a level that starts in time
    # stops its proofs at the deadline (_solve_level).
    late = deadline <= started
    requested_at = request.requested_at or params.now or dt.datetime.now(dt.UTC)
    if not EARLIEST_REQUEST <= requested_at < LATEST_REQUEST:
        raise InvalidRequestError(
            f"requested_at must be between {EARLIEST_DATE} and {LATEST_DATE}",
            ("requested_at",),
        )
    prepared = as_prepared(network)
    ctx = build_context(request, prepared, requested_at, exact=params.exact, prices=prices)
    levels = _levels(request, prepared.snapshot)
    outcomes: list[_LevelOutcome] = []
    for k, level in enumerate(levels):
        now = time.perf_counter()
        if late or (k and now >= deadline):
            # Waited past the budget, or the levels before this one spent it: the greedy
            # fallback, at once (a search and its proofs would only make the answer later).
            outcomes.append(_late(ctx, level, params.engine, deadline))
            continue
        # Each level still to solve gets an equal share of what is left of the budget.
        left = max(0.0, deadline - now)
        share = now + left / (len(levels) - k)
        outcomes.append(_solve_level(ctx, level, params, share, deadline))
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
            # A table in force is reported even when it prices nothing (stock is plentiful).
            prices_version=prices.version if prices.version or len(prices) else None,
            model_errors=tuple(
                f"{o.option.service_level.value}: {o.error}" for o in outcomes if o.error
            ),
            cp_status=tuple(
                f"{o.option.service_level.value}: {o.cp_status}" for o in outcomes if o.cp_status
            ),
        ),
    )
