"""Holds against available-to-promise, and the stock rows the solver sees: the rules, no storage.

Notation for one (node n, SKU k) row: on hand ``O`` (events over the snapshot's row, floored
at 0), reserved ``R`` (the snapshot's, at most O), safety stock ``S``, open in-transit lots
``T`` (units, all ETAs), and ``H`` the units of active holds and confirmed reservations.

1. Channel ATP (docs/model.md with every lot released)::

       ATP(c) = max(0, O − R − S − buffer(c, kind(n), O)) + floor(share(c) × T)

2. Hold rule: a line of ``q`` units for channel c is granted only if ``H + q <= ATP(c)``, i.e.
   holds of every channel count against each channel's own ATP. A multi-line hold is granted
   whole or not at all.

3. Solver view: ``solver.Inventory`` rows must stay valid domain rows (reserved <= on hand), and
   the view is channel-free while buffers are per channel. Holds are taken from on hand first,
   down to the strictest buffer of any channel ``Bmax``, then from the earliest lots::

       A    = max(0, O − R − S − Bmax(kind(n), O))
       Hoh  = min(H, A)                      held from on hand
       X    = H − Hoh                        held from in-transit lots, earliest ETA first
       view = (on_hand O, reserved min(O, R + Hoh + max(0, X − T)), lots minus X)

   For every channel this view's ATP equals ATP(c) − H while holds fit in A (the common case:
   holds against stock on hand); beyond it the view is lower for channels with smaller buffers
   and, from in-transit holds, higher by at most the share rounding ``ceil((1 − share) × X)``.
   Quotes stay advisory: the hold rule (2), checked under the rows' locks, is the authority.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from models import ChannelPolicy, InTransitLot, InventoryPosition, NodeKind, Snapshot
from promise.stock.backend import Key, RowOverlay
from promise.stock.schemas import ReservedLine, Shortfall

__all__ = [
    "LiveTiers",
    "StockRules",
    "consume",
    "shortfalls",
    "solver_position",
]


@dataclasses.dataclass(frozen=True, slots=True)
class LiveTiers:
    """Live tiers of one row at an instant: the snapshot's row with the backend's overlay."""

    node_id: str
    sku: str
    on_hand: int
    reserved: int
    safety_stock: int
    unit_cost: int
    lots: tuple[tuple[int, int], ...]  # (quantity, eta ordinal), earliest first
    held: int

    @property
    def in_transit(self) -> int:
        """Units in open lots."""
        return sum(quantity for quantity, _ in self.lots)


class StockRules:
    """What the hold rule and the solver view need from one snapshot, indexed once."""

    def __init__(self, snapshot: Snapshot) -> None:
        """Index the snapshot's rows, node kinds and channel policies."""
        self.snapshot = snapshot
        self.rows: dict[Key, InventoryPosition] = {
            (row.node_id, row.sku): row for row in snapshot.inventory
        }
        self.kinds: dict[str, NodeKind] = {node.node_id: node.kind for node in snapshot.nodes}
        self.skus = frozenset(item.sku for item in snapshot.items)
        self.policies: dict[str, ChannelPolicy] = {p.channel: p for p in snapshot.policies}

    def unknown(self, node_id: str, sku: str) -> str | None:
        """Why (node_id, sku) cannot hold stock in this snapshot, or None."""
        if node_id not in self.kinds:
            return f"unknown node {node_id!r}"
        if sku not in self.skus:
            return f"unknown SKU {sku!r}"
        return None

    def strictest_buffer(self, kind: NodeKind, on_hand: int) -> int:
        """The largest buffer any channel keeps at a node of ``kind`` holding ``on_hand``."""
        return max((p.buffer_units(kind, on_hand) for p in self.policies.values()), default=0)

    def tiers(self, key: Key, overlay: RowOverlay, now: int) -> LiveTiers:
        """The row's live tiers: snapshot row (or zeros) + events + holds at ``now``."""
        base = self.rows.get(key)
        on_hand = max(0, overlay.count.on_hand(0 if base is None else base.on_hand))
        lots = [(lot.quantity, lot.eta.toordinal()) for lot in (base.in_transit if base else ())]
        lots.extend(overlay.lots)
        lots.sort(key=lambda lot: lot[1])
        return LiveTiers(
            node_id=key[0],
            sku=key[1],
            on_hand=on_hand,
            reserved=min(on_hand, 0 if base is None else base.reserved),
            safety_stock=0 if base is None else base.safety_stock,
            unit_cost=0 if base is None else base.unit_cost,
            lots=tuple(lots),
            held=overlay.held(now),
        )

    def buffer(self, policy: ChannelPolicy, tiers: LiveTiers) -> int:
        """The channel's buffer at the row's node."""
        return policy.buffer_units(self.kinds[tiers.node_id], tiers.on_hand)

    def atp(self, policy: ChannelPolicy, tiers: LiveTiers) -> int:
        """(1) What ``policy``'s channel may promise from the row, before holds."""
        free = tiers.on_hand - tiers.reserved - tiers.safety_stock - self.buffer(policy, tiers)
        return max(0, free) + policy.in_transit_units(tiers.in_transit)

    def available(self, policy: ChannelPolicy, tiers: LiveTiers) -> int:
        """Units the channel may still hold at the row (never negative)."""
        return max(0, self.atp(policy, tiers) - tiers.held)


def shortfalls(
    rules: StockRules,
    policy: ChannelPolicy,
    lines: Iterable[tuple[str, str, int]],
    overlays: Mapping[Key, RowOverlay],
    now: int,
) -> list[Shortfall]:
    """(2) Lines that would take a row past its channel ATP (empty: the hold may be granted)."""
    out: list[Shortfall] = []
    for node_id, sku, quantity in lines:
        key = (node_id, sku)
        tiers = rules.tiers(key, overlays[key], now)
        available = rules.available(policy, tiers)
        if quantity > available:
            out.append(Shortfall(node_id=node_id, sku=sku, requested=quantity, available=available))
    return out


def solver_position(rules: StockRules, tiers: LiveTiers) -> InventoryPosition:
    """(3) The row as the solver should see it, holds folded into reserved and lots."""
    kind = rules.kinds[tiers.node_id]
    strict = rules.strictest_buffer(kind, tiers.on_hand)
    room = max(0, tiers.on_hand - tiers.reserved - tiers.safety_stock - strict)
    from_on_hand = min(tiers.held, room)
    from_lots = tiers.held - from_on_hand
    lots: list[InTransitLot] = []
    for quantity, eta in tiers.lots:
        take = min(quantity, from_lots)
        from_lots -= take
        if quantity > take:
            lots.append(InTransitLot(quantity=quantity - take, eta=dt.date.fromordinal(eta)))
    # Holds beyond every unit (stock sold under them) also come off on hand, so no channel
    # can quote units that are already spoken for.
    reserved = min(tiers.on_hand, tiers.reserved + from_on_hand + from_lots)
    return InventoryPosition(
        node_id=tiers.node_id,
        sku=tiers.sku,
        on_hand=tiers.on_hand,
        reserved=reserved,
        safety_stock=tiers.safety_stock,
        unit_cost=tiers.unit_cost,
        in_transit=tuple(lots),
    )


def consume(
    lines: Sequence[ReservedLine], node_id: str, sku: str, quantity: int
) -> tuple[tuple[ReservedLine, ...], int]:
    """Lines after a sale of ``quantity`` at (node, SKU) consumed them; and units consumed."""
    left = quantity
    out: list[ReservedLine] = []
    for line in lines:
        if left and line.node_id == node_id and line.sku == sku:
            take = min(left, line.quantity - line.consumed)
            left -= take
            out.append(line.model_copy(update={"consumed": line.consumed + take}))
        else:
            out.append(line)
    return tuple(out), quantity - left
