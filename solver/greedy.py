"""Greedy baselines: fill the cart node by node in a fixed order.

- ``priority``: nodes by configured priority, then distance.
- ``nearest``: nodes by distance to the destination.
- ``fewest_splits``: repeatedly the node that covers the most remaining units, ties by distance.

Each node ships one package, from its slot that covers most units (then earliest delivery, then
cheapest). The baselines see every node that stocks the cart, but build a node's slots only when
they visit it. They respect every constraint family, so their answers are feasible; they are the
comparison baselines, the MIP's hint and its fallback when the time budget ends first.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from models import Engine, ServiceLevel
from solver.costs import Coefficients, evaluate
from solver.problem import CartContext, NodeBlock, Problem

__all__ = ["BASELINES", "Pick", "allocation", "greedy_picks"]

IntArray = npt.NDArray[np.int64]
BASELINES: tuple[Engine, ...] = (Engine.NEAREST, Engine.FEWEST_SPLITS, Engine.PRIORITY)


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

    def bound(self, node: int) -> int:
        """Units ``node`` could cover at most, from ATP alone (no slots needed)."""
        share = self.ctx.policy.in_transit_share
        left: dict[int, int] = {}
        wanted: dict[int, int] = {}
        for i, line in enumerate(self.ctx.lines):
            pair = self.ctx.pairs.get((node, line.sku_index))
            if pair is None or self.remaining[i] <= 0:
                continue
            left[line.sku_index] = pair.atp_last(share) - self.taken.get((node, line.sku_index), 0)
            wanted[line.sku_index] = wanted.get(line.sku_index, 0) + int(self.remaining[i])
        return sum(max(0, min(wanted[k], left[k])) for k in wanted)


def _node_order(ctx: CartContext, engine: Engine) -> list[int]:
    """Stocking nodes in the engine's fixed order."""
    nodes = ctx.stocking_nodes()
    distance = ctx.distance_km
    if engine is Engine.PRIORITY:
        priority = ctx.index.node_priority
        return sorted(nodes, key=lambda n: (int(priority[n]), float(distance[n]), n))
    return sorted(nodes, key=lambda n: (float(distance[n]), n))


def _fewest_splits(fill: _Fill, order: list[int], limit: int) -> None:
    """Repeatedly ship from the node covering most remaining units (ties: nearest)."""
    rank = {node: k for k, node in enumerate(order)}
    pool = set(order)
    while pool and len(fill.picks) < limit and fill.remaining.sum() > 0:
        # Visit nodes by their ATP bound; stop once no unvisited node can beat the best.
        bounds = sorted(((fill.bound(n), n) for n in pool), key=lambda b: (-b[0], rank[b[1]]))
        best: tuple[int, int, int, IntArray] | None = None  # units, node, slot, take
        for bound, node in bounds:
            if bound == 0 or (best is not None and bound < best[0]):
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


def greedy_picks(ctx: CartContext, level: ServiceLevel, engine: Engine) -> list[Pick]:
    """The packages one greedy baseline ships, over every node that stocks the cart."""
    fill = _Fill(ctx, level)
    limit = ctx.max_shipments
    order = _node_order(ctx, engine)
    if engine is Engine.FEWEST_SPLITS:
        _fewest_splits(fill, order, limit)
        return fill.picks
    for node in order:
        if len(fill.picks) >= limit or fill.remaining.sum() <= 0:
            break
        chosen = fill.best_slot(node)
        if chosen is not None:
            fill.ship(node, *chosen)
    return fill.picks


def allocation(problem: Problem, picks: list[Pick], coef: Coefficients) -> IntArray:
    """The picks as a lines × slots matrix of ``problem`` (which holds their nodes).

    An allocation below the margin floor is replaced by the empty one: promising nothing is
    the only answer a greedy pass can guarantee to be feasible then.
    """
    x = np.zeros(problem.avail.shape, dtype=np.int64)
    for pick in picks:
        x[:, problem.slot_of(pick.node, pick.local)] += pick.take
    margin_bp = problem.ctx.margin_bp
    if margin_bp is not None and x.any():
        evaluation = evaluate(problem, x, coef)
        if evaluation.margin * 10_000 < margin_bp * evaluation.revenue:
            return np.zeros_like(x)
    return x
