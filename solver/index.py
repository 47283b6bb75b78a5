"""A snapshot held as arrays indexed by node and SKU (part of a ``PreparedNetwork``).

The pydantic snapshot validates the JSON; solves read these arrays instead of walking one
Python object per inventory row. The network arrays are built once per prepared network; a
new inventory version rebuilds only the inventory arrays (``SnapshotIndex.with_inventory``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt

from models import ChannelPolicy, Node, NodeKind, Snapshot, ceil_percent_array
from solver.inventory import Inventory

__all__ = ["SnapshotIndex", "build_index"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
KINDS: tuple[NodeKind, ...] = tuple(NodeKind)


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class _Rows:
    """The inventory part of an index: what a new inventory version rebuilds."""

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


# The inventory fields, by name: copied from a fresh ``_Rows`` into an index.
_ROW_FIELDS = tuple(field.name for field in dataclasses.fields(_Rows))


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class SnapshotIndex(_Rows):
    """Arrays over nodes, SKUs and inventory rows of one snapshot (rows: see ``_Rows``)."""

    snapshot: Snapshot
    inventory: Inventory
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
    # ATP per row for each channel asked about: owned by this inventory version, one entry per
    # channel policy at most.
    _channel_atp: dict[str, IntArray] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        """Make every array read-only: solves share them, so none may write to them."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            for array in value if isinstance(value, tuple) else (value,):
                if isinstance(array, np.ndarray):
                    array.flags.writeable = False

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Nodes in index order."""
        return self.snapshot.nodes

    def rows_of(self, sku_index: int) -> slice:
        """Inventory rows of one SKU."""
        return slice(int(self.row_ptr[sku_index]), int(self.row_ptr[sku_index + 1]))

    def on_hand_atp(self, policy: ChannelPolicy) -> IntArray:
        """Per inventory row: on hand − reserved − safety − channel buffer, floored at 0."""
        known = self._channel_atp.get(policy.channel)
        if known is not None:
            return known
        units = np.array([policy.buffers[k].units if k in policy.buffers else 0 for k in KINDS])
        pct = np.array([policy.buffers[k].percent if k in policy.buffers else 0.0 for k in KINDS])
        kind = self.node_kind[self.row_node]
        # The exact rule of Buffer.units_for, element-wise.
        by_pct = ceil_percent_array(pct[kind], self.row_on_hand)
        buffer = np.maximum(units[kind], by_pct)
        atp: IntArray = np.maximum(
            0, self.row_on_hand - self.row_reserved - self.row_safety - buffer
        )
        atp.flags.writeable = False
        self._channel_atp[policy.channel] = atp
        return atp

    def in_transit(self, row: int) -> tuple[IntArray, IntArray]:
        """Release ordinals and quantities of one row's in-transit lots."""
        lo, hi = int(self.lot_ptr[row]), int(self.lot_ptr[row + 1])
        return self.lot_release[lo:hi], self.lot_qty[lo:hi]

    def with_inventory(self, inventory: Inventory) -> SnapshotIndex:
        """The same network arrays with ``inventory``'s rows (a version of this snapshot's)."""
        if inventory.snapshot is not self.snapshot:
            raise ValueError("inventory belongs to another snapshot")
        return dataclasses.replace(
            self,
            inventory=inventory,
            _channel_atp={},
            **_inventory_arrays(self.snapshot, inventory),
        )


def _inventory_arrays(snapshot: Snapshot, inventory: Inventory) -> dict[str, Any]:
    """Inventory rows sorted by SKU with CSR pointers, and their lots sorted by row, by field."""
    count = int(inventory.node.size)
    order = np.argsort(inventory.sku, kind="stable")
    new_row = np.empty(count, dtype=np.int64)
    new_row[order] = np.arange(count, dtype=np.int64)
    lead = np.array([node.lead_time_days for node in snapshot.nodes], dtype=np.int64)
    lot_row = new_row[inventory.lot_row] if inventory.lot_row.size else inventory.lot_row
    lot_order = np.argsort(lot_row, kind="stable")
    lot_ptr = np.zeros(count + 1, dtype=np.int64)
    np.add.at(lot_ptr, lot_row + 1, 1)
    row_ptr = np.zeros(len(snapshot.items) + 1, dtype=np.int64)
    np.add.at(row_ptr, inventory.sku + 1, 1)
    row_node = inventory.node[order]
    lot_node = inventory.node[inventory.lot_row] if inventory.lot_row.size else lot_row
    rows = _Rows(
        row_ptr=np.cumsum(row_ptr),
        row_node=row_node,
        row_sku=inventory.sku[order],
        row_on_hand=inventory.on_hand[order],
        row_reserved=inventory.reserved[order],
        row_safety=inventory.safety_stock[order],
        row_unit_cost=inventory.unit_cost[order],
        lot_ptr=np.cumsum(lot_ptr),
        lot_release=(inventory.lot_eta + lead[lot_node])[lot_order],
        lot_qty=inventory.lot_qty[lot_order],
        row_in_transit=np.bincount(
            lot_row, weights=inventory.lot_qty.astype(np.float64), minlength=count
        ).astype(np.int64),
    )
    return {name: getattr(rows, name) for name in _ROW_FIELDS}


def build_index(snapshot: Snapshot, inventory: Inventory) -> SnapshotIndex:
    """Turn a validated snapshot and a version of its inventory rows into arrays."""
    nodes = snapshot.nodes
    node_pos = {node.node_id: i for i, node in enumerate(nodes)}
    kind_pos = {kind: i for i, kind in enumerate(KINDS)}
    return SnapshotIndex(
        snapshot=snapshot,
        inventory=inventory,
        node_pos=node_pos,
        node_lat=np.array([n.location.lat for n in nodes]),
        node_lon=np.array([n.location.lon for n in nodes]),
        node_kind=np.array([kind_pos[n.kind] for n in nodes], dtype=np.int64),
        node_priority=np.array([n.priority for n in nodes], dtype=np.int64),
        node_lead=np.array([node.lead_time_days for node in nodes], dtype=np.int64),
        node_handling=np.array([n.handling_cost for n in nodes], dtype=np.int64),
        node_pick_cost=np.array([n.pick_cost for n in nodes], dtype=np.int64),
        node_protection=np.array([n.protection_units for n in nodes], dtype=np.int64),
        service_mask=tuple(
            np.ones(len(nodes), dtype=np.bool_)
            if not service.node_ids
            else np.isin(np.arange(len(nodes)), [node_pos[n] for n in service.node_ids])
            for service in snapshot.services
        ),
        sku_pos={item.sku: i for i, item in enumerate(snapshot.items)},
        sku_weight_g=np.array([item.weight_g for item in snapshot.items], dtype=np.int64),
        **_inventory_arrays(snapshot, inventory),
    )
