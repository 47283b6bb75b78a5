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
(a cold process's first solve spends its budget loading calendars).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import numpy.typing as npt

from models import Engine, ServiceLevel
from solver.costs import Coefficients, evaluate, meets_floor
from solver.problem import CartContext, NodeBlock, Problem

__all__ = ["BASELINES", "MIN_VISITS", "Pick", "allocation", "greedy_picks", "greedy_run"]

IntArray = npt.NDArray[np.int64]
BASELINES: tuple[Engine, ...] = (Engine.NEAREST, Engine.FEWEST_SPLITS, Engine.PRIORITY)
# Nodes a pass visits before it looks at the clock (a visit builds the node's slots: ~1 ms).
MIN_VISITS = 64


@dataclasses.dataclass(frozen=True, slots=True)
class Pick:
    """Units per line shipped from slot ``local`` of ``node``'s block."""

    node: int
    local: int
    take: IntArray


class _Fill:
    """State of one greedy pass."""

    def __init__(self, ctx: CartContext, level: ServiceLevel) -> None:
        """Start with nothing allocated."""
        self.ctx = ctx
        self.level = level
        self.remaining = np.array([line.line.quantity for line in ctx.lines], dtype=np.int64)
        self.taken: dict[tuple[int, int], int] = {}
        self.picks: list[Pick] = []
        self.visits = 0
        self.cut = False  # stopped at the deadline before the pass was done

    def out_of_time(self, deadline: float | None) -> bool:
        """Whether to stop now: ``deadline`` passed after at least MIN_VISITS visits."""
        if deadline is None or self.visits < MIN_VISITS or time.perf_counter() < deadline:
            return False
        self.cut = True
        return True

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
        rows = np.array([ctx.stock_pos[n] for n in nodes.tolist()], dtype=np.int64)
        left = ctx.stock_last[rows].copy()
        for (node, sku), taken in self.taken.items():
            if node in ctx.stock_pos:
                for i, line in enumerate(ctx.lines):
                    if line.sku_index == sku:
                        left[np.flatnonzero(nodes == node), i] -= taken
        covered: IntArray = np.minimum(np.maximum(left, 0), self.remaining[None, :]).sum(axis=1)
        return covered


def _node_order(ctx: CartContext, level: ServiceLevel, engine: Engine) -> list[int]:
    """Stocking nodes with a service of ``level``, in the engine's fixed order."""
    nodes = ctx.stocking_nodes(level).tolist()
    distance = ctx.distance_km
    if engine is Engine.PRIORITY:
        priority = ctx.index.node_priority
        return sorted(nodes, key=lambda n: (int(priority[n]), float(distance[n]), n))
    return sorted(nodes, key=lambda n: (float(distance[n]), n))


def _fewest_splits(fill: _Fill, order: list[int], limit: int, deadline: float | None) -> None:
    """Repeatedly ship from the node covering most remaining units (ties: nearest)."""
    rank = {node: k for k, node in enumerate(order)}
    pool = set(order)
    while pool and len(fill.picks) < limit and fill.remaining.sum() > 0:
        if fill.out_of_time(deadline):
            return
        # Visit nodes by their ATP bound; stop once no unvisited node can beat the best.
        members = np.array(sorted(pool, key=rank.__getitem__), dtype=np.int64)
        upper = fill.bounds(members)
        visit = np.argsort(-upper, kind="stable")  # members are in rank order: ties stay nearest
        bounds = [(int(upper[k]), int(members[k])) for k in visit.tolist()]
        best: tuple[int, int, int, IntArray] | None = None  # units, node, slot, take
        for bound, node in bounds:
            # Ties go to the nearer node, which was visited first, so an equal bound cannot win.
            if bound == 0 or (best is not None and bound <= best[0]):
                break
            if fill.out_of_time(deadline):
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
        pool.discard(best[1])


def greedy_picks(
    ctx: CartContext, level: ServiceLevel, engine: Engine, *, deadline: float | None = None
) -> list[Pick]:
    """The packages one greedy baseline ships, over every node that stocks the cart."""
    return greedy_run(ctx, level, engine, deadline=deadline)[0]


def greedy_run(
    ctx: CartContext, level: ServiceLevel, engine: Engine, *, deadline: float | None = None
) -> tuple[list[Pick], bool]:
    """The packages one greedy baseline ships, and whether ``deadline`` cut the pass short."""
    fill = _Fill(ctx, level)
    limit = ctx.max_shipments
    order = _node_order(ctx, level, engine)
    if engine is Engine.FEWEST_SPLITS:
        _fewest_splits(fill, order, limit, deadline)
        return fill.picks, fill.cut
    for node in order:
        if len(fill.picks) >= limit or fill.remaining.sum() <= 0 or fill.out_of_time(deadline):
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
