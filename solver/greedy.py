"""Greedy baselines: fill the cart node by node in a fixed order.

- ``priority``: nodes by configured priority, then distance.
- ``nearest``: nodes by distance to the destination.
- ``fewest_splits``: repeatedly the node that covers the most remaining units, ties by distance.

Each node ships one package, from its slot that covers most units (then earliest delivery, then
cheapest). The baselines see every node that stocks the cart, but build a node's slots only when
they visit it. They respect every constraint family, so their answers are feasible; they are the
comparison baselines, the MIP's hint and its fallback when the time budget ends first.

Given a ``deadline`` (``time.perf_counter()`` seconds) a pass that has visited ``MIN_VISITS``
nodes stops once it has passed and returns the packages chosen so far: on a network of tens of
thousands of stocking nodes a full pass takes seconds, far beyond any checkout budget. Passes
over ordinary networks visit fewer nodes and so give the same answer however slow the clock
(a cold process's first solve spends its budget loading calendars). On a level with more than
``LARGE_LEVEL_NODES`` stocking nodes, a pass past the request's own deadline (``final``) stops
after ``LATE_VISITS``: the answer is late already, and MIN_VISITS visits per pass and level
would make it later by a hundred ms or more (16,000 nodes).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import numpy.typing as npt

from models import Engine, ServiceLevel, scale_cents_array
from solver.costs import Coefficients, evaluate, meets_floor
from solver.problem import CartContext, NodeBlock, Problem

__all__ = [
    "BASELINES",
    "LARGE_LEVEL_NODES",
    "LATE_VISITS",
    "MIN_VISITS",
    "Pick",
    "allocation",
    "cheapest_start",
    "greedy_picks",
    "greedy_run",
]

IntArray = npt.NDArray[np.int64]
BASELINES: tuple[Engine, ...] = (Engine.NEAREST, Engine.FEWEST_SPLITS, Engine.PRIORITY)
# Nodes a pass visits before it looks at the clock (a visit builds the node's slots: ~1 ms).
MIN_VISITS = 64
# The same once the request's own deadline has passed, on levels with more stocking nodes than
# LARGE_LEVEL_NODES (smaller ones keep answers independent of the clock). Over 200 20-line
# carts of the demo network 99 % of passes end within 8 visits with a full pass's answer.
LATE_VISITS = 8
LARGE_LEVEL_NODES = 1_000


@dataclasses.dataclass(frozen=True, slots=True)
class Pick:
    """Units per line shipped from slot ``local`` of ``node``'s block."""

    node: int
    local: int
    take: IntArray


class _Fill:
    """State of one greedy pass."""

    def __init__(
        self, ctx: CartContext, level: ServiceLevel, deadline: float | None, final: float | None
    ) -> None:
        """Start with nothing allocated; stop at ``deadline``, or sooner past ``final``."""
        self.ctx = ctx
        self.deadline = deadline
        self.final = final
        self.level = level
        self.remaining = np.array([line.line.quantity for line in ctx.lines], dtype=np.int64)
        self.taken: dict[tuple[int, int], int] = {}
        self.picks: list[Pick] = []
        self.visits = 0
        self.cut = False  # stopped at the deadline before the pass was done

    def out_of_time(self) -> bool:
        """Whether to stop: MIN_VISITS visits past the deadline, or LATE_VISITS past the final."""
        if self.visits < LATE_VISITS or (self.deadline is None and self.final is None):
            return False
        now = time.perf_counter()
        level_over = self.deadline is not None and now >= self.deadline
        request_over = self.final is not None and now >= self.final
        self.cut = request_over or (level_over and self.visits >= MIN_VISITS)
        return self.cut

    def plan(self, block: NodeBlock, j: int) -> IntArray:
        """Units per line that slot ``j`` of ``block`` could ship now."""
        take = np.zeros(len(self.remaining), dtype=np.int64)
        if block.capacity[j] == 0:
            return take
        labour = int(block.labour[j])
        seconds = self.ctx.index.nodes[block.node].pick_seconds
        budget = labour // seconds if labour >= 0 and seconds > 0 else 1 << 40
        used: dict[int, int] = {}
        for i, line in enumerate(self.ctx.lines):
            if self.remaining[i] <= 0 or block.avail[i, j] <= 0 or budget <= 0:
                continue
            sku = line.sku_index
            left = int(block.avail[i, j]) - self.taken.get((block.node, sku), 0) - used.get(sku, 0)
            q = max(0, min(int(self.remaining[i]), left, budget))
            take[i] = q
            used[sku] = used.get(sku, 0) + q
            budget -= q
        return take

    def best_slot(self, node: int) -> tuple[int, IntArray] | None:
        """The node's slot covering most units, then earliest delivery, then cheapest rate."""
        self.visits += 1
        block = self.ctx.block(node, self.level)
        best: tuple[tuple[int, int, int], int, IntArray] | None = None
        for j in range(block.size):
            take = self.plan(block, j)
            units = int(take.sum())
            if units == 0:
                continue
            key = (-units, int(block.delivery[j]), int(block.base[j]))
            if best is None or key < best[0]:
                best = (key, j, take)
        return None if best is None else (best[1], best[2])

    def ship(self, node: int, j: int, take: IntArray) -> None:
        """Commit ``take`` units on slot ``j`` of ``node``."""
        self.remaining -= take
        for i, line in enumerate(self.ctx.lines):
            if take[i]:
                key = (node, line.sku_index)
                self.taken[key] = self.taken.get(key, 0) + int(take[i])
        self.picks.append(Pick(node=node, local=j, take=take))

    def bounds(self, nodes: IntArray) -> IntArray:
        """Units each node could cover at most, from ATP alone (no slots needed).

        Lines sharing a SKU each count that SKU's remaining ATP, which can only overstate:
        still an upper bound, which is all the pruning needs.
        """
        ctx = self.ctx
        left = ctx.stock_last[np.searchsorted(ctx.stock_nodes, nodes)]
        for (node, sku), taken in self.taken.items():
            if node in ctx.stock_pos:
                for i, line in enumerate(ctx.lines):
                    if line.sku_index == sku:
                        left[np.flatnonzero(nodes == node), i] -= taken
        covered: IntArray = np.minimum(np.maximum(left, 0), self.remaining[None, :]).sum(axis=1)
        return covered


def _node_order(ctx: CartContext, level: ServiceLevel, engine: Engine) -> list[int]:
    """Stocking nodes with a service of ``level``, in the engine's fixed order."""
    nodes = ctx.stocking_nodes(level)  # ascending, so ties keep node order (lexsort is stable)
    distance = ctx.distance_km[nodes]
    if engine is Engine.PRIORITY:
        order = np.lexsort((distance, ctx.index.node_priority[nodes]))
    else:
        order = np.argsort(distance, kind="stable")
    ordered: list[int] = nodes[order].tolist()
    return ordered


def _fewest_splits(fill: _Fill, order: list[int], limit: int) -> None:
    """Repeatedly ship from the node covering most remaining units (ties: nearest)."""
    ranked = np.array(order, dtype=np.int64)
    pool = np.ones(ranked.size, dtype=np.bool_)  # not shipped from yet, in rank order
    while pool.any() and len(fill.picks) < limit and fill.remaining.sum() > 0:
        if fill.out_of_time():
            return
        # Visit nodes by their ATP bound; stop once no unvisited node can beat the best.
        members = ranked[pool]
        upper = fill.bounds(members)
        visit = np.argsort(-upper, kind="stable")  # members are in rank order: ties stay nearest
        best: tuple[int, int, int, IntArray] | None = None  # units, node, slot, take
        for bound, node in zip(upper[visit].tolist(), members[visit].tolist(), strict=True):
            # Ties go to the nearer node, which was visited first, so an equal bound cannot win.
            if bound == 0 or (best is not None and bound <= best[0]):
                break
            if fill.out_of_time():
                # The best node seen so far still ships: a partial pass beats none.
                break
            found = fill.best_slot(node)
            if found is None:
                continue
            units = int(found[1].sum())
            if best is None or units > best[0]:
                best = (units, node, found[0], found[1])
        if best is None:
            return
        fill.ship(best[1], best[2], best[3])
        pool &= ranked != best[1]


def greedy_picks(
    ctx: CartContext, level: ServiceLevel, engine: Engine, *, deadline: float | None = None
) -> list[Pick]:
    """The packages one greedy baseline ships, over every node that stocks the cart."""
    return greedy_run(ctx, level, engine, deadline=deadline)[0]


def greedy_run(
    ctx: CartContext,
    level: ServiceLevel,
    engine: Engine,
    *,
    deadline: float | None = None,
    final: float | None = None,
) -> tuple[list[Pick], bool]:
    """The packages one greedy baseline ships, and whether a deadline cut the pass short.

    ``deadline`` is the level's, ``final`` the request's (see the module docstring).
    """
    order = _node_order(ctx, level, engine)
    fill = _Fill(ctx, level, deadline, final if len(order) > LARGE_LEVEL_NODES else None)
    limit = ctx.max_shipments
    if engine is Engine.FEWEST_SPLITS:
        _fewest_splits(fill, order, limit)
        return fill.picks, fill.cut
    for node in order:
        if len(fill.picks) >= limit or fill.remaining.sum() <= 0 or fill.out_of_time():
            break
        chosen = fill.best_slot(node)
        if chosen is not None:
            fill.ship(node, *chosen)
    return fill.picks, fill.cut


def allocation(problem: Problem, picks: list[Pick], coef: Coefficients) -> IntArray:
    """The picks as a lines × slots matrix of ``problem`` (which holds their nodes).

    An allocation below the margin floor is replaced by the empty one: promising nothing is
    the only answer a greedy pass can guarantee to be feasible then.
    """
    x = np.zeros(problem.avail.shape, dtype=np.int64)
    for pick in picks:
        x[:, problem.slot_of(pick.node, pick.local)] += pick.take
    if x.any() and not meets_floor(problem, evaluate(problem, x, coef)):
        return np.zeros_like(x)
    return x


def cheapest_start(problem: Problem, coef: Coefficients) -> IntArray:
    """An allocation of ``problem`` built package by package, each the cheapest per unit.

    Each round ships the package (a slot of a node not shipped from yet) whose weighted cost
    (rate, weight, its units at their full unit cost with the opportunity cost of stock, and
    the days it adds to the promise) per unit it covers is least: the set-cover greedy. The
    baselines' fixed node orders ignore prices, so on a priced cart they start the search
    far from its optimum; this start does not. Takes follow ``_Fill.plan`` (remaining ATP of
    the node and SKU, the slot's labour and capacity, one package per node), so the answer is
    feasible like a baseline's; below the margin floor it is the empty allocation.
    """
    ctx = problem.ctx
    x = np.zeros(problem.avail.shape, dtype=np.int64)
    if not problem.n_slots:
        return x
    # Revenue is the same whichever slot ships a unit: without it every cost is positive,
    # so cost per unit compares packages of different sizes.
    revenue = scale_cents_array(ctx.weights.revenue, ctx.price)
    unit = coef.unit + revenue[:, None]
    seconds = np.maximum(coef.pick_seconds, 1)
    budget = np.where(
        (problem.slot_labour >= 0) & (coef.pick_seconds > 0),
        problem.slot_labour // seconds,
        1 << 40,
    )
    budget[problem.slot_capacity == 0] = 0
    # Lines of one SKU draw on one ATP: a line's room is what its SKU has left at the node.
    same_sku = (ctx.line_sku[:, None] == ctx.line_sku[None, :]) & (ctx.line_sku[:, None] >= 0)
    shared = bool((same_sku.sum(axis=1) > 1).any())
    remaining = ctx.qty.copy()
    open_slot = np.ones(problem.n_slots, dtype=np.bool_)
    promised = 0
    for _ in range(ctx.max_shipments):
        if remaining.sum() <= 0 or not open_slot.any():
            break
        # One package per node: a node's ATP is untouched until its only package ships.
        take = np.minimum(remaining[:, None], problem.avail)
        if shared:
            take = _one_sku_at_a_time(take, problem.avail, same_sku)
        # Labour fills lines in order, as a baseline's pass does.
        before = np.cumsum(take, axis=0) - take
        take = np.minimum(take, np.maximum(budget[None, :] - before, 0))
        take[:, ~open_slot] = 0
        units = take.sum(axis=0)
        usable = np.flatnonzero(units > 0)
        if not usable.size:
            break
        kg = np.maximum(-(-(ctx.weight_g @ take[:, usable]) // 1000), 1)
        later = np.maximum(problem.slot_days[usable], 0) - promised
        cost = (
            coef.package[usable]
            + coef.per_kg[usable] * kg
            + (unit[:, usable] * take[:, usable]).sum(axis=0)
            + coef.lateness * np.maximum(later, 0)
        )
        s = int(usable[np.argmin(cost / units[usable])])
        x[:, s] = take[:, s]
        remaining -= take[:, s]
        promised = max(promised, int(problem.slot_days[s]))
        open_slot &= problem.slot_node != problem.slot_node[s]
    if x.any() and not meets_floor(problem, evaluate(problem, x, coef)):
        return np.zeros_like(x)
    return x


def _one_sku_at_a_time(take: IntArray, room: IntArray, same_sku: npt.NDArray[np.bool_]) -> IntArray:
    """``take`` with each line limited to what earlier lines of its SKU leave in the slot."""
    out = take.copy()
    for i in range(take.shape[0]):
        earlier = np.flatnonzero(same_sku[i, :i])
        if earlier.size:
            out[i] = np.minimum(out[i], np.maximum(room[i] - out[earlier].sum(axis=0), 0))
    return out
