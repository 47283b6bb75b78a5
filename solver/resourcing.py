"""Re-sourcing open orders: held carts planned again as one model, promised dates kept.

Each open order o has its cart, service level, promised delivery date P_o and the allocation
x⁰_o it holds now. Over the live stock with every re-sourced order's units given back:

1. dates     cart o may use slot j only if delivery(j) ≤ P_o     (avail[:, j] = 0 otherwise)
2. shared    stock, carrier capacity and labour across the carts, as in solver/joint.py
3. baseline  C⁰ = Σ_o cost(x⁰_o), the current plan priced on the same problems; it is also
             the solver's start, so the plan found is never worse than it
4. plan      C* = Σ_o cost(x*_o), accepted only when it fills every unit

``cost(x) = objective(x) + revenue(x)``: what the plan costs to fulfil (revenue is the same for
every complete plan, and leaving it in would make a percentage threshold meaningless).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import numpy as np

from models import PromiseOption, PromiseRequest, Status
from solver.answer import build_option
from solver.costs import Coefficients, coefficients, evaluate
from solver.joint import IntArray, allocation_of, solve_joint
from solver.prepared import PreparedNetwork
from solver.problem import Problem, build_context, build_problem

__all__ = ["HeldOrder", "Replan", "replan"]


@dataclasses.dataclass(frozen=True, slots=True)
class HeldOrder:
    """An order whose units are held: its request and the option it holds."""

    request: PromiseRequest
    option: PromiseOption


@dataclasses.dataclass(frozen=True, slots=True)
class Replan:
    """The re-sourcing of some orders: which could be priced, the costs and the new options.

    ``unmapped`` are the orders whose current plan has no slot in today's problem (a ship
    date passed): they cannot be priced, so the caller keeps them as they are. ``options`` is
    None when no complete plan was found.
    """

    unmapped: tuple[int, ...]
    baseline_cost: int
    planned_cost: int | None
    options: tuple[PromiseOption, ...] | None
    status: str
    order_dates: tuple[dt.date, ...] = ()  # each order's local date at ``at``


def _dated_problem(order: HeldOrder, network: PreparedNetwork, at: dt.datetime) -> Problem:
    """(1) The order's problem on the live stock, without slots delivering after its date."""
    # Every dispatch date: a date one cart would prune may be the one that frees shared
    # capacity or labour for another (as in solver/joint.py).
    ctx = build_context(order.request, network, at, exact=True)
    level = order.option.service_level
    problem = build_problem(ctx, level, set(ctx.stocking_nodes(level).tolist()))
    promised = order.option.promised_delivery_date
    if promised is None:
        return problem
    late = problem.slot_delivery > promised.toordinal()
    return dataclasses.replace(problem, avail=np.where(late[None, :], 0, problem.avail))


def _cost(problem: Problem, x: IntArray, coef: Coefficients) -> tuple[int, int]:
    """(3, 4) Fulfilment cost of ``x`` and its unfilled units."""
    evaluation = evaluate(problem, x, coef)
    return evaluation.objective + evaluation.revenue, int(evaluation.unfilled.sum())


def replan(
    orders: Sequence[HeldOrder],
    network: PreparedNetwork,
    *,
    at: dt.datetime,
    time_limit_s: float,
    engine: str = "scip",
) -> Replan:
    """Plan ``orders`` again, jointly, at ``at`` on ``network``'s stock (their units given back)."""
    problems = [_dated_problem(order, network, at) for order in orders]
    coefs = [coefficients(problem) for problem in problems]
    baseline = [allocation_of(p, order.option) for p, order in zip(problems, orders, strict=True)]
    unmapped = tuple(i for i, x in enumerate(baseline) if x is None)
    if unmapped:
        return Replan(unmapped, 0, None, None, "unmapped")
    start = [x for x in baseline if x is not None]
    baseline_cost = sum(_cost(p, x, c)[0] for p, x, c in zip(problems, start, coefs, strict=True))
    outcome = solve_joint(problems, coefs, time_limit_s=time_limit_s, hints=start, engine=engine)
    if outcome.x is None:
        return Replan((), baseline_cost, None, None, outcome.status)
    priced = [_cost(p, x, c) for p, x, c in zip(problems, outcome.x, coefs, strict=True)]
    if any(missing for _, missing in priced):
        return Replan((), baseline_cost, None, None, "partial")
    status = Status.OPTIMAL if outcome.optimal else Status.FEASIBLE
    options = tuple(
        build_option(p, x, c, status, note=" Re-sourced with the other open orders.")
        for p, x, c in zip(problems, outcome.x, coefs, strict=True)
    )
    planned = sum(cost for cost, _ in priced)
    dates = tuple(p.ctx.order_date for p in problems)
    return Replan((), baseline_cost, planned, options, outcome.status, dates)
