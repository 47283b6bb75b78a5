"""Lower bounds on the objective, used to prove answers optimal without (or beyond) a model.

Every bound here is a floor under the objective of docs/model.md for some family of answers,
built from terms that can only be underestimated:

- a unit of a line costs at least the cheapest unit coefficient of a node holding its SKU
  (within a pair of nodes: the cheaper of the two), or the cost of leaving it unfilled;
- a package from a node costs at least the cheapest fixed part (base rate, handling, split
  penalty) of its eligible services; the refund of one split penalty is counted once;
- billable kg are at least the whole kg of each line (rounded down) at the cheapest rate of a
  node that holds the line, the cart's kg when one node ships it all, and 1 kg per package;
- the promised day is at least the delivery day of the node's first dispatch date (a later
  date never delivers earlier), and lateness is never below 0;
- protection costs are never negative, so they are left out.

``node_bounds`` makes the candidate pre-filter safe: a node the pre-filter dropped can only
improve on an answer if its bound is below that answer's objective; such nodes join the model
and it is solved again (solver/solve.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from models import ServiceLevel, scale_cents, scale_cents_array
from solver.calendar import LEVEL_DEADLINE_DAYS
from solver.costs import Coefficients
from solver.problem import CartContext, Problem

__all__ = ["PAIR_CELLS", "complete_bound", "incomplete_bound", "node_bounds", "split_bound"]

IntArray = npt.NDArray[np.int64]
NONE = np.iinfo(np.int64).max // 4  # "cannot ship": large, yet sums of a few stay in range
# Cells (nodes × partners × lines) of one pair table, a few ms of numpy at most: sharper
# bounds save far more in proofs that need no larger model (measured on 10-line carts).
PAIR_CELLS = 1_000_000


def _quantities(ctx: CartContext) -> IntArray:
    """Units per cart line."""
    return np.array([line.line.quantity for line in ctx.lines], dtype=np.int64)


def complete_bound(problem: Problem, coef: Coefficients, packages: int) -> int | None:
    """A bound no complete answer of ``problem`` with at least ``packages`` packages beats.

    None when no complete answer exists (some line has no slot with ATP).
    """
    if problem.n_slots == 0:
        return None
    masked = np.where(problem.avail > 0, coef.unit, NONE)
    per_line = masked.min(axis=1)
    if (per_line == NONE).any():
        return None
    qty = _quantities(problem.ctx)
    grams = sum(line.weight_g * line.line.quantity for line in problem.ctx.lines)
    # ceil is subadditive and every package bills at least 1 kg.
    kg = max(packages, -(-grams // 1000))
    return int(
        (per_line * qty).sum()
        + packages * coef.package.min()
        - coef.split
        + coef.per_kg.min() * kg
        + coef.lateness * max(0, int(problem.slot_days.min()))
    )


def split_bound(problem: Problem, coef: Coefficients) -> int | None:
    """A bound no complete answer of ``problem`` with two or more packages beats.

    None when no such answer exists. The answer's packages come from a set D of nodes; its
    cost is at least Σ over D of each node's cheapest package, less the one split refund, plus
    each line's units at the cheapest unit cost within D, its kg at the cheapest kg rate
    within D (whole kg, rounded down, or 1 kg per package) and the lateness of the latest
    first delivery day within D. For |D| = 1 (two dates of one node) and |D| = 2 that is
    computed pair by pair, and only for the nodes that hold every line between them; for
    |D| ≥ 3 from the three cheapest packages and the cheapest units anywhere. A priced unit
    (opportunity cost) stays with its node, so a pair that avoids it is bounded by its own
    units, not by the cheapest anywhere: this is what proves a priced single package optimal.
    """
    ctx = problem.ctx
    if problem.n_slots == 0 or ctx.max_shipments < 2:
        return None
    # Slots are grouped by node, nodes ascending (build_problem): reduce over each node's run.
    _, start = np.unique(problem.slot_node, return_index=True)
    usable = problem.slot_capacity != 0
    fixed = np.minimum.reduceat(np.where(usable, coef.package, NONE), start)
    rate = np.minimum.reduceat(np.where(usable, coef.per_kg, NONE), start)
    days = np.minimum.reduceat(np.where(usable, problem.slot_days, NONE), start)
    late = np.where(days < NONE, coef.lateness * np.maximum(days, 0), NONE)
    # ATP only grows with the date, so a node ships at most its largest slot ATP of a SKU.
    held = np.maximum.reduceat(np.where(usable[None, :], problem.avail, 0), start, axis=1).T
    unit = np.minimum.reduceat(np.where(problem.avail > 0, coef.unit, NONE), start, axis=1).T
    unit = np.where(held > 0, unit, NONE)  # nodes × lines
    ok = (fixed < NONE) & (late < NONE)
    qty = _quantities(ctx)
    need = ctx.sku_need
    whole_kg = np.array([line.weight_g * line.line.quantity // 1000 for line in ctx.lines])
    best = NONE
    # |D| ≤ 2: pairs (a, b), with the diagonal for two packages of one node.
    pair_ok: npt.NDArray[np.bool_] = np.asarray(
        ((held[:, None, :] + held[None, :, :]) >= need).all(axis=2)
    )
    np.fill_diagonal(pair_ok, (held >= need).all(axis=1))
    pair_ok &= ok[:, None] & ok[None, :]
    if pair_ok.any():
        a, b = np.nonzero(pair_ok)
        cheaper = np.minimum(unit[a], unit[b])  # every line has a holder in a covering pair
        units = (cheaper * qty).sum(axis=1)
        line_rate = np.minimum(
            np.where(held[a] > 0, rate[a, None], NONE), np.where(held[b] > 0, rate[b, None], NONE)
        )
        by_line = (np.where(line_rate < NONE, line_rate, 0) * whole_kg).sum(axis=1)
        kg = np.maximum(by_line, rate[a] + rate[b])
        total = fixed[a] + fixed[b] - coef.split + units + kg + np.maximum(late[a], late[b])
        best = int(total.min())
    if ctx.max_shipments >= 3 and int(ok.sum()) >= 3:
        cheapest = unit[ok].min(axis=0)
        if (cheapest < NONE).all():
            three = np.sort(fixed[ok])[:3]
            line_rate = np.where(held[ok] > 0, rate[ok, None], NONE).min(axis=0)
            by_line = int((np.where(line_rate < NONE, line_rate, 0) * whole_kg).sum())
            kg = max(by_line, int(np.sort(rate[ok])[:3].sum()))
            # Three distinct nodes: the latest of their first delivery days is at least the
            # third smallest of them.
            third_late = int(np.sort(late[ok])[2])
            many = int(three.sum()) - coef.split + int((cheapest * qty).sum()) + kg + third_late
            best = min(best, many)
    return None if best >= NONE else best


def incomplete_bound(problem: Problem, coef: Coefficients) -> int:
    """A bound no answer of ``problem`` that leaves a unit unfilled beats."""
    cheapest = np.where(problem.avail > 0, coef.unit, 0).min(axis=1, initial=0)
    qty = _quantities(problem.ctx)
    return coef.unfilled + int((np.minimum(cheapest, 0) * qty).sum())


def _unit_costs(ctx: CartContext, nodes: IntArray, rows: IntArray) -> IntArray:
    """Unit coefficient per (node, line) where the node holds the line's SKU, else NONE.

    ``rows`` are the nodes' rows of the context's stock arrays.
    """
    w = ctx.weights
    price = np.array([line.line.unit_price for line in ctx.lines], dtype=np.int64)
    unit = (
        scale_cents_array(w.labour, ctx.index.node_pick_cost[nodes])[:, None]
        + scale_cents_array(w.unit_cost, ctx.stock_unit_cost[rows])
        + scale_cents_array(w.opportunity, ctx.stock_opportunity[rows])
        - scale_cents_array(w.revenue, price)[None, :]
    )
    return np.where(ctx.stock_last[rows] > 0, unit, NONE)


def _package_costs(
    ctx: CartContext, level: ServiceLevel, nodes: IntArray
) -> tuple[IntArray, IntArray]:
    """Per node, the cheapest package fixed cost (base, handling, split) and kg rate.

    Minima over the node's eligible services, taken apart (NONE where none serves it).
    """
    w = ctx.weights
    index = ctx.index
    zone = ctx.zone[nodes] - 1
    handling = scale_cents_array(w.handling, index.node_handling[nodes]) + w.split_penalty
    fixed = np.full(nodes.size, NONE, dtype=np.int64)
    per_kg = np.full(nodes.size, NONE, dtype=np.int64)
    for _, service, ok in ctx.serving(level, nodes):
        base = np.array([scale_cents(w.shipping, r.base) for r in service.rates])[zone]
        kg = np.array([scale_cents(w.shipping, r.per_kg) for r in service.rates])[zone]
        fixed = np.where(ok, np.minimum(fixed, base + handling), fixed)
        per_kg = np.where(ok, np.minimum(per_kg, kg), per_kg)
    return fixed, per_kg


def _lateness(
    ctx: CartContext, level: ServiceLevel, nodes: IntArray, coef: Coefficients
) -> IntArray:
    """Per node, the lateness cost any package from it forces (NONE: it cannot ship in time).

    A service's first dispatch date delivers no later than its other dates, so that delivery
    day bounds the promised day T of any answer shipping from the node.
    """
    order = ctx.order_date.toordinal()
    deadline = LEVEL_DEADLINE_DAYS[level]
    late = np.full(nodes.size, NONE, dtype=np.int64)
    for position, _, ok in ctx.serving(level, nodes):
        for k in np.flatnonzero(ok).tolist():
            node = int(nodes[k])
            dates = ctx.dispatch_ordinals(node, position)
            if not dates:
                continue
            days = ctx.delivery_ordinal(position, dates[0], int(ctx.zone[node])) - order
            if days <= deadline:
                late[k] = min(int(late[k]), coef.lateness * max(0, days))
    return late


def node_bounds(
    ctx: CartContext,
    level: ServiceLevel,
    nodes: IntArray,
    coef: Coefficients,
    *,
    target: int,
    refine_at_most: int,
    pair_cells: int = PAIR_CELLS,
) -> IntArray:
    """Per node of ``nodes``: a bound no answer shipping a package from that node beats.

    Such an answer leaves a unit unfilled, or it is complete. A complete one is either
    packages from this node alone (its own unit costs, the cart's whole weight at its kg
    rate), or this node and exactly one other node that together hold every line (each line
    at the cheaper of the two, the other's package costs), or this node and at least two more
    packages. The calendar (lateness) and pairwise terms are computed only for nodes whose
    cheaper bounds are still below ``target`` (the others cannot beat it anyway), and for at
    most ``refine_at_most`` of them, lowest first: the rest keep their weaker, still valid,
    bound, so the work per call stays bounded on networks of any size; ``pair_cells`` caps
    the pairwise table (nodes × partners × lines) the same way.
    """
    stocking = ctx.stocking_nodes(level)
    if not nodes.size or not stocking.size:
        return np.full(nodes.size, NONE, dtype=np.int64)
    qty = _quantities(ctx)
    grams = sum(line.weight_g * line.line.quantity for line in ctx.lines)
    cart_kg = max(1, -(-grams // 1000))
    rows = np.searchsorted(ctx.stock_nodes, stocking)  # stocking nodes are stock nodes
    unit_all = _unit_costs(ctx, stocking, rows)
    cheapest = unit_all.min(axis=0)  # per line, anywhere (NONE where no node holds it)
    at = np.searchsorted(stocking, nodes)
    own = unit_all[at]  # nodes × lines
    last = ctx.stock_last[rows]  # S × lines
    need = ctx.sku_need
    fixed_all, per_kg_all = _package_costs(ctx, level, stocking)
    fixed, per_kg = fixed_all[at], per_kg_all[at]
    # Incomplete answers: one unfilled unit at least, every other unit at its best.
    best_or_unfilled = np.minimum(np.minimum(cheapest, coef.unfilled), 0)
    incomplete = coef.unfilled + int((best_or_unfilled * qty).sum())
    alone_ok = (last[at] >= need).all(axis=1) & (fixed < NONE)
    own_units = (np.where(own < NONE, own, 0) * qty[None, :]).sum(axis=1)
    alone = np.where(alone_ok, own_units + fixed + per_kg * cart_kg - coef.split, NONE)
    complete = alone
    many = NONE
    shared = np.zeros(nodes.size, dtype=np.int64)
    fixed_sorted = np.sort(fixed_all[fixed_all < NONE])
    split_ok = ctx.max_shipments >= 2 and bool((cheapest < NONE).all()) and fixed_sorted.size
    unit_g = np.array([line.weight_g for line in ctx.lines], dtype=np.int64)
    if split_ok:
        cheapest_rate = int(per_kg_all.min())
        rate = np.broadcast_to(per_kg_all[:, None], last.shape)
        # Rounded per node part, or per line at the cheapest rate: both bound the kg cost.
        line_rate = np.where(last > 0, per_kg_all[:, None], NONE).min(axis=0)
        by_line = int((np.where(line_rate < NONE, line_rate, 0) * (unit_g * qty // 1000)).sum())
        kg_floor = max(by_line, _fill_cost(rate, last, qty, per_unit_g=unit_g))
        shared = fixed - coef.split  # this node's package, with the one split refund
        units = max(int((cheapest * qty).sum()), _fill_cost(unit_all, last, qty, per_unit_g=None))
        if ctx.max_shipments >= 3:
            # Two more packages, each at least the cheapest; three packages bill ≥ 3 kg.
            kg = max(kg_floor, 3 * cheapest_rate)
            many = units + 2 * int(fixed_sorted[0]) + kg
        one_more = units + int(fixed_sorted[0]) + max(kg_floor, 2 * cheapest_rate)
        complete = np.minimum(complete, np.where(fixed < NONE, shared + min(one_more, many), NONE))
    late = np.zeros(nodes.size, dtype=np.int64)
    close = _lowest_below(complete, target, refine_at_most)
    late[close] = _lateness(ctx, level, nodes[close], coef)
    complete = np.where(late < NONE, complete + late, NONE)
    refine = _lowest_below(complete, target, refine_at_most if split_ok else 0)
    if refine.size:
        # Partners whose own package and the cheapest units already reach the target cannot
        # make a pair below it: leave them out, and bound them all by the cheapest of them.
        room = target - int((shared[refine] + late[refine]).min()) - units
        near = fixed_all < room
        far = fixed_all[~near]
        far_bound = units + int(far.min()) if far.size else NONE
        # Cap the pair table (nodes × partners × lines) so one call stays within a few ms
        # on any network; nodes past the cap keep their looser bound.
        keep = max(1, pair_cells // max(1, int(near.sum()) * len(ctx.lines)))
        if refine.size > keep:
            refine = refine[:keep]
        if near.any():
            mine = _Side(
                nodes[refine], own[refine], per_kg[refine], last[at[refine]], fixed[refine]
            )
            partners = _Side(
                stocking[near], unit_all[near], per_kg_all[near], last[near], fixed_all[near]
            )
            best_pair = _best_pairs(ctx, mine, partners)
        else:
            best_pair = np.full(refine.size, NONE, dtype=np.int64)
        best_pair = np.minimum(best_pair, far_bound)
        split = shared[refine] + np.minimum(best_pair, many) + late[refine]
        complete[refine] = np.minimum(alone[refine] + late[refine], split)
    return np.minimum(complete, incomplete)


def _fill_cost(
    price: IntArray, last: IntArray, amount: IntArray, *, per_unit_g: IntArray | None
) -> int:
    """Least cost of ``amount`` units per line over every node, cheapest first up to stock.

    ``price`` and ``last`` are nodes × lines; NONE prices never fill. With ``per_unit_g``
    the price is per kg and each node's part is counted in whole kg, rounded down.
    """
    order = np.argsort(price, axis=0, kind="stable")
    rates = np.take_along_axis(price, order, axis=0)
    stock = np.where(rates < NONE, np.take_along_axis(last, order, axis=0), 0)
    before = np.cumsum(stock, axis=0) - stock
    take = np.clip(amount[None, :] - before, 0, stock)
    if per_unit_g is not None:
        take = take * per_unit_g[None, :] // 1000
    return int((take * np.where(rates < NONE, rates, 0)).sum())


def _lowest_below(bounds: IntArray, target: int, most: int) -> IntArray:
    """Positions of the (at most ``most``) bounds below ``target``, lowest first."""
    below = np.flatnonzero(bounds < target)
    return below[np.argsort(bounds[below], kind="stable")[:most]]


@dataclasses.dataclass(frozen=True, slots=True)
class _Side:
    """Nodes of one side of a pair with their unit costs, kg rate, stock and fixed cost."""

    nodes: IntArray
    unit: IntArray  # nodes × lines (NONE: not held)
    per_kg: IntArray
    last: IntArray  # nodes × lines
    fixed: IntArray


def _best_pairs(ctx: CartContext, mine: _Side, partners: _Side) -> IntArray:
    """Per node of ``mine``: the cheapest partner m, as a bound on m's part of a pair.

    Only pairs that hold every line between them count. Each line's units cost at least the
    cheaper unit cost of the two, its whole kg (rounded down) the cheaper kg rate of the two
    that hold it; each of the two packages bills at least 1 kg; m's package costs its fixed
    cost.
    """
    qty = _quantities(ctx)
    whole_kg = np.array([line.weight_g * line.line.quantity // 1000 for line in ctx.lines])
    together = ((mine.last[:, None, :] + partners.last[None, :, :]) >= ctx.sku_need).all(axis=2)
    together &= partners.nodes[None, :] != mine.nodes[:, None]
    together &= (partners.fixed < NONE)[None, :]
    here = np.minimum(mine.unit, NONE // 64)  # sums of a few stay in range
    there = np.minimum(partners.unit, NONE // 64)
    units = (np.minimum(here[:, None, :], there[None, :, :]) * qty).sum(axis=2)
    rate_here = np.where(mine.last > 0, mine.per_kg[:, None], NONE)
    rate_there = np.where(partners.last > 0, partners.per_kg[:, None], NONE)
    cheaper = np.minimum(rate_here[:, None, :], rate_there[None, :, :])
    kg = (np.where(cheaper < NONE, cheaper, 0) * whole_kg).sum(axis=2)
    first_kg = np.minimum(mine.per_kg[:, None] + partners.per_kg[None, :], NONE)
    pair = partners.fixed[None, :] + units + np.maximum(kg, first_kg)
    best: IntArray = np.where(together, pair, NONE).min(axis=1)
    return best
