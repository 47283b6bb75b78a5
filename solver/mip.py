"""The sourcing MIP on OR-Tools CP-SAT.

Formulation (docs/model.md gives the exact rules; money in cents, days from the order date):

Sets    l ∈ L lines (sku k(l), qty q_l, weight w_l, price p_l); j ∈ J dispatch slots
        (node n(j), ship date d(j), service s(j), delivery days t_j, rate base_j, per_kg_j).
Vars    x[l,j] ∈ ℤ≥0 units; y[j] ∈ {0,1} a package leaves on slot j; kg[j] ∈ ℤ≥0 billable kg;
        a ∈ {0,1} anything ships; u[l] ∈ ℤ≥0 unfilled; T ∈ ℤ≥0 promised day;
        p[n,k] ∈ ℤ≥0 units taken below n's protection level.

(1) demand         Σ_j x[l,j] + u[l] = q_l
(2) availability   Σ_{l: k(l)=k} Σ_{j: n(j)=n, d(j) ≤ d} x[l,j] ≤ ATP(c,n,k,d)  for each slot date d
(3) linking        x[l,j] ≤ min(q_l, ATP) · y[j];  Σ_{j ∈ (n,d)} y[j] ≤ 1;
                   1000 · kg[j] ≥ Σ_l w_l x[l,j];  kg[j] ≥ y[j];  a ≥ y[j]
(4) capacity       y[j] ≤ capacity(n(j), s(j), d(j))
(5) labour         Σ_{l, j ∈ (n,d)} pick_s(n) · x[l,j] ≤ 60 · labour_minutes(n, d)
(6) max shipments  Σ_j y[j] ≤ K
(7) promise        T ≥ t_j · y[j];  T ≤ deadline(level)
(8) margin floor   Σ (p_l(1 − f) − unit_cost − pick) x − Σ (base + handling) y − Σ per_kg kg ≥ 0
(protection)       p[n,k] ≥ Σ_{l: k(l)=k, j: n(j)=n} x[l,j] − free(n,k)

Objective  min Σ c_lj x + Σ (base_j + handling + split) y + Σ per_kg_j kg − split · a
               + lateness · T + protection · Σ p + unfilled · Σ u
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt
from ortools.sat.python import cp_model

from solver.costs import Coefficients, billable_kg
from solver.problem import Problem

__all__ = ["MipOutcome", "solve_mip"]

IntArray = npt.NDArray[np.int64]
BIG = 1 << 40


@dataclasses.dataclass(frozen=True, slots=True)
class MipOutcome:
    """What CP-SAT returned: an allocation (or None), whether it is proven optimal, size."""

    x: IntArray | None
    optimal: bool
    variables: int


@dataclasses.dataclass(slots=True)
class _Vars:
    """Decision variables of one model."""

    model: cp_model.CpModel
    x: dict[tuple[int, int], cp_model.IntVar]
    x_ub: dict[tuple[int, int], int]
    y: dict[int, cp_model.IntVar]
    kg: dict[int, cp_model.IntVar]
    u: list[cp_model.IntVar]
    any_ship: cp_model.IntVar
    promised: cp_model.IntVar
    protected: dict[tuple[int, int], cp_model.IntVar]


def _variables(problem: Problem, coef: Coefficients) -> _Vars:
    """Create x only where the slot's node has ATP for the line and capacity is not zero."""
    model = cp_model.CpModel()
    qty = [line.line.quantity for line in problem.ctx.lines]
    rows, cols = np.nonzero(problem.avail > 0)
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    x_ub: dict[tuple[int, int], int] = {}
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        if problem.slot_capacity[j] == 0:
            continue
        bound = min(qty[i], int(problem.avail[i, j]))
        seconds = int(coef.pick_seconds[j])
        if problem.slot_labour[j] >= 0 and seconds > 0:
            bound = min(bound, int(problem.slot_labour[j]) // seconds)
        if bound > 0:
            x[i, j] = model.new_int_var(0, bound, "")
            x_ub[i, j] = bound
    used = sorted({j for _, j in x})
    max_kg = sum(line.weight_g * line.line.quantity for line in problem.ctx.lines) // 1000 + 1
    y = {j: model.new_bool_var("") for j in used}
    kg = {j: model.new_int_var(0, max_kg, "") for j in used}
    u = [model.new_int_var(0, q, "") for q in qty]
    drawn = {(int(problem.slot_node[j]), problem.ctx.lines[i].sku_index) for i, j in x}
    protected = {key: model.new_int_var(0, BIG, "") for key in coef.protected if key in drawn}
    return _Vars(
        model=model,
        x=x,
        x_ub=x_ub,
        y=y,
        kg=kg,
        u=u,
        any_ship=model.new_bool_var(""),
        promised=model.new_int_var(0, max(0, problem.deadline_days), ""),
        protected=protected,
    )


def _demand(problem: Problem, v: _Vars) -> None:
    """(1) Every unit of a line is shipped or unfilled."""
    by_line: dict[int, list[cp_model.IntVar]] = {}
    for (i, _), var in v.x.items():
        by_line.setdefault(i, []).append(var)
    for i, line in enumerate(problem.ctx.lines):
        v.model.add(sum(by_line.get(i, [])) + v.u[i] == line.line.quantity)


def _availability(problem: Problem, v: _Vars) -> None:
    """(2) Units of a SKU from a node by each slot date stay within that date's ATP."""
    groups: dict[tuple[int, int], list[tuple[int, int, cp_model.IntVar]]] = {}
    for (i, j), var in v.x.items():
        key = (int(problem.slot_node[j]), problem.ctx.lines[i].sku_index)
        groups.setdefault(key, []).append((i, j, var))
    for members in groups.values():
        dates = sorted({int(problem.slot_date[j]) for _, j, _ in members})
        for day in dates:
            within = [(i, j, var) for i, j, var in members if problem.slot_date[j] <= day]
            i, j, _ = next(m for m in members if problem.slot_date[m[1]] == day)
            limit = int(problem.avail[i, j])
            # Bounds already enforce a single variable's ATP; only sums can exceed it.
            if sum(v.x_ub[i2, j2] for i2, j2, _ in within) > limit:
                v.model.add(sum(var for _, _, var in within) <= limit)


def _linking(problem: Problem, v: _Vars) -> None:
    """(3) Units need their package; one service per node and date; billable kg; any-ship."""
    weights = [line.weight_g for line in problem.ctx.lines]
    by_slot: dict[int, list[tuple[int, cp_model.IntVar]]] = {}
    for (i, j), var in v.x.items():
        v.model.add(var <= v.x_ub[i, j] * v.y[j])
        by_slot.setdefault(j, []).append((i, var))
    by_node_day: dict[tuple[int, int], list[cp_model.IntVar]] = {}
    for j, members in by_slot.items():
        v.model.add(1000 * v.kg[j] >= sum(weights[i] * var for i, var in members))
        v.model.add(v.kg[j] >= v.y[j])
        v.model.add(v.any_ship >= v.y[j])
        key = (int(problem.slot_node[j]), int(problem.slot_date[j]))
        by_node_day.setdefault(key, []).append(v.y[j])
    for ys in by_node_day.values():
        if len(ys) > 1:
            v.model.add_at_most_one(ys)


def _capacity(problem: Problem, v: _Vars) -> None:
    """(4) A package needs carrier capacity left on its (node, service, date)."""
    for j, y in v.y.items():
        capacity = int(problem.slot_capacity[j])
        if 0 <= capacity < 1:
            v.model.add(y == 0)


def _labour(problem: Problem, coef: Coefficients, v: _Vars) -> None:
    """(5) Pick seconds per (node, date) stay within the remaining labour."""
    groups: dict[tuple[int, int], list[cp_model.LinearExpr]] = {}
    limits: dict[tuple[int, int], int] = {}
    for (_, j), var in v.x.items():
        labour = int(problem.slot_labour[j])
        seconds = int(coef.pick_seconds[j])
        if labour < 0 or seconds == 0:
            continue
        key = (int(problem.slot_node[j]), int(problem.slot_date[j]))
        groups.setdefault(key, []).append(seconds * var)
        limits[key] = labour
    for key, terms in groups.items():
        if len(terms) > 1:
            v.model.add(sum(terms) <= limits[key])


def _max_shipments(problem: Problem, v: _Vars) -> None:
    """(6) At most K packages."""
    if len(v.y) > problem.ctx.max_shipments:
        v.model.add(sum(v.y.values()) <= problem.ctx.max_shipments)


def _promise(problem: Problem, v: _Vars) -> None:
    """(7) The promised day is at least every package's delivery day (deadline is T's bound)."""
    for j, y in v.y.items():
        days = int(problem.slot_days[j])
        if days > 0:
            v.model.add(v.promised >= days * y)


def _margin_floor(problem: Problem, coef: Coefficients, v: _Vars) -> None:
    """(8) Margin stays at or above the floor share of revenue (basis points)."""
    bp = problem.ctx.margin_bp
    if bp is None:
        return
    price = [line.line.unit_price for line in problem.ctx.lines]
    terms: list[cp_model.LinearExpr] = []
    for (i, j), var in v.x.items():
        terms.append((price[i] * (10_000 - bp) - 10_000 * int(coef.real_unit[i, j])) * var)
    for j, y in v.y.items():
        terms.append(-10_000 * int(coef.real_package[j]) * y)
        terms.append(-10_000 * int(problem.slot_per_kg[j]) * v.kg[j])
    v.model.add(sum(terms) >= 0)


def _protection(problem: Problem, coef: Coefficients, v: _Vars) -> None:
    """Units taken below a node's protection level are counted in p[n,k]."""
    for (node, sku), var in v.protected.items():
        taken = [
            x
            for (i, j), x in v.x.items()
            if int(problem.slot_node[j]) == node and problem.ctx.lines[i].sku_index == sku
        ]
        v.model.add(var >= sum(taken) - coef.protected[node, sku])


def _objective(coef: Coefficients, v: _Vars) -> None:
    """Minimise the weighted cost of docs/model.md."""
    terms: list[cp_model.LinearExpr] = []
    for (i, j), var in v.x.items():
        c = int(coef.unit[i, j])
        if c:
            terms.append(c * var)
    for j, y in v.y.items():
        terms.append(int(coef.package[j]) * y)
        if coef.per_kg[j]:
            terms.append(int(coef.per_kg[j]) * v.kg[j])
    terms.append(-coef.split * v.any_ship)
    terms.append(coef.lateness * v.promised)
    terms.extend(coef.protection * p for p in v.protected.values())
    terms.extend(coef.unfilled * u for u in v.u)
    v.model.minimize(sum(terms))


def _hint(problem: Problem, coef: Coefficients, v: _Vars, x0: IntArray) -> None:
    """Start the search from a known feasible allocation (a greedy answer)."""
    kg = billable_kg(problem, x0)
    used = x0.sum(axis=0) > 0
    for (i, j), var in v.x.items():
        v.model.add_hint(var, int(x0[i, j]))
    for j, y in v.y.items():
        v.model.add_hint(y, int(used[j]))
        v.model.add_hint(v.kg[j], int(kg[j]))
    v.model.add_hint(v.any_ship, int(used.any()))
    days = problem.slot_days[used]
    v.model.add_hint(v.promised, int(days.max()) if days.size else 0)
    shipped = x0.sum(axis=1)
    for i, u in enumerate(v.u):
        v.model.add_hint(u, problem.ctx.lines[i].line.quantity - int(shipped[i]))
    # A complete hint lets CP-SAT accept it as a first solution without search.
    for (node, sku), p in v.protected.items():
        taken = sum(
            int(x0[i, j])
            for (i, j) in v.x
            if int(problem.slot_node[j]) == node and problem.ctx.lines[i].sku_index == sku
        )
        v.model.add_hint(p, max(0, taken - coef.protected[node, sku]))


def solve_mip(
    problem: Problem,
    coef: Coefficients,
    *,
    hint: IntArray | None,
    time_limit_s: float,
    workers: int = 1,
    seed: int = 0,
) -> MipOutcome:
    """Build and solve the MIP; return the best allocation found within the time limit."""
    v = _variables(problem, coef)
    _demand(problem, v)
    _availability(problem, v)
    _linking(problem, v)
    _capacity(problem, v)
    _labour(problem, coef, v)
    _max_shipments(problem, v)
    _promise(problem, v)
    _margin_floor(problem, coef, v)
    _protection(problem, coef, v)
    _objective(coef, v)
    if hint is not None:
        _hint(problem, coef, v, hint)
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = workers
    params.cp_model_presolve = False
    # Measured on generated 10- and 20-line carts: cuts and probing cost more time than they
    # save on models this small (bench/solve_latency.py).
    params.cut_level = 0
    params.cp_model_probing_level = 0
    params.max_time_in_seconds = max(0.001, time_limit_s)
    params.random_seed = seed
    status = solver.solve(v.model)
    n_vars = len(v.model.proto.variables)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return MipOutcome(x=None, optimal=False, variables=n_vars)
    x = np.zeros(problem.avail.shape, dtype=np.int64)
    for (i, j), var in v.x.items():
        x[i, j] = solver.value(var)
    return MipOutcome(x=x, optimal=status == cp_model.OPTIMAL, variables=n_vars)
