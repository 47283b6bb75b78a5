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
                   1000 · kg[j] ≥ Σ_l w_l x[l,j];  kg[j] ≥ y[j];  y[j] ≤ a ≤ Σ_j y[j]
(4) capacity       y[j] ≤ capacity(n(j), s(j), d(j))
(5) labour         Σ_{l, j ∈ (n,d)} pick_s(n) · x[l,j] ≤ 60 · labour_minutes(n, d)
(6) max shipments  Σ_j y[j] ≤ K
(7) promise        T ≥ t_j · y[j];  0 ≤ T ≤ deadline(level)  (lateness never below 0)
(8) margin floor   Σ (p_l(1 − f) − unit_cost − pick) x − Σ (base + handling) y − Σ per_kg kg ≥ 0
(protection)       p[n,k] ≥ Σ_{l: k(l)=k, j: n(j)=n} x[l,j] − free(n,k)

Objective  min Σ c_lj x + Σ (base_j + handling + split) y + Σ per_kg_j kg − split · a
               + lateness · T + protection · Σ p + unfilled · Σ u

The model is written straight into the CP-SAT proto from index arrays: measured 2-3× cheaper
than building it expression by expression, which matters at a few milliseconds per solve.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import numpy.typing as npt
from ortools.sat.python import cp_model
from ortools.sat.python import cp_model_helper as cmh

from solver.costs import Coefficients, billable_kg
from solver.problem import Problem

__all__ = ["MipModel", "MipOutcome", "build_model", "solve_mip", "solver_parameters"]

IntArray = npt.NDArray[np.int64]
INF = np.iinfo(np.int64).max
# Below this a search cannot even load its hint: the caller's start stands instead.
MIN_SEARCH_S = 0.001


@dataclasses.dataclass(frozen=True, slots=True)
class MipOutcome:
    """What CP-SAT returned: an allocation (or None), whether it is proven optimal, size.

    ``cp_status`` is CP-SAT's own status name (``NOT_STARTED`` when no time was left to
    search once the model was built); ``error`` says the model itself was refused or found
    infeasible (shipping nothing is always feasible, so either is a bug, not a time-out).
    """

    x: IntArray | None
    optimal: bool
    variables: int
    cp_status: str
    error: str | None = None


class _Proto:
    """Appends variables and constraints to a CP-SAT model proto."""

    def __init__(self, proto: cmh.CpModelProto | None = None) -> None:
        """Start an empty model, or append to ``proto`` (several carts in one model)."""
        self.proto = cmh.CpModelProto() if proto is None else proto
        self.count = len(self.proto.variables)

    def variables(self, lower: IntArray | list[int], upper: IntArray | list[int]) -> IntArray:
        """New integer variables with the given bounds; returns their indices."""
        start = self.count
        for lo, hi in zip(lower, upper, strict=True):
            self.proto.variables.add().domain.extend((int(lo), int(hi)))
        self.count += len(upper)
        return np.arange(start, self.count, dtype=np.int64)

    def linear(
        self, variables: IntArray | list[int], coeffs: IntArray | list[int], lo: int, hi: int
    ) -> None:
        """Add ``lo <= Σ coeffs · variables <= hi``."""
        constraint = self.proto.constraints.add().linear
        constraint.vars.extend([int(v) for v in variables])
        constraint.coeffs.extend([int(c) for c in coeffs])
        constraint.domain.extend((int(lo), int(hi)))

    def at_most_one(self, literals: list[int]) -> None:
        """At most one of the Boolean variables is true."""
        self.proto.constraints.add().at_most_one.literals.extend(literals)


@dataclasses.dataclass(frozen=True, slots=True)
class _Vars:
    """Variable indices of one model; x entries are (line, slot) pairs with an upper bound."""

    xi: IntArray  # line of each x
    xj: IntArray  # slot of each x
    x_ub: IntArray
    x: IntArray
    slots: IntArray  # slots with a package variable, ascending
    y: IntArray  # aligned with slots
    kg: IntArray  # aligned with slots
    u: IntArray  # per line
    any_ship: int
    promised: int
    protected_keys: tuple[tuple[int, int], ...]
    protected: IntArray  # aligned with protected_keys

    def y_of(self, slots: IntArray) -> IntArray:
        """Package variables of the given slots."""
        return self.y[np.searchsorted(self.slots, slots)]


def _variables(problem: Problem, coef: Coefficients, m: _Proto) -> _Vars:
    """X only where the slot's node has ATP for the line and capacity is not zero."""
    qty = np.array([line.line.quantity for line in problem.ctx.lines], dtype=np.int64)
    avail = problem.avail.copy()
    avail[:, problem.slot_capacity == 0] = 0
    xi, xj = np.nonzero(avail > 0)
    ub = np.minimum(qty[xi], avail[xi, xj])
    seconds = coef.pick_seconds[xj]
    labour = problem.slot_labour[xj]
    limited = (labour >= 0) & (seconds > 0)
    ub = np.where(limited, np.minimum(ub, labour // np.maximum(seconds, 1)), ub)
    keep = ub > 0
    xi, xj, ub = xi[keep], xj[keep], ub[keep]
    x = m.variables(np.zeros_like(ub), ub)
    slots = np.unique(xj)
    y = m.variables(np.zeros(slots.size, dtype=np.int64), np.ones(slots.size, dtype=np.int64))
    max_kg = int(sum(line.weight_g * line.line.quantity for line in problem.ctx.lines)) // 1000 + 1
    kg = m.variables(np.zeros(slots.size, dtype=np.int64), np.full(slots.size, max_kg))
    u = m.variables(np.zeros(qty.size, dtype=np.int64), qty)
    any_ship, promised = m.variables([0, 0], [1, max(0, problem.deadline_days)]).tolist()
    line_sku = np.array([line.sku_index for line in problem.ctx.lines], dtype=np.int64)
    drawn = set(zip(problem.slot_node[xj].tolist(), line_sku[xi].tolist(), strict=True))
    keys = tuple(key for key in coef.protected if key in drawn)
    # Units below protection never exceed the cart's units: a tight bound keeps the model's
    # terms far from int64 overflow whatever the protection weight.
    protected = m.variables(np.zeros(len(keys), dtype=np.int64), np.full(len(keys), qty.sum()))
    return _Vars(xi, xj, ub, x, slots, y, kg, u, any_ship, promised, keys, protected)


def _demand(problem: Problem, v: _Vars, m: _Proto) -> None:
    """(1) Every unit of a line is shipped or unfilled."""
    for i, line in enumerate(problem.ctx.lines):
        members = v.x[v.xi == i]
        q = line.line.quantity
        m.linear([*members.tolist(), int(v.u[i])], [1] * (members.size + 1), q, q)


def _groups(*keys: IntArray) -> list[list[int]]:
    """Positions of the x entries grouped by equal key tuples (plain Python: groups are tiny)."""
    found: dict[tuple[int, ...], list[int]] = {}
    for position, key in enumerate(zip(*(k.tolist() for k in keys), strict=True)):
        found.setdefault(key, []).append(position)
    return list(found.values())


def _availability(problem: Problem, v: _Vars, m: _Proto) -> None:
    """(2) Units of a SKU from a node by each slot date stay within that date's ATP."""
    line_sku = np.array([line.sku_index for line in problem.ctx.lines], dtype=np.int64)
    date = problem.slot_date[v.xj].tolist()
    ub = v.x_ub.tolist()
    for group in _groups(problem.slot_node[v.xj], line_sku[v.xi]):
        if len(group) == 1:
            continue  # its bound already holds it to its ATP
        for day in sorted({date[g] for g in group}):
            within = [g for g in group if date[g] <= day]
            first = next(g for g in group if date[g] == day)
            limit = int(problem.avail[v.xi[first], v.xj[first]])
            if sum(ub[g] for g in within) > limit:
                m.linear(v.x[within], [1] * len(within), 0, limit)


def _linking(problem: Problem, v: _Vars, m: _Proto) -> None:
    """(3) Units need their package; one service per node and date; billable kg; any-ship."""
    weight = np.array([line.weight_g for line in problem.ctx.lines], dtype=np.int64)
    y_of_x = v.y_of(v.xj)
    for x, y, ub in zip(v.x.tolist(), y_of_x.tolist(), v.x_ub.tolist(), strict=True):
        m.linear([x, y], [1, -ub], -INF, 0)
    by_slot = _groups(v.xj)
    for members in by_slot:
        k = int(np.searchsorted(v.slots, v.xj[members[0]]))
        y, kg = int(v.y[k]), int(v.kg[k])
        m.linear([kg, *v.x[members].tolist()], [1000, *(-weight[v.xi[members]]).tolist()], 0, INF)
        m.linear([kg, y], [1, -1], 0, INF)
        m.linear([v.any_ship, y], [1, -1], 0, INF)
    # Nothing ships, nothing refunded: the split refund needs a package (cause of a too cheap
    # empty answer when any_ship was only bounded from below).
    m.linear([v.any_ship, *v.y.tolist()], [1] + [-1] * v.y.size, -INF, 0)
    node_day = problem.slot_node[v.slots] * 1_000_000 + problem.slot_date[v.slots]
    for key in np.unique(node_day).tolist():
        same = v.y[node_day == key]
        if same.size > 1:
            m.at_most_one(same.tolist())


def _capacity(problem: Problem, v: _Vars, m: _Proto) -> None:
    """(4) A package needs carrier capacity left on its (node, service, date)."""
    for k, j in enumerate(v.slots.tolist()):
        if problem.slot_capacity[j] == 0:
            m.linear([int(v.y[k])], [1], 0, 0)


def _labour(problem: Problem, coef: Coefficients, v: _Vars, m: _Proto) -> None:
    """(5) Pick seconds per (node, date) stay within the remaining labour."""
    labour = problem.slot_labour[v.xj]
    seconds = coef.pick_seconds[v.xj]
    limited = np.flatnonzero((labour >= 0) & (seconds > 0))
    for group in _groups(problem.slot_node[v.xj[limited]], problem.slot_date[v.xj[limited]]):
        members = limited[group]
        if members.size > 1:
            m.linear(v.x[members], seconds[members], 0, int(labour[members[0]]))


def _max_shipments(problem: Problem, v: _Vars, m: _Proto) -> None:
    """(6) At most K packages."""
    if v.y.size > problem.ctx.max_shipments:
        m.linear(v.y, np.ones(v.y.size, dtype=np.int64), 0, problem.ctx.max_shipments)


def _promise(problem: Problem, v: _Vars, m: _Proto) -> None:
    """(7) The promised day is at least every package's delivery day (deadline bounds T)."""
    for k, j in enumerate(v.slots.tolist()):
        days = int(problem.slot_days[j])
        if days > 0:
            m.linear([v.promised, int(v.y[k])], [1, -days], 0, INF)


def _margin_floor(problem: Problem, coef: Coefficients, v: _Vars, m: _Proto) -> None:
    """(8) a × margin >= b × revenue: the floor share b/a of revenue, exactly."""
    scale = problem.ctx.margin_floor
    if scale is None:
        return
    a, b = scale
    price = np.array([line.line.unit_price for line in problem.ctx.lines], dtype=np.int64)
    unit = price[v.xi] * (a - b) - a * coef.real_unit[v.xi, v.xj]
    package = -a * coef.real_package[v.slots]
    per_kg = -a * problem.slot_per_kg[v.slots]
    m.linear(np.concatenate([v.x, v.y, v.kg]), np.concatenate([unit, package, per_kg]), 0, INF)


def _protection(problem: Problem, coef: Coefficients, v: _Vars, m: _Proto) -> None:
    """Units taken below a node's protection level are counted in p[n,k]."""
    if not v.protected_keys:
        return
    line_sku = np.array([line.sku_index for line in problem.ctx.lines], dtype=np.int64)
    node = problem.slot_node[v.xj]
    sku = line_sku[v.xi]
    for (n, k), p in zip(v.protected_keys, v.protected.tolist(), strict=True):
        members = v.x[(node == n) & (sku == k)]
        m.linear([p, *members.tolist()], [1] + [-1] * members.size, -coef.protected[n, k], INF)


def _objective(coef: Coefficients, v: _Vars, m: _Proto) -> None:
    """Minimise the weighted cost of docs/model.md."""
    parts = [
        (v.x, coef.unit[v.xi, v.xj]),
        (v.y, coef.package[v.slots]),
        (v.kg, coef.per_kg[v.slots]),
        (np.array([v.any_ship, v.promised]), np.array([-coef.split, coef.lateness])),
        (v.protected, np.full(v.protected.size, coef.protection)),
        (v.u, np.full(v.u.size, coef.unfilled)),
    ]
    variables = np.concatenate([p[0] for p in parts])
    coeffs = np.concatenate([p[1] for p in parts]).astype(np.int64)
    nonzero = coeffs != 0
    m.proto.objective.vars.extend(variables[nonzero].tolist())
    m.proto.objective.coeffs.extend(coeffs[nonzero].tolist())


def _hint(problem: Problem, coef: Coefficients, v: _Vars, m: _Proto, x0: IntArray) -> None:
    """Start the search from a known feasible allocation (a greedy answer), hinted completely."""
    used = x0.sum(axis=0) > 0
    kg = billable_kg(problem, x0)
    days = problem.slot_days[used]
    shipped = x0.sum(axis=1)
    qty = np.array([line.line.quantity for line in problem.ctx.lines], dtype=np.int64)
    line_sku = np.array([line.sku_index for line in problem.ctx.lines], dtype=np.int64)
    taken = [
        int(x0[np.ix_(line_sku == k, problem.slot_node == n)].sum()) for n, k in v.protected_keys
    ]
    free = np.array([coef.protected[key] for key in v.protected_keys], dtype=np.int64)
    values = np.concatenate(
        [
            x0[v.xi, v.xj],
            used[v.slots].astype(np.int64),
            kg[v.slots],
            qty - shipped,
            np.array([int(used.any()), max(0, int(days.max())) if days.size else 0]),
            np.maximum(0, np.array(taken, dtype=np.int64) - free),
        ]
    )
    variables = np.concatenate(
        [v.x, v.y, v.kg, v.u, np.array([v.any_ship, v.promised]), v.protected]
    )
    m.proto.solution_hint.vars.extend(variables.tolist())
    m.proto.solution_hint.values.extend(values.tolist())


def solver_parameters(time_limit_s: float, workers: int, seed: int) -> cmh.SatParameters:
    """Solver parameters: one worker, presolve, cuts and probing off, a time limit.

    Measured on generated 10- and 20-line carts (bench/solve_latency.py): presolve, cuts and
    probing cost more time than they save on models this small, and a second worker is slower
    on 2 cores.
    """
    params = cmh.SatParameters()
    params.num_workers = workers
    params.cp_model_presolve = False
    params.cut_level = 0
    params.cp_model_probing_level = 0
    params.max_time_in_seconds = max(0.001, time_limit_s)
    params.random_seed = seed
    return params


@dataclasses.dataclass(frozen=True, slots=True)
class MipModel:
    """One cart's model inside a proto: its variables and coefficients."""

    problem: Problem
    coef: Coefficients
    v: _Vars
    count: int  # variables of the whole proto once this cart's model was added

    def allocation(self, solution: IntArray) -> IntArray:
        """The cart's allocation (lines × slots) from a solution of the whole proto."""
        x = np.zeros(self.problem.avail.shape, dtype=np.int64)
        x[self.v.xi, self.v.xj] = solution[self.v.x]
        return x


def build_model(
    problem: Problem,
    coef: Coefficients,
    *,
    hint: IntArray | None,
    into: cmh.CpModelProto | None = None,
) -> MipModel:
    """Write the cart's model (every constraint family and its objective) into a proto."""
    m = _Proto(into)
    v = _variables(problem, coef, m)
    _demand(problem, v, m)
    _availability(problem, v, m)
    _linking(problem, v, m)
    _capacity(problem, v, m)
    _labour(problem, coef, v, m)
    _max_shipments(problem, v, m)
    _promise(problem, v, m)
    _margin_floor(problem, coef, v, m)
    _protection(problem, coef, v, m)
    _objective(coef, v, m)
    if hint is not None:
        _hint(problem, coef, v, m, hint)
    return MipModel(problem, coef, v, m.count)


def solve_mip(
    problem: Problem,
    coef: Coefficients,
    *,
    hint: IntArray | None,
    deadline: float,
    workers: int = 1,
    seed: int = 0,
) -> MipOutcome:
    """Build and solve the MIP; return the best allocation found by ``deadline``.

    ``deadline`` is a ``time.perf_counter()`` instant: the search gets what is left of it once
    the model is built, so building a large model never pushes the answer past it.
    """
    proto = cmh.CpModelProto()
    model = build_model(problem, coef, hint=hint, into=proto)
    # The bare proto and solve wrapper skip OR-Tools' Python model class, whose constructor
    # alone costs a tenth of a millisecond.
    time_limit_s = deadline - time.perf_counter()
    if time_limit_s < MIN_SEARCH_S:
        return MipOutcome(x=None, optimal=False, variables=model.count, cp_status="NOT_STARTED")
    wrapper = cmh.SolveWrapper()
    wrapper.set_parameters(solver_parameters(time_limit_s, workers, seed))
    response = wrapper.solve(proto)  # type: ignore[no-untyped-call]
    status = response.status
    name = str(status.name)
    if status in (cp_model.MODEL_INVALID, cp_model.INFEASIBLE):
        detail = str(response.solution_info)  # CP-SAT's reason for refusing the model
        error = f"{name}: {detail}" if detail else name
        return MipOutcome(x=None, optimal=False, variables=model.count, cp_status=name, error=error)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return MipOutcome(x=None, optimal=False, variables=model.count, cp_status=name)
    x = model.allocation(np.array(response.solution, dtype=np.int64))
    optimal = status == cp_model.OPTIMAL
    return MipOutcome(x=x, optimal=optimal, variables=model.count, cp_status=name)
