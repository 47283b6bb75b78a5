"""Several carts as one MIP: shared stock, carrier capacity and labour (docs/model.md).

Each cart keeps its own model of solver/mip.py (demand, availability by date, linking,
capacity, labour, max shipments, promise, margin floor, protection) over its own problem. The
carts then share what one order's model only sees alone:

    stock     Σ_carts Σ x[l,j] over (n, k) ≤ ATP_last(n, k)   (the channel's ATP once every lot
                                                             has arrived; exact without lots)
    capacity  Σ_carts y[j] over (n, service, date) ≤ capacity left
    labour    Σ_carts pick_s(n) · x over (n, date) ≤ 60 · labour minutes left

The objective is the sum of the carts' objectives. A day's plan (``shared_protection``) charges
protection once over the day, P[n,k] ≥ Σ_carts Σ x[l,j] over (n, k) − free(n, k), instead of
each cart's own p[n,k] against the day's opening stock: orders answered one after another pay
for the units below protection that earlier orders left, and the plan must cost what a replay
of it costs. This is the clairvoyant plan of a day (every
order known up front) and the re-sourcing of open holds (each cart limited to slots delivering
by its promised date). Its LP relaxation, on GLOP, bounds it from below when the MIP is too
large to prove; ``strengthen`` adds the valid inequalities of solver/_joint_cuts.py (promised
day and billable kg), which raise that relaxation without removing any integer plan.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from ortools.linear_solver.python import model_builder_helper as mbh
from ortools.sat.python import cp_model
from ortools.sat.python import cp_model_helper as cmh

from models import PromiseOption, PromiseRequest, ServiceLevel, Snapshot
from solver._joint_cuts import strengthen as add_cuts
from solver._lp import sparse_model
from solver.costs import Coefficients, coefficients, evaluate
from solver.mip import MipModel, build_model, solver_parameters
from solver.prepared import PreparedNetwork, as_prepared
from solver.problem import Problem, build_context, build_problem

__all__ = ["JointOutcome", "JointPlan", "allocation_of", "plan_jointly", "solve_joint"]

IntArray = npt.NDArray[np.int64]


@dataclasses.dataclass(frozen=True, slots=True)
class JointOutcome:
    """Allocations per cart (None without a solution), objective, bound and CP-SAT status."""

    x: tuple[IntArray, ...] | None
    objective: float | None
    bound: float  # CP-SAT's proven lower bound on the joint objective
    optimal: bool
    status: str
    variables: int
    seconds: float


def _share(problems: Sequence[Problem], models: Sequence[MipModel], m: cmh.CpModelProto) -> None:
    """Add the stock, capacity and labour rows every cart shares."""
    stock: dict[tuple[int, int], list[int]] = defaultdict(list)
    stock_limit: dict[tuple[int, int], int] = {}
    packages: dict[tuple[int, str, int], list[int]] = defaultdict(list)
    package_limit: dict[tuple[int, str, int], int] = {}
    labour: dict[tuple[int, int], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    labour_limit: dict[tuple[int, int], int] = {}
    for problem, model in zip(problems, models, strict=True):
        ctx = problem.ctx
        v = model.v
        line_sku = np.array([line.sku_index for line in ctx.lines], dtype=np.int64)
        for x, i, j in zip(v.x.tolist(), v.xi.tolist(), v.xj.tolist(), strict=True):
            node, sku = int(problem.slot_node[j]), int(line_sku[i])
            stock[node, sku].append(x)
            pair = ctx.pair(node, sku)
            stock_limit[node, sku] = 0 if pair is None else pair.last
            seconds = int(model.coef.pick_seconds[j])
            left = int(problem.slot_labour[j])
            if left >= 0 and seconds > 0:
                key = (node, int(problem.slot_date[j]))
                labour[key][0].append(x)
                labour[key][1].append(seconds)
                labour_limit[key] = left
        for k, j in enumerate(v.slots.tolist()):
            left = int(problem.slot_capacity[j])
            if left >= 0:
                key3 = (
                    int(problem.slot_node[j]),
                    problem.slot_service[j].service_id,
                    int(problem.slot_date[j]),
                )
                packages[key3].append(int(v.y[k]))
                package_limit[key3] = left

    def row(variables: list[int], coeffs: list[int], hi: int) -> None:
        constraint = m.constraints.add().linear
        constraint.vars.extend(variables)
        constraint.coeffs.extend(coeffs)
        constraint.domain.extend((0, hi))

    for key, members in stock.items():
        if len(members) > 1:
            row(members, [1] * len(members), stock_limit[key])
    for key3, ys in packages.items():
        if len(ys) > 1:
            row(ys, [1] * len(ys), package_limit[key3])
    for key, (xs, secs) in labour.items():
        if len(xs) > 1:
            row(xs, secs, labour_limit[key])


def _share_protection(models: Sequence[MipModel], m: cmh.CpModelProto) -> None:
    """Charge protection once over every cart: P[n,k] ≥ Σ x over (n, k) − free(n, k).

    Each cart's own p[n,k] keeps its row but loses its cost. Summed over orders answered in
    turn, what each pays for units below protection telescopes to max(0, Σ x − free) on the
    opening stock, which P[n,k] is.
    """
    own: set[int] = set()
    taken: dict[tuple[int, int], list[int]] = defaultdict(list)
    free: dict[tuple[int, int], int] = {}
    weight = 0
    for model in models:
        v, coef = model.v, model.coef
        own.update(v.protected.tolist())
        if not coef.protected:
            continue
        weight = coef.protection
        line_sku = np.array([line.sku_index for line in model.problem.ctx.lines], dtype=np.int64)
        node = model.problem.slot_node[v.xj]
        sku = line_sku[v.xi]
        for key, left in coef.protected.items():
            members = v.x[(node == key[0]) & (sku == key[1])]
            if members.size:
                taken[key].extend(members.tolist())
                free[key] = left
    objective = m.objective
    for position, var in enumerate(objective.vars):
        if var in own:
            objective.coeffs[position] = 0
    if weight == 0:
        return
    hinted = dict(zip(m.solution_hint.vars, m.solution_hint.values, strict=True))
    for key, members in taken.items():
        shared = len(m.variables)
        variable = m.variables.add()
        most = sum(int(m.variables[x].domain[len(m.variables[x].domain) - 1]) for x in members)
        variable.domain.extend((0, most))
        constraint = m.constraints.add().linear
        constraint.vars.extend([shared, *members])
        constraint.coeffs.extend([1] + [-1] * len(members))
        constraint.domain.extend((-free[key], 2**62))
        objective.vars.append(shared)
        objective.coeffs.append(weight)
        if hinted:
            units = sum(hinted.get(x, 0) for x in members)
            m.solution_hint.vars.append(shared)
            m.solution_hint.values.append(max(0, units - free[key]))


def _as_mp(proto: cmh.CpModelProto, *, integral: bool) -> mbh.ModelBuilderHelper:
    """The same model for an LP-based solver (its LP relaxation when not ``integral``).

    Every constraint the cart models use is linear or at-most-one, so the translation is exact.
    """
    lower = np.array([v.domain[0] for v in proto.variables], dtype=np.float64)
    upper = np.array([v.domain[len(v.domain) - 1] for v in proto.variables], dtype=np.float64)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    for constraint in proto.constraints:
        k = len(lo)
        if constraint.has_linear():
            linear = constraint.linear
            members, coeffs = list(linear.vars), list(linear.coeffs)
            bounds = (float(linear.domain[0]), float(linear.domain[len(linear.domain) - 1]))
        elif constraint.has_at_most_one():
            members = list(constraint.at_most_one.literals)
            coeffs, bounds = [1] * len(members), (0.0, 1.0)
        else:  # pragma: no cover - the cart models write nothing else
            raise ValueError("only linear and at-most-one constraints translate")
        rows += [k] * len(members)
        cols += members
        vals += [float(c) for c in coeffs]
        # CP-SAT's int64 infinities become the LP's infinities.
        lo.append(-np.inf if bounds[0] <= -(2**62) else bounds[0])
        hi.append(np.inf if bounds[1] >= 2**62 else bounds[1])
    cost = np.zeros(lower.size)
    np.add.at(cost, list(proto.objective.vars), list(proto.objective.coeffs))
    model = sparse_model(
        (lower, upper, cost),
        np.array(lo),
        np.array(hi),
        (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(vals)),
    )
    if integral:
        for k in range(lower.size):
            model.set_var_integrality(k, True)
    return model


def _joint_model(
    problems: Sequence[Problem],
    coefs: Sequence[Coefficients],
    hints: Sequence[IntArray] | None,
    *,
    shared_protection: bool,
    strengthen: bool,
) -> tuple[cmh.CpModelProto, list[MipModel]]:
    """The carts' models in one proto with their shared rows (``solve_joint``'s options)."""
    proto = cmh.CpModelProto()
    models: list[MipModel] = []
    for k, (problem, coef) in enumerate(zip(problems, coefs, strict=True)):
        hint = None if hints is None else hints[k]
        models.append(build_model(problem, coef, hint=hint, into=proto))
    _share(problems, models, proto)
    if shared_protection:
        _share_protection(models, proto)
    if strengthen:
        add_cuts(models, proto)
    return proto, models


def solve_joint(
    problems: Sequence[Problem],
    coefs: Sequence[Coefficients],
    *,
    time_limit_s: float,
    workers: int = 2,
    hints: Sequence[IntArray] | None = None,
    engine: str = "scip",
    shared_protection: bool = False,
    strengthen: bool = True,
    relax_unproven: bool = False,
) -> JointOutcome:
    """Solve the carts jointly within ``time_limit_s``; the best plan found and a lower bound.

    ``engine`` is ``scip`` or ``highs`` (LP-based branch and bound: tight bounds on these
    assignment models), ``cp_sat``, or ``lp`` (HiGHS) or ``glop`` for the LP relaxation (a
    bound, no plan). ``shared_protection`` charges units below protection once over every
    cart (module docstring): a day's plan. ``strengthen`` adds the valid inequalities of
    solver/_joint_cuts.py (off only to measure what they add). ``relax_unproven`` also solves
    the LP relaxation on HiGHS when the search ends without a proof and keeps the larger of
    the two bounds (the search's dual bound can still be its trivial one when time runs out
    in its root; the time limit then applies to each solve).
    """
    started = time.perf_counter()
    proto, models = _joint_model(
        problems, coefs, hints, shared_protection=shared_protection, strengthen=strengthen
    )
    count = len(proto.variables)
    if engine == "cp_sat":
        params = solver_parameters(time_limit_s, workers, seed=0)
        # A day is a large model: presolve and cuts pay for themselves here, unlike one cart.
        params.cp_model_presolve = True
        params.cut_level = 1
        wrapper = cmh.SolveWrapper()
        wrapper.set_parameters(params)
        response = wrapper.solve(proto)  # type: ignore[no-untyped-call]
        status = response.status
        bound = float(response.best_objective_bound)
        if relax_unproven and status != cp_model.OPTIMAL:
            bound = max(bound, _relaxation(proto, "highs", time_limit_s)[0])
        seconds = time.perf_counter() - started
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return JointOutcome(None, None, bound, False, str(status.name), count, seconds)
        solution = np.array(response.solution, dtype=np.int64)
        return JointOutcome(
            tuple(model.allocation(solution) for model in models),
            float(response.objective_value),
            bound,
            status == cp_model.OPTIMAL,
            str(status.name),
            count,
            seconds,
        )
    if engine in ("glop", "lp"):
        # "lp": the relaxation on HiGHS, whose simplex stays robust where GLOP's loses its way
        # on the unfilled penalty's large coefficients.
        bound, name = _relaxation(proto, "highs" if engine == "lp" else engine, time_limit_s)
        seconds = time.perf_counter() - started
        return JointOutcome(None, None, bound, False, name, count, seconds)
    model = _as_mp(proto, integral=True)
    for var, value in zip(proto.solution_hint.vars, proto.solution_hint.values, strict=True):
        model.add_hint(var, float(value))
    solver = mbh.ModelSolverHelper(engine)
    solver.set_time_limit_in_seconds(time_limit_s)
    solver.solve(model)
    name = str(solver.status().name)
    optimal = name == "OPTIMAL"
    bound = float(solver.best_objective_bound()) if solver.has_solution() else -math.inf
    if not math.isfinite(bound):
        # No dual bound reported: only a proven optimum bounds itself.
        bound = float(solver.objective_value()) if optimal else -math.inf
    if relax_unproven and not optimal:
        bound = max(bound, _relaxation(proto, "highs", time_limit_s)[0])
    seconds = time.perf_counter() - started
    if not solver.has_solution():
        return JointOutcome(None, None, bound, False, name, count, seconds)
    solution = np.rint(solver.variable_values()).astype(np.int64)
    xs = tuple(model_.allocation(solution) for model_ in models)
    value = float(solver.objective_value())
    return JointOutcome(xs, value, bound, optimal, name, count, seconds)


def _relaxation(proto: cmh.CpModelProto, engine: str, time_limit_s: float) -> tuple[float, str]:
    """The LP relaxation's optimum on ``engine`` (-inf unless proven) and the solver status."""
    solver = mbh.ModelSolverHelper(engine)
    solver.set_time_limit_in_seconds(time_limit_s)
    solver.solve(_as_mp(proto, integral=False))
    name = str(solver.status().name)
    # Only a proven LP optimum bounds the MIP; a stopped simplex's value bounds nothing.
    return (float(solver.objective_value()) if name == "OPTIMAL" else -math.inf), name


@dataclasses.dataclass(frozen=True, slots=True)
class JointPlan:
    """Several orders planned at once: cost of the best plan, a lower bound, and how found.

    ``cost`` is the contract objective without the unfilled term (no price table), summed over
    the orders; ``bound`` bounds it from below for plans leaving ``unfilled`` units unfilled
    (the unfilled term dominates, so no plan fills more when the search is proven optimal).
    """

    cost: int | None
    unfilled: int | None
    bound: float
    optimal: bool
    status: str
    variables: int
    seconds: float
    allocations: tuple[IntArray, ...] | None


def plan_jointly(
    requests: Sequence[PromiseRequest],
    network: PreparedNetwork | Snapshot,
    level: ServiceLevel,
    *,
    time_limit_s: float,
    hints: Sequence[Sequence[PromiseOption]] = (),
    engine: str = "scip",
    strengthen: bool = True,
) -> JointPlan:
    """Plan ``requests`` (each with its ``requested_at``) together over every stocking node.

    ``hints`` are candidate plans, one option per request in order; the cheapest one that maps
    onto the model is CP-SAT's start. ``network`` is prepared, or a bare snapshot prepared for
    this one call. ``engine`` and ``strengthen`` are those of ``solve_joint``; an unproven
    search's bound is the larger of its own and the LP relaxation's.
    """
    problems = _day_problems(requests, as_prepared(network), level)
    coefs = [coefficients(problem) for problem in problems]
    start = _best_start(problems, coefs, hints)
    outcome = solve_joint(
        problems,
        coefs,
        time_limit_s=time_limit_s,
        hints=start,
        engine=engine,
        shared_protection=True,
        strengthen=strengthen,
        relax_unproven=True,
    )
    if outcome.x is None:
        return JointPlan(
            None,
            None,
            outcome.bound,
            False,
            outcome.status,
            outcome.variables,
            outcome.seconds,
            None,
        )
    objective, unfilled, penalty = _day_objective(problems, outcome.x, coefs)
    cost = objective - penalty
    return JointPlan(
        cost,
        unfilled,
        outcome.bound - penalty,
        outcome.optimal,
        outcome.status,
        outcome.variables,
        outcome.seconds,
        outcome.x,
    )


def _day_problems(
    requests: Sequence[PromiseRequest], prepared: PreparedNetwork, level: ServiceLevel
) -> list[Problem]:
    """Each request's problem over every stocking node, on its own ``requested_at``."""
    channels = {request.cart.channel for request in requests}
    every_date = _dates_matter(prepared.snapshot, level, channels)
    problems: list[Problem] = []
    for request in requests:
        if request.requested_at is None:
            raise ValueError("a jointly planned request needs its requested_at")
        ctx = build_context(request, prepared, request.requested_at, exact=every_date)
        problems.append(build_problem(ctx, level, set(ctx.stocking_nodes(level).tolist())))
    return problems


def _best_start(
    problems: Sequence[Problem],
    coefs: Sequence[Coefficients],
    hints: Sequence[Sequence[PromiseOption]],
) -> list[IntArray] | None:
    """The cheapest of the candidate plans that maps onto the model (None if none does)."""
    start: list[IntArray] | None = None
    start_value = math.inf
    for run in hints:
        mapped = [allocation_of(p, option) for p, option in zip(problems, run, strict=True)]
        xs = [x for x in mapped if x is not None]
        if len(xs) != len(problems):
            continue
        value = _day_objective(problems, xs, coefs)[0]
        if value < start_value:
            start, start_value = xs, value
    return start


def _day_objective(
    problems: Sequence[Problem], xs: Sequence[IntArray], coefs: Sequence[Coefficients]
) -> tuple[int, int, int]:
    """A day plan's objective as a replay of it charges it; its unfilled units and their term.

    Each order's objective (solver/costs.py) with protection charged once over the day on the
    opening stock (module docstring) instead of per order.
    """
    objective = unfilled = penalty = 0
    taken: dict[tuple[int, int], int] = defaultdict(int)
    free: dict[tuple[int, int], int] = {}
    weight = 0
    for problem, x, coef in zip(problems, xs, coefs, strict=True):
        evaluation = evaluate(problem, x, coef)
        missing = int(evaluation.unfilled.sum())
        unfilled += missing
        penalty += coef.unfilled * missing
        objective += evaluation.objective
        if not coef.protected:
            continue
        weight = coef.protection
        units = coef.protected_cells.astype(np.int64) @ x.ravel()
        objective -= coef.protection * int(np.maximum(0, units - coef.protected_free).sum())
        for key, count in zip(coef.protected, units.tolist(), strict=True):
            taken[key] += count
            free[key] = coef.protected[key]
    objective += weight * sum(max(0, count - free[key]) for key, count in taken.items())
    return objective, unfilled, penalty


def _dates_matter(snapshot: Snapshot, level: ServiceLevel, channels: set[str]) -> bool:
    """Whether orders planned together need every dispatch date, not only the first that fits.

    One order's later dates are dominated by the first date that carries its share
    (solver/problem.py); across orders that holds only while no date is scarcer than
    another: no lots in transit (which make later dates richer), and no pick labour or
    carrier capacity at the level that could run out. A limit cannot run out when it covers
    every unit the node can promise to the orders' ``channels`` (free on hand after holds,
    safety stock and the channel's buffer; a package carries at least one unit); a zero
    limit ships nothing on any reading. Otherwise every date stays in the model.
    """
    if any(row.in_transit for row in snapshot.inventory):
        return True
    kinds = {node.node_id: node.kind for node in snapshot.nodes}
    units: dict[str, int] = defaultdict(int)
    for channel in channels:
        policy = snapshot.policy(channel)
        if policy is None:
            return True  # no answer to reason about: keep every date
        free: dict[str, int] = defaultdict(int)
        for row in snapshot.inventory:
            buffer = policy.buffer_units(kinds[row.node_id], row.on_hand)
            free[row.node_id] += max(0, row.on_hand - row.reserved - row.safety_stock - buffer)
        for node_id, count in free.items():
            units[node_id] = max(units[node_id], count)

    def binds(limit: int | None, most: int) -> bool:
        """Whether ``limit`` can run out before ``most`` is used."""
        return limit is not None and 0 < limit < most

    for node in snapshot.nodes:
        seconds = node.pick_seconds * units[node.node_id]
        minutes = [node.daily_labour_minutes, *node.labour_minutes.values()]
        if node.pick_seconds > 0 and any(binds(m, -(-seconds // 60)) for m in minutes):
            return True
    for service in snapshot.services:
        if service.service_level is not level:
            continue
        for node in snapshot.nodes:
            limits = [
                service.daily_capacity,
                service.daily_capacity_by_node.get(node.node_id),
                *service.remaining_capacity.get(node.node_id, {}).values(),
            ]
            if any(binds(c, units[node.node_id]) for c in limits):
                return True
    return False


def allocation_of(problem: Problem, option: PromiseOption) -> IntArray | None:
    """``option`` as an allocation of ``problem`` (None when a package has no slot there)."""
    ctx = problem.ctx
    x = np.zeros(problem.avail.shape, dtype=np.int64)
    line_pos = {line.line.line_id: i for i, line in enumerate(ctx.lines)}
    service_ids = np.array([s.service_id for s in problem.slot_service], dtype=object)
    for shipment in option.shipments:
        node = ctx.index.node_pos.get(shipment.node_id, -1)
        match = np.flatnonzero(
            (problem.slot_node == node)
            & (problem.slot_date == shipment.ship_date.toordinal())
            & (service_ids == shipment.carrier_service_id)
        )
        if not match.size:
            return None
        for line in shipment.lines:
            x[line_pos[line.line_id], int(match[0])] += line.quantity
    return x
