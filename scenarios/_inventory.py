"""Synthetic inventory rows: which nodes stock which SKUs, how deep, and lots in transit.

Rows are drawn as numpy columns, one kind of node at a time (DCs deep and broad, dark stores
medium, stores shallow and partial), and turned into domain objects, or the columnar
``InventoryTable``, without per-row validation: every column is drawn within the model's
bounds, and the JSON round-trip test proves the output validates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from models import InTransitLot, InventoryPosition, InventoryTable, NodeKind

__all__ = ["InventoryRows", "generate_inventory", "inventory_positions", "inventory_table"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Zipf exponent of SKU popularity (rank r has weight r^-s).
POPULARITY_EXPONENT = 1.0

# Store on-hand quantities 0..8: mostly one or two units, so channel buffers bite.
_STORE_ON_HAND_PMF = np.array([0.05, 0.30, 0.24, 0.14, 0.09, 0.07, 0.05, 0.03, 0.03])


@dataclasses.dataclass(frozen=True, slots=True)
class InventoryRows:
    """Inventory rows as columns."""

    node: IntArray
    sku: IntArray
    on_hand: IntArray
    reserved: IntArray
    safety: IntArray
    unit_cost: IntArray
    lot_qty: IntArray  # (rows, 2); 0 means no lot
    lot_days: IntArray  # (rows, 2); days after as_of


def generate_inventory(
    kinds: tuple[NodeKind, ...], rank: IntArray, unit_cost: FloatArray, rng: np.random.Generator
) -> InventoryRows:
    """Rows of nodes of ``kinds`` for SKUs of popularity ``rank`` (0 = best seller)."""
    skus = len(rank)
    # rel is 1 for the best seller and near 0 for the tail; zipf is the demand weight.
    rel = np.asarray(1.0 - rank / skus, dtype=np.float64)
    zipf = np.asarray(1.0 / (rank + 1.0) ** POPULARITY_EXPONENT, dtype=np.float64)
    parts: list[InventoryRows] = []
    for kind in (NodeKind.DC, NodeKind.DARK_STORE, NodeKind.STORE):
        nodes = np.flatnonzero(np.array([k is kind for k in kinds]))
        if len(nodes):
            parts.append(
                _rows_for(kind=kind, nodes=nodes, rel=rel, zipf=zipf, unit_cost=unit_cost, rng=rng)
            )
    rows = InventoryRows(
        *(
            np.concatenate([getattr(p, f.name) for p in parts])
            for f in dataclasses.fields(InventoryRows)
        )
    )
    order = np.lexsort((rows.sku, rows.node))
    return InventoryRows(*(getattr(rows, f.name)[order] for f in dataclasses.fields(InventoryRows)))


def _rows_for(
    *,
    kind: NodeKind,
    nodes: IntArray,
    rel: FloatArray,
    zipf: FloatArray,
    unit_cost: FloatArray,
    rng: np.random.Generator,
) -> InventoryRows:
    """Inventory rows of the nodes of one kind."""
    skus = len(rel)
    if kind is NodeKind.STORE:
        # Popular SKUs are in nearly every store; the long tail in few.
        flat = zipf**0.5
        flat /= flat.mean()
        share = rng.uniform(0.06, 0.14, size=len(nodes))
        prob = np.minimum(1.0, share[:, None] * flat[None, :])
    else:
        coverage = (
            rng.uniform(0.80, 0.95, size=len(nodes))
            if kind is NodeKind.DC
            else rng.uniform(0.30, 0.50, size=len(nodes))
        )
        # Mean inclusion equals the coverage; best sellers are always stocked.
        prob = np.clip(1.0 - (1.0 - coverage[:, None]) * 2.0 * (1.0 - rel[None, :]), 0.0, 1.0)
    held = rng.random((len(nodes), skus), dtype=np.float32) < prob
    node_pos, sku = np.nonzero(held)
    node = nodes[node_pos]
    n = len(sku)
    if kind is NodeKind.STORE:
        on_hand = rng.choice(len(_STORE_ON_HAND_PMF), size=n, p=_STORE_ON_HAND_PMF)
        on_hand = np.minimum(on_hand + (rel[sku] > 0.95) * rng.integers(0, 3, size=n), 8)
        safety = np.where((on_hand >= 3) & (rng.random(n) < 0.15), 1, 0)
        reserved = np.where((on_hand >= 1) & (rng.random(n) < 0.08), 1, 0)
        lot_share = 0.02
        lot_scale = np.full(n, 1.0)
    else:
        depth = 15.0 if kind is NodeKind.DC else 3.0
        mean = depth * (skus * zipf[sku]) ** 0.45 * rng.lognormal(0.0, 0.4, size=n)
        on_hand = rng.poisson(mean) * (rng.random(n) > 0.04)  # a few stock-outs
        safety = np.floor(on_hand * rng.uniform(0.03, 0.10, size=n))
        reserved = rng.binomial(on_hand, 0.03)
        lot_share = 0.25 if kind is NodeKind.DC else 0.05
        # A replenishment lot is about half the usual depth of the SKU at that node.
        lot_scale = 0.5 * mean
    has_lot = rng.random(n) < lot_share
    two_lots = has_lot & (rng.random(n) < 0.3)
    lot_qty = np.zeros((n, 2), dtype=np.int64)
    lot_qty[:, 0] = np.where(has_lot, 1 + rng.poisson(lot_scale), 0)
    lot_qty[:, 1] = np.where(two_lots, 1 + rng.poisson(lot_scale), 0)
    lot_days = np.sort(rng.integers(1, 11, size=(n, 2)), axis=1)
    cost = unit_cost[sku] * rng.uniform(0.97, 1.03, size=n)
    return InventoryRows(
        node=node.astype(np.int64),
        sku=sku.astype(np.int64),
        on_hand=on_hand.astype(np.int64),
        reserved=np.asarray(reserved, dtype=np.int64),
        safety=np.asarray(safety, dtype=np.int64),
        unit_cost=np.maximum(1, np.round(cost)).astype(np.int64),
        lot_qty=lot_qty,
        lot_days=lot_days.astype(np.int64),
    )


def _lots(rows: InventoryRows) -> Iterator[tuple[int, tuple[tuple[int, int], ...]]]:
    """Each row with lots in transit: its index and its lots as (quantity, days after as_of).

    Two lots arriving on the same day are one lot.
    """
    for i in np.flatnonzero(rows.lot_qty[:, 0] > 0).tolist():
        qty, days = rows.lot_qty[i].tolist(), rows.lot_days[i].tolist()
        if qty[1] and days[0] == days[1]:
            qty, days = [qty[0] + qty[1], 0], days[:1]
        yield i, tuple((q, d) for q, d in zip(qty, days, strict=False) if q)


def inventory_table(
    rows: InventoryRows, node_ids: tuple[str, ...], skus: tuple[str, ...], as_of: dt.date
) -> InventoryTable:
    """The rows as columns, skipping validation for the same reason as the row form."""
    lot_row: list[int] = []
    lot_quantity: list[int] = []
    lot_eta: list[dt.date] = []
    for i, lots in _lots(rows):
        for q, d in lots:
            lot_row.append(i)
            lot_quantity.append(q)
            lot_eta.append(as_of + dt.timedelta(days=d))
    node_names = np.array(node_ids, dtype=object)
    sku_names = np.array(skus, dtype=object)
    return InventoryTable.model_construct(
        node_id=tuple(node_names[rows.node].tolist()),
        sku=tuple(sku_names[rows.sku].tolist()),
        on_hand=tuple(rows.on_hand.tolist()),
        reserved=tuple(rows.reserved.tolist()),
        safety_stock=tuple(rows.safety.tolist()),
        unit_cost=tuple(rows.unit_cost.tolist()),
        lot_row=tuple(lot_row),
        lot_quantity=tuple(lot_quantity),
        lot_eta=tuple(lot_eta),
    )


def inventory_positions(
    rows: InventoryRows, node_ids: tuple[str, ...], skus: tuple[str, ...], as_of: dt.date
) -> tuple[InventoryPosition, ...]:
    """Domain objects for the rows, skipping per-row validation.

    Every column was produced by this module within the model's bounds (reserved and safety
    stock are drawn from on hand), so re-validating hundreds of thousands of rows would only
    cost seconds; the JSON round-trip test proves the output validates.
    """
    eta = {days: as_of + dt.timedelta(days=days) for days in range(31)}
    lots = {
        i: tuple(InTransitLot(quantity=q, eta=eta[d]) for q, d in row_lots)
        for i, row_lots in _lots(rows)
    }
    fields_set = set(InventoryPosition.model_fields)
    construct = InventoryPosition.model_construct
    empty: tuple[InTransitLot, ...] = ()
    return tuple(
        construct(
            fields_set,
            node_id=node_ids[n],
            sku=skus[k],
            on_hand=on_hand,
            reserved=reserved,
            safety_stock=safety,
            unit_cost=cost,
            in_transit=lots.get(i, empty),
        )
        for i, (n, k, on_hand, reserved, safety, cost) in enumerate(
            zip(
                rows.node.tolist(),
                rows.sku.tolist(),
                rows.on_hand.tolist(),
                rows.reserved.tolist(),
                rows.safety.tolist(),
                rows.unit_cost.tolist(),
                strict=True,
            )
        )
    )
