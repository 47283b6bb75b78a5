"""A node's dispatch slots for one service level of one cart, and its stock for the cart.

The calendar part of a node's slots is the network's (``PreparedNetwork.level_slots``, shared
by every request); what this module adds per request is the cart's: the lines' ATP on each
slot's date and the dominance cut that needs it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from models import CarrierService, ServiceLevel, floor_share_array
from solver.calendar import LEVEL_DEADLINE_DAYS
from solver.prepared import LevelSlots

if TYPE_CHECKING:
    from solver.problem import CartContext

__all__ = ["NodeBlock", "NodeStock", "node_block", "node_stock"]

IntArray = npt.NDArray[np.int64]


@dataclasses.dataclass(frozen=True, slots=True)
class NodeBlock:
    """The dispatch slots of one node for one level, with the lines' ATP on each slot's date."""

    node: int
    date: IntArray  # ship date ordinals
    delivery: IntArray  # delivery date ordinals
    days: IntArray  # delivery − order date
    service: tuple[CarrierService, ...]
    zone: int
    base: IntArray
    per_kg: IntArray
    capacity: IntArray  # -1 = unlimited
    labour: IntArray  # pick seconds left at (node, date); -1 = unlimited
    avail: IntArray  # lines × slots

    @property
    def size(self) -> int:
        """Number of slots."""
        return int(self.date.size)


@dataclasses.dataclass(frozen=True, slots=True)
class NodeStock:
    """The channel's stock of the cart's lines at one node, which every level's slots read."""

    on_hand: IntArray  # per line: ATP now (0 without stock)
    stocked: IntArray  # lines with stock at the node (now or in transit)
    lots: tuple[tuple[int, IntArray, IntArray], ...]  # (line, release ordinals, units)
    wanted: IntArray  # per line: units of its SKU the cart needs, at most what the node will have
    most: int  # units of the cart the node could ship at most
    covers: bool  # whether ATP now covers ``wanted`` of every stocked line

    def avail(self, dates: IntArray, share: float) -> IntArray:
        """Lines × ``dates``: ATP on each date (the rule of Pair.atp, element-wise)."""
        out = np.repeat(self.on_hand[:, None], dates.size, axis=1)
        for i, release, qty in self.lots:
            arrived = (release[None, :] <= dates[:, None]).astype(np.int64) @ qty
            out[i] += floor_share_array(share, arrived)
        return out


def node_stock(ctx: CartContext, node: int) -> NodeStock:
    """The channel's stock of the cart's lines at ``node``."""
    n_lines = len(ctx.lines)
    at = ctx.stock_pos.get(node)
    if at is None:
        empty = np.zeros(n_lines, dtype=np.int64)
        return NodeStock(empty, empty[:0], (), empty, 0, covers=True)
    rows = ctx.stock_row[at]
    stocked = np.flatnonzero(rows >= 0)
    on_hand = np.zeros(n_lines, dtype=np.int64)
    on_hand[stocked] = ctx.on_hand_atp[rows[stocked]]
    lots = []
    for i in stocked.tolist():
        release, qty = ctx.index.in_transit(int(rows[i]))
        if qty.size:
            lots.append((i, release, qty))
    last = ctx.stock_last[at]
    wanted = np.minimum(ctx.sku_need, last)
    return NodeStock(
        on_hand=on_hand,
        stocked=stocked,
        lots=tuple(lots),
        wanted=wanted,
        most=int(np.minimum(ctx.qty, last)[stocked].sum()),
        covers=bool((on_hand[stocked] >= wanted[stocked]).all()),
    )


def node_block(ctx: CartContext, node_index: int, level: ServiceLevel) -> NodeBlock:
    """Compute one node's dispatch slots for ``level`` within the level's deadline.

    Every dispatch date of the horizon is a slot (docs/model.md, "Dates"), except those proven
    unable to change the answer: dates delivering after the level's deadline, dates with no
    carrier capacity or no pick labour (nothing can ship) (``PreparedNetwork.level_slots``:
    no cart needed), and, for a node with one service of the level, the dates after the first
    one that can carry the node's whole share of the cart (``_first_carrying``). The exact
    mode keeps every date.
    """
    zone = int(ctx.zone[node_index])
    positions = tuple(p for p, _, ok in ctx.level_services(level) if ok[node_index])
    slots = ctx.network.level_slots(
        node_index,
        positions,
        ctx.requested_at,
        ctx.local_key(node_index),
        zone=zone,
        window=(ctx.order_ordinal, LEVEL_DEADLINE_DAYS[level]),
        exact=ctx.exact,
    )
    stock = ctx.node_stock(node_index)
    avail = stock.avail(slots.date, ctx.policy.in_transit_share)
    end = slots.size
    if not ctx.exact and len(positions) == 1:
        end = _first_carrying(ctx, node_index, slots, stock, avail)
    if end < slots.size:
        avail = avail[:, :end]
    return NodeBlock(
        node=node_index,
        date=slots.date[:end],
        delivery=slots.delivery[:end],
        days=slots.days[:end],
        service=slots.service[:end],
        zone=zone,
        base=slots.base[:end],
        per_kg=slots.per_kg[:end],
        capacity=slots.capacity[:end],
        labour=slots.labour[:end],
        avail=avail,
    )


def _first_carrying(
    ctx: CartContext, node_index: int, slots: LevelSlots, stock: NodeStock, avail: IntArray
) -> int:
    """Slots to keep of a node's only service: up to the first that carries its whole share.

    That slot can carry, in one package, everything the node could ship of this cart, so
    every later date of the service is dominated: a later date has the same rate and no
    earlier delivery, and whatever an answer ships from the node later (and on this date)
    fits in one package on this date, which needs no more packages, bills no more kg (ceil is
    subadditive), takes the same units from the same node (same protection cost) and promises
    no later date.
    """
    seconds = ctx.index.nodes[node_index].pick_seconds * stock.most
    covers: list[bool]
    if stock.lots:
        stocked = stock.stocked
        short = (avail[stocked] < stock.wanted[stocked, None]).sum(axis=0)
        covers = [not lines for lines in short.tolist()]
    elif stock.covers:
        covers = [True] * slots.size
    else:
        return slots.size
    limits = zip(slots.capacity_list, slots.labour_list, covers, strict=True)
    for j, (capacity, labour, fits) in enumerate(limits):
        if fits and capacity != 0 and (labour < 0 or labour >= seconds):
            return j + 1
    return slots.size
