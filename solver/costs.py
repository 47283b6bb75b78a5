"""Objective coefficients of a problem and the exact evaluation of an allocation.

An allocation is an integer matrix ``X`` (lines × slots) of units. The MIP minimises the same
objective this module evaluates; the independent checker recomputes it from domain types.

Without ``allow_partial`` the caller wants the cheapest complete answer whenever one exists
(docs/model.md, "Outcomes"). The engines get that from one objective: each unfilled unit then
costs more than the whole range of every other term (``Coefficients.unfilled``), so fewer
unfilled units always win, and among complete answers the order is the contract's. The range
of the objective is bounded up front; a request whose objective could leave the integers
every engine represents exactly is refused, naming the weight that contributes most. So is one
whose margin floor, in its exact integer form, could (a floor with six decimal places scales
every price by up to 10^8).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from models import ServiceLevel, scale_cents
from models import scale_cents_array as scaled
from solver.calendar import LEVEL_DEADLINE_DAYS
from solver.errors import InvalidRequestError
from solver.problem import CartContext, Problem

__all__ = [
    "MAX_OBJECTIVE",
    "Coefficients",
    "Evaluation",
    "MarginFloorRangeError",
    "ObjectiveRangeError",
    "coefficients",
    "evaluate",
    "meets_floor",
    "unfilled_cost",
]

IntArray = npt.NDArray[np.int64]
# Largest objective magnitude any model may reach: exact in a double as well as in CP-SAT's
# int64 arithmetic (which refuses a model whose terms could overflow).
MAX_OBJECTIVE = 2**53


class ObjectiveRangeError(InvalidRequestError):
    """The weights make the objective too large to be represented exactly."""

    type = "urn:promise-engine:problem:objective-range"
    status = 422
    title = "Objective range"

    def __init__(self, weight: str, bound: int) -> None:
        """Name the weight that contributes most to the out-of-range objective."""
        super().__init__(
            f"with these weights and this cart the objective could reach {bound}, beyond the "
            f"{MAX_OBJECTIVE} the solver represents exactly; {weight} contributes most: lower it",
            ("weights", weight),
        )


class MarginFloorRangeError(InvalidRequestError):
    """The margin floor's exact form (``a × margin ≥ b × revenue``) is too large to represent."""

    type = "urn:promise-engine:problem:margin-floor-range"
    status = 422
    title = "Margin floor range"

    def __init__(self, floor_pct: float, bound: int, *, from_policy: bool) -> None:
        """Say whose floor it is and how to bring it into range."""
        whose = "the channel policy's margin floor" if from_policy else "min_margin_pct"
        super().__init__(
            f"{whose} of {floor_pct} % on this cart's prices makes the exact margin check reach "
            f"{bound}, beyond the {MAX_OBJECTIVE} the solver represents exactly: give the floor "
            "fewer decimal places",
            ("min_margin_pct",),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Coefficients:
    """Integer objective coefficients (docs/model.md, "Objective")."""

    unit: IntArray  # lines × slots: pick labour + unit cost − revenue, per unit
    package: IntArray  # per slot: base rate + handling + split penalty, per package
    per_kg: IntArray  # per slot, per billable kg
    split: int  # refunded once when anything ships (the first package is no split)
    lateness: int  # per day from the order date to the promised date
    protection: int  # per unit taken below a node's protection level
    unfilled: int  # per unfilled unit (above every other term's range without allow_partial)
    protected: dict[tuple[int, int], int]  # (node, sku) → units free of protection cost
    protected_cells: npt.NDArray[np.bool_]  # keys × (lines·slots): cells drawing on each key
    protected_free: IntArray  # per key, in the order of ``protected``
    pick_seconds: IntArray  # per slot: pick seconds per unit at the slot's node
    real_unit: IntArray  # lines × slots: unit cost + pick cost, cents (for margins)
    opportunity: IntArray  # lines × slots: opportunity cost per unit, cents, unweighted
    real_package: IntArray  # per slot: base + handling, cents
    pick_cost: IntArray  # per slot: pick labour per unit, cents
    protected_count: IntArray  # ``protected_cells`` as 0/1 integers, for evaluation


def coefficients(problem: Problem) -> Coefficients:
    """Compute the objective coefficients of ``problem`` with the context's weights."""
    ctx = problem.ctx
    w = ctx.weights
    index = ctx.index
    slot_node = problem.slot_node
    handling = index.node_handling[slot_node]
    pick_cost = index.node_pick_cost[slot_node]
    # Per candidate node, then spread to its slots (slot_node is sorted like the candidates).
    candidates = np.array(problem.candidates, dtype=np.int64)
    block = np.searchsorted(candidates, slot_node)
    seconds = [index.nodes[node].pick_seconds for node in problem.candidates]
    pick_seconds = np.array(seconds, dtype=np.int64)[block]
    unit_cost, opportunity = _stock_costs(ctx, problem.candidates, block)
    unit = (
        scaled(w.labour, pick_cost)[None, :]
        + scaled(w.unit_cost, unit_cost)
        + scaled(w.opportunity, opportunity)
        - scaled(w.revenue, ctx.price)[:, None]
    )
    package = scaled(w.shipping, problem.slot_base) + scaled(w.handling, handling) + w.split_penalty
    protected = _protected(ctx, problem.candidates)
    if protected:
        keys = np.array(list(protected), dtype=np.int64)
        cells = (
            (ctx.line_sku[None, :] == keys[:, 1:2])[:, :, None]
            & (slot_node[None, :] == keys[:, 0:1])[:, None, :]
        ).reshape(len(protected), problem.avail.size)
    else:
        cells = np.zeros((0, problem.avail.size), dtype=np.bool_)
    per_kg = scaled(w.shipping, problem.slot_per_kg)
    unfilled = unfilled_cost(ctx, problem.level)
    return Coefficients(
        unit=unit,
        package=package.astype(np.int64),
        per_kg=per_kg,
        split=w.split_penalty,
        lateness=w.lateness_per_day,
        protection=w.protection_per_unit,
        unfilled=unfilled,
        protected=protected,
        protected_cells=cells,
        protected_free=np.array(list(protected.values()), dtype=np.int64),
        pick_seconds=pick_seconds,
        real_unit=unit_cost + pick_cost[None, :],
        opportunity=opportunity,
        real_package=problem.slot_base + handling,
        pick_cost=pick_cost,
        protected_count=cells.astype(np.int64),
    )


def _stock_costs(
    ctx: CartContext, candidates: tuple[int, ...], block: IntArray
) -> tuple[IntArray, IntArray]:
    """Unit cost and opportunity cost (lines × slots) of each line's SKU at each slot's node.

    ``block`` is each slot's position among ``candidates``; 0 where the node has no stock.
    """
    at = np.array([ctx.stock_pos.get(node, -1) for node in candidates], dtype=np.int64)[block]
    if not (at >= 0).any():
        empty = np.zeros((len(ctx.lines), block.size), dtype=np.int64)
        return empty, empty.copy()
    rows = np.maximum(at, 0)
    stocked = (at >= 0)[None, :] & (ctx.stock_row[rows].T >= 0)
    return (
        np.where(stocked, ctx.stock_unit_cost[rows].T, 0),
        np.where(stocked, ctx.stock_opportunity[rows].T, 0),
    )


def _protected(ctx: CartContext, candidates: tuple[int, ...]) -> dict[tuple[int, int], int]:
    """(node, SKU) → units free of protection cost, for the candidates that protect stock."""
    protected: dict[tuple[int, int], int] = {}
    nodes = ctx.index.nodes
    skus: list[int] | None = None
    for node in candidates:
        keep = nodes[node].protection_units
        if keep <= 0:
            continue
        if skus is None:
            # In the set's own order: the keys' order is the order of the model's rows.
            skus = list(set(ctx.line_sku.tolist()))
        at = ctx.stock_pos.get(node)
        if at is None:
            continue
        for sku in skus:
            line = ctx.sku_line.get(sku)
            if line is not None and ctx.stock_row[at, line] >= 0:
                protected[(node, sku)] = max(0, int(ctx.stock_last[at, line]) - keep)
    return protected


def unfilled_cost(ctx: CartContext, level: ServiceLevel) -> int:
    """Cost per unfilled unit of ``level``, once its objective and margin ranges are checked.

    Both depend on the cart and the level only, so every model of the level shares them.
    """
    found = ctx.unfilled.get(level)
    if found is None:
        found = _unfilled_cost(ctx, level)
        _check_margin_floor(ctx, level)
        ctx.unfilled[level] = found
    return found


def _unfilled_cost(ctx: CartContext, level: ServiceLevel) -> int:
    """Cost per unfilled unit, after checking that every objective stays in range.

    Bounds the objective without the unfilled term of every answer of the level, over every
    node that stocks the cart (not only the model's candidates, so the cost is the same for
    every candidate set): ``high`` from above, ``low`` from below. Without ``allow_partial`` an
    unfilled unit costs ``high − low + 1``, more than any difference between two answers that
    fill the same number of units.
    """
    w = ctx.weights
    cart = _cart_terms(ctx)
    units, packages, kg = cart["units"], cart["packages"], cart["kg"]
    rates = [r for s in ctx.index.snapshot.services if s.service_level is level for r in s.rates]
    base = max((r.base for r in rates), default=0)
    per_kg = max((r.per_kg for r in rates), default=0)
    package = scale_cents(w.shipping, base) + cart["handling"] + w.split_penalty
    terms = {
        "unit_cost": cart["unit_cost"],
        "opportunity": cart["opportunity"],
        "revenue": cart["revenue"],
        "shipping": packages * package + kg * scale_cents(w.shipping, per_kg),
        "lateness_per_day": w.lateness_per_day * LEVEL_DEADLINE_DAYS[level],
        "protection_per_unit": w.protection_per_unit * units,
    }
    high = sum(v for k, v in terms.items() if k != "revenue")
    low = -terms["revenue"] - w.split_penalty
    unfilled = w.unfilled_per_unit if ctx.request.allow_partial else high - low + 1
    terms["unfilled_per_unit"] = unfilled * units
    bound = high - low + terms["unfilled_per_unit"]
    if bound > MAX_OBJECTIVE:
        # Without allow_partial the unfilled cost derives from the others: name one of them.
        named = terms if ctx.request.allow_partial else {**terms, "unfilled_per_unit": 0}
        raise ObjectiveRangeError(max(named, key=lambda k: named[k]), bound)
    return unfilled


def _cart_terms(ctx: CartContext) -> dict[str, int]:
    """The parts of the objective's bounds that every level of the cart shares (kept in ctx)."""
    if ctx.cart_terms:
        return ctx.cart_terms
    w = ctx.weights
    qty = ctx.qty
    units = int(qty.sum())
    packages = min(ctx.max_shipments, units)
    pick = int(ctx.index.node_pick_cost[ctx.stock_nodes].max(initial=0))
    handling = int(ctx.index.node_handling[ctx.stock_nodes].max(initial=0))
    unit_high = scaled(w.labour, np.array([pick])) + scaled(w.unit_cost, ctx.stock_unit_cost)
    opportunity_high = scaled(w.opportunity, ctx.stock_opportunity).max(axis=0, initial=0)
    ctx.cart_terms.update(
        units=units,
        packages=packages,
        kg=int(ctx.weight_g @ qty) // 1000 + packages,  # ceil per package, at least 1 kg each
        handling=scale_cents(w.handling, handling),
        unit_cost=int((unit_high.max(axis=0, initial=0) * qty).sum()),
        opportunity=int((opportunity_high * qty).sum()),
        revenue=int((scaled(w.revenue, ctx.price) * qty).sum()),
    )
    return ctx.cart_terms


def _check_margin_floor(ctx: CartContext, level: ServiceLevel) -> None:
    """Refuse a margin floor whose exact constraint could leave the integers represented exactly.

    The MIP states the floor ``f`` as ``a × margin ≥ b × revenue`` with ``b / a = f / 100``
    reduced, so each unit's term is ``price × (a − b) − a × cost``: at most ``a × (price +
    cost)``. Bounded like the objective (every line filled from its dearest stocking node, every
    package at the level's dearest rate), and by the same ``MAX_OBJECTIVE``; beyond it numpy's
    int64 products could wrap silently and CP-SAT refuses the model as a possible overflow.
    """
    if ctx.margin_floor is None:
        return
    a, _ = ctx.margin_floor
    qty = [line.line.quantity for line in ctx.lines]
    price = [line.line.unit_price for line in ctx.lines]
    pick = int(ctx.index.node_pick_cost[ctx.stock_nodes].max(initial=0))
    handling = int(ctx.index.node_handling[ctx.stock_nodes].max(initial=0))
    dearest = ctx.stock_unit_cost.max(axis=0, initial=0).tolist()
    rates = [r for s in ctx.index.snapshot.services if s.service_level is level for r in s.rates]
    base = max((r.base for r in rates), default=0)
    per_kg = max((r.per_kg for r in rates), default=0)
    units = sum(qty)
    packages = min(ctx.max_shipments, units)
    kg = sum(line.weight_g * line.line.quantity for line in ctx.lines) // 1000 + packages
    # Python integers: the bound itself must not wrap.
    money = sum(q * (p + int(c) + pick) for q, p, c in zip(qty, price, dearest, strict=True))
    bound = a * (money + packages * (base + handling) + kg * per_kg)
    if bound > MAX_OBJECTIVE:
        floor_pct = ctx.request.min_margin_pct
        from_policy = floor_pct is None
        shown = ctx.policy.min_margin_pct if floor_pct is None else floor_pct
        raise MarginFloorRangeError(shown or 0.0, bound, from_policy=from_policy)


@dataclasses.dataclass(frozen=True, slots=True)
class Evaluation:
    """Exact objective and money of an allocation."""

    objective: int
    used: IntArray  # slots that ship at least one unit
    billable_kg: IntArray  # per slot
    shipped: IntArray  # per line
    unfilled: IntArray  # per line
    promised_days: int  # delivery − order date of the latest package (0 when nothing ships)
    fulfilment: int  # shipping + handling + labour, cents
    opportunity: int  # opportunity cost of the stock taken, cents, unweighted
    revenue: int
    margin: int


def billable_kg(problem: Problem, x: IntArray) -> IntArray:
    """Billable kg per slot: the package weight rounded up, at least 1 when it ships."""
    kg = np.zeros(problem.n_slots, dtype=np.int64)
    used = np.flatnonzero(x.sum(axis=0) > 0)
    kg[used] = np.maximum(-(-(problem.ctx.weight_g @ x[:, used]) // 1000), 1)
    return kg


def evaluate(problem: Problem, x: IntArray, coef: Coefficients) -> Evaluation:
    """Objective (docs/model.md) and money of allocation ``x`` (lines × slots).

    The same allocation is evaluated several times in one solve (a greedy start when it is
    built, again as a start of the search, the answer when it is built): the problem keeps
    what it evaluated, by the allocation's bytes, for the coefficients given.
    """
    key = (x.shape, x.dtype.str, x.tobytes())
    known = problem.evaluated.get(key)
    if known is not None and known[0] is coef:
        return known[1]
    found = _evaluate(problem, x, coef)
    problem.evaluated[key] = (coef, found)
    return found


def _evaluate(problem: Problem, x: IntArray, coef: Coefficients) -> Evaluation:
    """The evaluation of ``evaluate``, computed."""
    # Called for every start, package and answer of every level: each term reads only the
    # slots that ship (``used``), with the per-line arrays the context keeps.
    ctx = problem.ctx
    column = x.sum(axis=0)
    shipped = x.sum(axis=1)
    unfilled = ctx.qty - shipped
    used = np.flatnonzero(column > 0)
    kg_used = np.maximum(-(-(ctx.weight_g @ x[:, used]) // 1000), 1)
    kg = np.zeros(column.size, dtype=np.int64)
    kg[used] = kg_used
    promised = int(problem.slot_days[used].max()) if used.size else 0
    per_kg = int(problem.slot_per_kg[used] @ kg_used)
    base = int(problem.slot_base[used].sum())
    # Lateness counts days after the order date, never fewer than 0 (docs/model.md).
    objective = int(np.vdot(coef.unit, x))
    objective += int(coef.package[used].sum()) + int(coef.per_kg[used] @ kg_used)
    if used.size:
        objective += coef.lateness * max(0, promised) - coef.split
    if coef.protected:
        taken = coef.protected_count @ x.ravel()
        objective += coef.protection * int(np.maximum(0, taken - coef.protected_free).sum())
    objective += coef.unfilled * int(unfilled.sum())
    handling = int(coef.real_package[used].sum()) - base
    pick = int(coef.pick_cost[used] @ column[used])
    revenue = int(ctx.price @ shipped)
    unit_cost = int(np.vdot(coef.real_unit, x)) - pick
    fulfilment = base + per_kg + handling + pick
    return Evaluation(
        objective=objective,
        used=used,
        billable_kg=kg,
        shipped=shipped,
        unfilled=unfilled,
        promised_days=promised,
        fulfilment=fulfilment,
        opportunity=int(np.vdot(coef.opportunity, x)),
        revenue=revenue,
        margin=revenue - unit_cost - fulfilment,
    )


def meets_floor(problem: Problem, evaluation: Evaluation) -> bool:
    """Whether the evaluated answer keeps the margin floor (exact: docs/model.md, "Shipments")."""
    scale = problem.ctx.margin_floor
    if scale is None:
        return True
    a, b = scale
    return a * evaluation.margin >= b * evaluation.revenue
