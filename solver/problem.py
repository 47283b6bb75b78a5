"""One cart and one service level as arrays: lines, candidate nodes, dispatch slots, ATP.

Everything the MIP, the greedy baselines and the answer builder share is computed here once:
the destination, the channel's ATP for the cart's SKUs, the candidate pre-filter and the
dispatch slots (node, ship date, service) with their delivery dates and rates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from models import (
    NO_PRICES,
    CarrierService,
    CartLine,
    ChannelPolicy,
    ObjectiveWeights,
    PromiseRequest,
    ServiceLevel,
    StockPrices,
    floor_share,
    floor_share_array,
    margin_floor_scale,
)
from solver.calendar import LEVEL_DEADLINE_DAYS
from solver.errors import UnknownChannelError
from solver.geo import ResolvedDestination, haversine_km, resolve_destination, zones_of
from solver.index import SnapshotIndex
from solver.prepared import PreparedNetwork
from solver.slots import NodeBlock, NodeStock, node_block, node_stock

if TYPE_CHECKING:
    from solver.costs import Coefficients, Evaluation

__all__ = [
    "CartContext",
    "NodeBlock",
    "Problem",
    "build_context",
    "build_problem",
    "prefilter",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """A cart line with its SKU resolved against the snapshot (sku_index -1 when unknown)."""

    line: CartLine
    sku_index: int
    weight_g: int


@dataclasses.dataclass(frozen=True, slots=True)
class Pair:
    """Stock of one SKU at one node, as the channel sees it."""

    node: int
    sku: int
    row: int
    on_hand_atp: int
    release: IntArray  # in-transit release ordinals
    qty: IntArray  # in-transit quantities
    unit_cost: int
    opportunity: int  # cents per unit taken (the live price table)
    last: int  # ATP once every in-transit lot has arrived

    def atp(self, day: int, share: float) -> int:
        """ATP on dispatch day ``day`` (an ordinal)."""
        if not self.qty.size:
            return self.on_hand_atp
        released = int(self.qty[self.release <= day].sum())
        return self.on_hand_atp + floor_share(share, released)


@dataclasses.dataclass(slots=True)
class CartContext:
    """What every service level of one request shares."""

    request: PromiseRequest
    index: SnapshotIndex
    network: PreparedNetwork  # its calendar answers outlive this request
    policy: ChannelPolicy
    weights: ObjectiveWeights
    requested_at: dt.datetime
    destination: ResolvedDestination
    order_date: dt.date
    distance_km: FloatArray  # per node of the snapshot
    zone: IntArray  # per node of the snapshot
    lines: tuple[Line, ...]
    max_shipments: int
    # (a, b): the margin floor holds when a × margin >= b × revenue (models/_exact.py)
    margin_floor: tuple[int, int] | None
    sku_line: dict[int, int]  # SKU → its first line
    on_hand_atp: IntArray  # per inventory row, for the channel
    pairs: dict[tuple[int, int], Pair]  # built on first use from stock_row
    stock_nodes: IntArray  # nodes with any pair, ascending
    stock_pos: dict[int, int]  # node → row of stock_last
    # stock nodes × lines: inventory row of the line's SKU there (-1: none); built with arrays,
    # since a dict of every (node, SKU) pair costs Python work per node up front.
    stock_row: IntArray
    stock_last: IntArray  # stock nodes × lines: ATP of the line's SKU once all lots arrive
    stock_unit_cost: IntArray  # stock nodes × lines: unit cost of the line's SKU there
    stock_opportunity: IntArray  # stock nodes × lines: opportunity cost of the line's SKU there
    prices: StockPrices
    sku_need: IntArray  # per line: units of its SKU over all lines (they share one ATP)
    local: dict[int, tuple[int, int]]
    eligible: dict[ServiceLevel, npt.NDArray[np.bool_]]
    blocks: dict[tuple[int, ServiceLevel], NodeBlock]
    exact: bool  # every dispatch date of the horizon, no dominance pruning
    # Per line, as arrays: every level's model, evaluation and answer reads them.
    qty: IntArray
    weight_g: IntArray
    price: IntArray  # unit price, cents
    line_sku: IntArray  # SKU position (-1: unknown)
    # Per level: each of its services with the nodes (all of them) it serves for this
    # destination; computed once, since every block, bound and ranking of the level asks.
    services: dict[ServiceLevel, tuple[tuple[int, CarrierService, npt.NDArray[np.bool_]], ...]]
    # Per level: the cost of an unfilled unit, once the objective's range has been checked.
    unfilled: dict[ServiceLevel, int]
    order_ordinal: int  # the destination's order date
    cart_terms: dict[str, int]  # the objective bounds' parts every level shares (solver.costs)
    rank: _RankParts | None  # the pre-filter ranking's parts every level shares
    stock: dict[int, NodeStock]  # per node, built on first use and shared by the levels

    def stocking_nodes(self, level: ServiceLevel) -> IntArray:
        """Nodes with ATP (now or in transit) for some line and a service of ``level``."""
        mask = self.eligible.get(level)
        if mask is None:
            mask = np.zeros(self.distance_km.size, dtype=np.bool_)
            for _, _, serves in self.serving(level, np.arange(self.distance_km.size)):
                mask |= serves
            self.eligible[level] = mask
        return self.stock_nodes[mask[self.stock_nodes]]

    def serving(
        self, level: ServiceLevel, nodes: IntArray
    ) -> Iterator[tuple[int, CarrierService, npt.NDArray[np.bool_]]]:
        """Each service of ``level`` with its position and which of ``nodes`` it serves here.

        A service serves a node when it picks up there and, for a courier with a maximum
        distance, the destination is within it.
        """
        for position, service, serves in self.level_services(level):
            yield position, service, serves[nodes]

    def level_services(
        self, level: ServiceLevel
    ) -> tuple[tuple[int, CarrierService, npt.NDArray[np.bool_]], ...]:
        """Each service of ``level`` with its position and which nodes (all) it serves here."""
        found = self.services.get(level)
        if found is None:
            distance = self.distance_km
            found_list: list[tuple[int, CarrierService, npt.NDArray[np.bool_]]] = []
            for position, (service, serves) in enumerate(
                zip(self.index.snapshot.services, self.index.service_mask, strict=True)
            ):
                if service.service_level is not level:
                    continue
                ok = serves
                if service.max_distance_km is not None:
                    ok = ok & (distance <= service.max_distance_km)
                found_list.append((position, service, ok))
            found = self.services[level] = tuple(found_list)
        return found

    def pair(self, node: int, sku: int) -> Pair | None:
        """The channel's stock of ``sku`` at ``node`` (None when it has none)."""
        found = self.pairs.get((node, sku))
        if found is None:
            at = self.stock_pos.get(node)
            line = self.sku_line.get(sku)
            if at is None or line is None:
                return None
            row = int(self.stock_row[at, line])
            if row < 0:
                return None
            release, qty = self.index.in_transit(row)
            on_hand_atp = int(self.on_hand_atp[row])
            in_transit = int(self.index.row_in_transit[row])
            found = Pair(
                node=node,
                sku=sku,
                row=row,
                on_hand_atp=on_hand_atp,
                release=release,
                qty=qty,
                unit_cost=int(self.index.row_unit_cost[row]),
                opportunity=self.prices.price(
                    self.index.nodes[node].node_id, self.index.snapshot.items[sku].sku
                ),
                last=on_hand_atp + self.policy.in_transit_units(in_transit),
            )
            self.pairs[(node, sku)] = found
        return found

    def node_stock(self, node: int) -> NodeStock:
        """The channel's stock of the cart's lines at ``node`` (built on first use)."""
        found = self.stock.get(node)
        if found is None:
            found = self.stock[node] = node_stock(self, node)
        return found

    def block(self, node: int, level: ServiceLevel) -> NodeBlock:
        """The dispatch slots of ``node`` for ``level`` (built on first use)."""
        key = (node, level)
        found = self.blocks.get(key)
        if found is None:
            found = node_block(self, node, level)
            self.blocks[key] = found
        return found

    def local_key(self, node: int) -> tuple[int, int]:
        """The node's local order date (ordinal) and whether the order missed its cutoff.

        Every calendar answer for this order at this node depends on nothing else.
        """
        found = self.local.get(node)
        if found is None:
            spec = self.index.nodes[node]
            local = self.requested_at.astimezone(zoneinfo.ZoneInfo(spec.time_zone))
            found = (local.date().toordinal(), int(local.time() >= spec.cutoff))
            self.local[node] = found
        return found

    def earliest_of(self, node: int) -> dt.date:
        """Earliest dispatch date of a node for this order (memoised with the network)."""
        return self.network.earliest_dispatch(node, self.requested_at, self.local_key(node))

    def dispatch_ordinals(self, node: int, service: int) -> tuple[int, ...]:
        """Dispatch dates (ordinals) of ``node`` with the snapshot's ``service``-th service."""
        local = self.local_key(node)
        return self.network.dispatch_ordinals(node, service, self.requested_at, local)

    def delivery_ordinal(self, service: int, ship: int, zone: int) -> int:
        """Delivery date (ordinal) of a package shipped on ``ship`` to ``zone``."""
        return self.network.delivery_ordinal(service, ship, zone)


def build_context(
    request: PromiseRequest,
    network: PreparedNetwork,
    requested_at: dt.datetime,
    *,
    exact: bool = False,
    prices: StockPrices = NO_PRICES,
) -> CartContext:
    """Resolve the destination, policy, weights and the channel's stock of the cart's SKUs.

    ``prices`` is the opportunity cost of stock (models/_prices.py) the objective charges.
    """
    index = network.index
    snapshot = index.snapshot
    policy = snapshot.policy(request.cart.channel)
    if policy is None:
        raise UnknownChannelError(request.cart.channel)
    weights = policy.weights if request.weights is None else request.weights.apply(policy.weights)
    destination = resolve_destination(request.destination)
    distance = haversine_km(index.node_lat, index.node_lon, destination.lat, destination.lon)
    lines = tuple(
        Line(
            line=line,
            sku_index=index.sku_pos.get(line.sku, -1),
            weight_g=int(index.sku_weight_g[index.sku_pos[line.sku]])
            if line.sku in index.sku_pos
            else 0,
        )
        for line in request.cart.lines
    )
    atp = index.on_hand_atp(policy)
    share = policy.in_transit_share
    # line, nodes, last ATP, unit cost, opportunity cost, inventory row
    parts: list[tuple[int, IntArray, IntArray, IntArray, IntArray, IntArray]] = []
    for sku in sorted({line.sku_index for line in lines if line.sku_index >= 0}):
        rows = index.rows_of(sku)
        on_hand = atp[rows]
        coming = index.row_in_transit[rows]
        # The rule of Pair.last, element-wise.
        last = on_hand + floor_share_array(share, coming)
        keep = (on_hand > 0) | ((coming > 0) & (share > 0))
        nodes = index.row_node[rows][keep]
        row_ids = np.arange(rows.start, rows.stop, dtype=np.int64)[keep]
        opportunity = _opportunity(index, prices, sku, nodes)
        unit_cost = index.row_unit_cost[rows][keep]
        for i, line in enumerate(lines):
            if line.sku_index == sku:
                parts.append((i, nodes, last[keep], unit_cost, opportunity, row_ids))
    stock_nodes = (
        np.unique(np.concatenate([part[1] for part in parts]))
        if parts
        else np.zeros(0, dtype=np.int64)
    )
    stock_last = np.zeros((stock_nodes.size, len(lines)), dtype=np.int64)
    stock_unit_cost = np.zeros((stock_nodes.size, len(lines)), dtype=np.int64)
    stock_opportunity = np.zeros((stock_nodes.size, len(lines)), dtype=np.int64)
    stock_row = np.full((stock_nodes.size, len(lines)), -1, dtype=np.int64)
    for i, nodes, last_atp, unit_cost, opportunity, row_ids in parts:
        at = np.searchsorted(stock_nodes, nodes)
        stock_last[at, i] = last_atp
        stock_unit_cost[at, i] = unit_cost
        stock_opportunity[at, i] = opportunity
        stock_row[at, i] = row_ids
    stock_pos = {node: k for k, node in enumerate(stock_nodes.tolist())}
    order_date = destination.local_date(requested_at)
    floor_pct = request.min_margin_pct
    if floor_pct is None:
        floor_pct = policy.min_margin_pct
    return CartContext(
        request=request,
        index=index,
        network=network,
        policy=policy,
        weights=weights,
        requested_at=requested_at,
        destination=destination,
        order_date=order_date,
        distance_km=distance,
        zone=zones_of(distance),
        lines=lines,
        max_shipments=request.max_shipments or policy.max_shipments,
        margin_floor=None if floor_pct is None else margin_floor_scale(floor_pct),
        sku_line={
            line.sku_index: i
            for i, line in reversed(tuple(enumerate(lines)))
            if line.sku_index >= 0
        },
        on_hand_atp=atp,
        pairs={},
        stock_nodes=stock_nodes,
        stock_pos=stock_pos,
        stock_row=stock_row,
        stock_last=stock_last,
        stock_unit_cost=stock_unit_cost,
        stock_opportunity=stock_opportunity,
        prices=prices,
        sku_need=np.array(
            [
                sum(o.line.quantity for o in lines if o.sku_index == line.sku_index)
                for line in lines
            ],
            dtype=np.int64,
        ),
        local={},
        eligible={},
        blocks={},
        exact=exact,
        qty=np.array([line.line.quantity for line in lines], dtype=np.int64),
        weight_g=np.array([line.weight_g for line in lines], dtype=np.int64),
        price=np.array([line.line.unit_price for line in lines], dtype=np.int64),
        line_sku=np.array([line.sku_index for line in lines], dtype=np.int64),
        services={},
        unfilled={},
        order_ordinal=order_date.toordinal(),
        stock={},
        cart_terms={},
        rank=None,
    )


def _opportunity(index: SnapshotIndex, prices: StockPrices, sku: int, nodes: IntArray) -> IntArray:
    """Opportunity cost of ``sku`` at each of ``nodes`` (positions), cents per unit."""
    out = np.zeros(nodes.size, dtype=np.int64)
    priced = prices.by_sku.get(index.snapshot.items[sku].sku)
    if priced:
        # A table prices few pairs of a SKU (the scarce ones): match them against the nodes
        # in one comparison, not a lookup per node.
        at = np.array([index.node_pos.get(node_id, -1) for node_id in priced], dtype=np.int64)
        cents = np.fromiter(priced.values(), dtype=np.int64, count=at.size)
        k_node, k_price = np.nonzero(nodes[:, None] == at[None, :])
        out[k_node] = cents[k_price]
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """One service level of one cart: slots j = (node, ship date, service) and line × slot ATP."""

    ctx: CartContext
    level: ServiceLevel
    candidates: tuple[int, ...]  # node indices in the model
    slot_node: IntArray
    slot_date: IntArray  # ship date ordinal
    slot_delivery: IntArray  # delivery date ordinal
    slot_days: IntArray  # delivery − order date, days
    slot_service: tuple[CarrierService, ...]
    slot_zone: IntArray
    slot_base: IntArray  # cents per package
    slot_per_kg: IntArray  # cents per billable kg
    slot_capacity: IntArray  # packages left; -1 = unlimited
    slot_labour: IntArray  # pick seconds left at (node, date); -1 = unlimited
    avail: IntArray  # lines × slots: ATP of the line's SKU at the slot's node and date
    deadline_days: int
    # Allocations evaluated on this problem (solver.costs.evaluate): (shape, dtype, bytes) →
    # (the coefficients used, the evaluation).
    evaluated: dict[tuple[tuple[int, ...], str, bytes], tuple[Coefficients, Evaluation]] = (
        dataclasses.field(default_factory=dict, compare=False, repr=False)
    )

    @property
    def n_slots(self) -> int:
        """Number of dispatch slots."""
        return int(self.slot_node.size)

    def slot_of(self, node: int, local: int) -> int:
        """Column of slot ``local`` of ``node``'s block."""
        first = int(np.searchsorted(self.slot_node, node, side="left"))
        return first + local


@dataclasses.dataclass(frozen=True, slots=True)
class _RankParts:
    """The parts of the pre-filter's ranking that every level shares, per stock node."""

    line_kg: FloatArray  # per line: billable kg of the line alone
    cart_kg: float  # billable kg of the whole cart in one package
    handling: FloatArray  # per stock node, weighted
    unit: FloatArray  # stock nodes × lines: pick, unit and opportunity cost of the line
    protected: FloatArray  # stock nodes × lines: protection cost of taking the line there
    cart: FloatArray  # per stock node: ``unit + protected`` over the lines


def _rank_parts(ctx: CartContext) -> _RankParts:
    """The level-independent parts of ``_rank_costs``, over every stock node of the cart."""
    w = ctx.weights
    index = ctx.index
    nodes = ctx.stock_nodes
    qty = ctx.qty.astype(np.float64)
    grams = ctx.weight_g.astype(np.float64) * qty
    handling = w.handling * index.node_handling[nodes].astype(np.float64)
    pick = w.labour * index.node_pick_cost[nodes].astype(np.float64)
    unit = (
        pick[:, None] + w.unit_cost * ctx.stock_unit_cost + w.opportunity * ctx.stock_opportunity
    ) * qty[None, :]
    spare = ctx.stock_last - index.node_protection[nodes][:, None]
    protected = w.protection_per_unit * np.clip(qty[None, :] - np.maximum(spare, 0), 0, None)
    return _RankParts(
        line_kg=np.maximum(1.0, np.ceil(grams / 1000.0)),
        cart_kg=max(1.0, float(np.ceil(grams.sum() / 1000.0))),
        handling=handling,
        unit=unit,
        protected=protected,
        cart=(unit + protected).sum(axis=1),
    )


def _rank_costs(
    ctx: CartContext, level: ServiceLevel, nodes: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Estimated objective of shipping each line alone, and the whole cart, from each node.

    Rates, handling, pick labour, unit cost, units below protection and lateness by transit
    days, with the request's weights; calendars are ignored (a ranking, not a price).
    Returns (nodes × lines, nodes).
    """
    w = ctx.weights
    if ctx.rank is None:
        ctx.rank = _rank_parts(ctx)
    parts = ctx.rank
    rows = np.searchsorted(ctx.stock_nodes, nodes)  # stocking nodes are stock nodes
    line_kg, cart_kg = parts.line_kg, parts.cart_kg
    zone = ctx.zone[nodes] - 1
    line_pkg = np.full((nodes.size, len(ctx.lines)), np.inf)
    cart_pkg = np.full(nodes.size, np.inf)
    for position, _, ok in ctx.serving(level, nodes):
        all_base, all_per_kg, all_transit = ctx.network.service_rates(position)
        base, per_kg = all_base[zone], all_per_kg[zone]
        late = w.lateness_per_day * all_transit[zone]
        line_cost = w.shipping * (base[:, None] + per_kg[:, None] * line_kg[None, :])
        cart_cost = w.shipping * (base + per_kg * cart_kg) + late
        line_pkg = np.where(ok[:, None], np.minimum(line_pkg, line_cost + late[:, None]), line_pkg)
        cart_pkg = np.where(ok, np.minimum(cart_pkg, cart_cost), cart_pkg)
    handling = parts.handling[rows]
    # The same sums, in the same order, as over these nodes alone: the ranking is unchanged.
    per_line = line_pkg + handling[:, None] + parts.unit[rows] + parts.protected[rows]
    whole = cart_pkg + handling + parts.cart[rows]
    return per_line, whole


def prefilter(ctx: CartContext, level: ServiceLevel, *, per_line: int, whole_cart: int) -> set[int]:
    """Per line the cheapest few nodes that stock it, plus the cheapest whole-cart nodes."""
    nodes = ctx.stocking_nodes(level)
    if not nodes.size:
        return set()
    line_cost, cart_cost = _rank_costs(ctx, level, nodes)
    have = ctx.stock_last[np.searchsorted(ctx.stock_nodes, nodes)]  # nodes × lines
    # Lines sharing a SKU need their summed quantity from one node to count as covered.
    need = ctx.sku_need
    known = np.array([line.sku_index >= 0 for line in ctx.lines], dtype=np.bool_)
    covers = have >= need[None, :]
    whole = np.flatnonzero(covers[:, known].all(axis=1))
    kept = set(nodes[whole[np.argsort(cart_cost[whole], kind="stable")][:whole_cart]].tolist())
    for i in np.flatnonzero(known).tolist():
        covering = np.flatnonzero(covers[:, i])
        best = covering[np.argsort(line_cost[covering, i], kind="stable")]
        kept.update(nodes[best[:per_line]].tolist())
        if best.size < per_line:
            # Too few single-node covers: keep the best partial holders too, so a split exists.
            partial = np.flatnonzero((have[:, i] > 0) & ~covers[:, i])
            ranked = partial[np.argsort(line_cost[partial, i], kind="stable")]
            kept.update(nodes[ranked[: per_line * 2]].tolist())
    return kept


def build_problem(ctx: CartContext, level: ServiceLevel, candidates: set[int]) -> Problem:
    """Concatenate the slot blocks of ``candidates`` (sorted by node) into one problem."""
    blocks = [ctx.block(node, level) for node in sorted(candidates)]
    blocks = [block for block in blocks if block.size]
    n_lines = len(ctx.lines)

    sizes = [block.size for block in blocks]

    def cat(name: str) -> IntArray:
        """Concatenate one per-slot field over the blocks (a per-block scalar is repeated)."""
        parts = [getattr(block, name) for block in blocks]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        if isinstance(parts[0], int):
            return np.repeat(np.array(parts, dtype=np.int64), sizes)
        return np.concatenate(parts).astype(np.int64)

    return Problem(
        ctx=ctx,
        level=level,
        candidates=tuple(sorted(candidates)),
        slot_node=cat("node"),
        slot_date=cat("date"),
        slot_delivery=cat("delivery"),
        slot_days=cat("days"),
        slot_service=tuple(s for block in blocks for s in block.service),
        slot_zone=cat("zone"),
        slot_base=cat("base"),
        slot_per_kg=cat("per_kg"),
        slot_capacity=cat("capacity"),
        slot_labour=cat("labour"),
        avail=np.concatenate([b.avail for b in blocks], axis=1)
        if blocks
        else np.zeros((n_lines, 0), dtype=np.int64),
        deadline_days=LEVEL_DEADLINE_DAYS[level],
    )
