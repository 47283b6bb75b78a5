"""A snapshot held as arrays indexed by node and SKU, built once per snapshot object.

The pydantic snapshot validates the JSON; solves read these arrays instead of walking one
Python object per inventory row.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from models import ChannelPolicy, Node, NodeKind, Snapshot

__all__ = ["SnapshotIndex", "index_of"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
KINDS: tuple[NodeKind, ...] = tuple(NodeKind)


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class SnapshotIndex:
    """Arrays over nodes, SKUs and inventory rows of one snapshot."""

    snapshot: Snapshot
    node_pos: dict[str, int]
    node_lat: FloatArray
    node_lon: FloatArray
    node_kind: IntArray  # index into KINDS
    node_priority: IntArray
    node_lead: IntArray
    node_handling: IntArray
    node_pick_cost: IntArray
    node_protection: IntArray
    service_mask: tuple[npt.NDArray[np.bool_], ...]  # per service: nodes it picks up at
    sku_pos: dict[str, int]
    sku_weight_g: IntArray
    # Inventory rows sorted by SKU, with CSR pointers so a SKU's rows are one slice.
    row_ptr: IntArray
    row_node: IntArray
    row_sku: IntArray
    row_on_hand: IntArray
    row_reserved: IntArray
    row_safety: IntArray
    row_unit_cost: IntArray
    # In-transit lots sorted by row, with CSR pointers; release = eta + node lead time (ordinal).
    lot_ptr: IntArray
    lot_release: IntArray
    lot_qty: IntArray
    row_in_transit: IntArray  # units in transit per row (all lots)
    _channel_cache: dict[str, IntArray] = dataclasses.field(default_factory=dict)
    # Calendar answers (dispatch dates, delivery dates) depend only on the snapshot's nodes and
    # services and on dates, so they are kept with the snapshot; cleared when they pile up.
    calendar_cache: dict[tuple[int, ...], object] = dataclasses.field(default_factory=dict)

    def remember(self, key: tuple[int, ...], value: object) -> None:
        """Store a calendar answer, dropping everything once the cache grows large."""
        if len(self.calendar_cache) > 200_000:
            self.calendar_cache.clear()
        self.calendar_cache[key] = value

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Nodes in index order."""
        return self.snapshot.nodes

    def rows_of(self, sku_index: int) -> slice:
        """Inventory rows of one SKU."""
        return slice(int(self.row_ptr[sku_index]), int(self.row_ptr[sku_index + 1]))

    def on_hand_atp(self, policy: ChannelPolicy) -> IntArray:
        """Per inventory row: on hand − reserved − safety − channel buffer, floored at 0."""
        cached = self._channel_cache.get(policy.channel)
        if cached is not None:
            return cached
        units = np.array([policy.buffers[k].units if k in policy.buffers else 0 for k in KINDS])
        pct = np.array([policy.buffers[k].percent if k in policy.buffers else 0.0 for k in KINDS])
        kind = self.node_kind[self.row_node]
        # Same float operations, in the same order, as Buffer.units_for.
        by_pct = np.ceil(self.row_on_hand * pct[kind] / 100.0).astype(np.int64)
        buffer = np.maximum(units[kind], by_pct)
        atp: IntArray = np.maximum(
            0, self.row_on_hand - self.row_reserved - self.row_safety - buffer
        )
        self._channel_cache[policy.channel] = atp
        return atp

    def in_transit(self, row: int) -> tuple[IntArray, IntArray]:
        """Release ordinals and quantities of one row's in-transit lots."""
        lo, hi = int(self.lot_ptr[row]), int(self.lot_ptr[row + 1])
        return self.lot_release[lo:hi], self.lot_qty[lo:hi]


def _build(snapshot: Snapshot) -> SnapshotIndex:
    """Turn a validated snapshot into arrays."""
    nodes = snapshot.nodes
    node_pos = {node.node_id: i for i, node in enumerate(nodes)}
    kind_pos = {kind: i for i, kind in enumerate(KINDS)}
    sku_pos = {item.sku: i for i, item in enumerate(snapshot.items)}
    inventory = snapshot.inventory
    count = len(inventory)
    row_node = np.fromiter((node_pos[r.node_id] for r in inventory), np.int64, count)
    row_sku = np.fromiter((sku_pos[r.sku] for r in inventory), np.int64, count)
    fields = {
        name: np.fromiter((getattr(r, name) for r in inventory), np.int64, count)
        for name in ("on_hand", "reserved", "safety_stock", "unit_cost")
    }
    order = np.argsort(row_sku, kind="stable")
    lead = np.array([node.lead_time_days for node in nodes], dtype=np.int64)
    lot_rows: list[int] = []
    lot_release: list[int] = []
    lot_qty: list[int] = []
    for new_row, old_row in enumerate(order.tolist()):
        position = inventory[old_row]
        for lot in position.in_transit:
            lot_rows.append(new_row)
            lot_release.append(lot.eta.toordinal() + int(lead[row_node[old_row]]))
            lot_qty.append(lot.quantity)
    lot_row_arr = np.array(lot_rows, dtype=np.int64)
    lot_order = np.argsort(lot_row_arr, kind="stable")
    lot_ptr = np.zeros(count + 1, dtype=np.int64)
    np.add.at(lot_ptr, lot_row_arr + 1, 1)
    row_ptr = np.zeros(len(sku_pos) + 1, dtype=np.int64)
    np.add.at(row_ptr, row_sku + 1, 1)
    return SnapshotIndex(
        snapshot=snapshot,
        node_pos=node_pos,
        node_lat=np.array([n.location.lat for n in nodes]),
        node_lon=np.array([n.location.lon for n in nodes]),
        node_kind=np.array([kind_pos[n.kind] for n in nodes], dtype=np.int64),
        node_priority=np.array([n.priority for n in nodes], dtype=np.int64),
        node_lead=lead,
        node_handling=np.array([n.handling_cost for n in nodes], dtype=np.int64),
        node_pick_cost=np.array([n.pick_cost for n in nodes], dtype=np.int64),
        node_protection=np.array([n.protection_units for n in nodes], dtype=np.int64),
        service_mask=tuple(
            np.ones(len(nodes), dtype=np.bool_)
            if not service.node_ids
            else np.isin(np.arange(len(nodes)), [node_pos[n] for n in service.node_ids])
            for service in snapshot.services
        ),
        sku_pos=sku_pos,
        sku_weight_g=np.array([item.weight_g for item in snapshot.items], dtype=np.int64),
        row_ptr=np.cumsum(row_ptr),
        row_node=row_node[order],
        row_sku=row_sku[order],
        row_on_hand=fields["on_hand"][order],
        row_reserved=fields["reserved"][order],
        row_safety=fields["safety_stock"][order],
        row_unit_cost=fields["unit_cost"][order],
        lot_ptr=np.cumsum(lot_ptr),
        lot_release=np.array(lot_release, dtype=np.int64)[lot_order],
        lot_qty=np.array(lot_qty, dtype=np.int64)[lot_order],
        row_in_transit=np.bincount(
            lot_row_arr, weights=np.array(lot_qty, dtype=np.float64), minlength=count
        ).astype(np.int64),
    )


_CACHE: OrderedDict[int, SnapshotIndex] = OrderedDict()
_CACHE_SIZE = 4
_LOCK = threading.Lock()


def index_of(snapshot: Snapshot) -> SnapshotIndex:
    """The array index of ``snapshot``, built on first use and kept for the last few snapshots."""
    key = id(snapshot)
    with _LOCK:
        found = _CACHE.get(key)
        # The index keeps its snapshot alive, so an id is never reused while cached.
        if found is not None and found.snapshot is snapshot:
            _CACHE.move_to_end(key)
            return found
    built = _build(snapshot)
    with _LOCK:
        _CACHE[key] = built
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return built
