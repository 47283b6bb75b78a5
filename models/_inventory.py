"""Inventory positions (tiers) and channel policies."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, model_validator

from models._base import Cents, Day, Entries, Frozen, Identifier, Many, NonNegInt, PosInt
from models._enums import NodeKind
from models._exact import DecimalPlaces, ceil_percent, floor_share

__all__ = [
    "MAX_LOTS_PER_ROW",
    "MAX_ROWS",
    "Buffer",
    "ChannelPolicy",
    "InTransitLot",
    "InventoryPosition",
    "InventoryTable",
    "ObjectiveWeights",
    "WeightOverrides",
]


# Inventory rows of one snapshot (2,000 nodes × 5,000 SKUs fully stocked is 10 million) and
# in-transit lots of one row: bounds far above any real network (see models._base.MAX_NODES).
MAX_ROWS = 50_000_000
MAX_LOTS_PER_ROW = 1_000
RowColumn = Annotated[tuple[Identifier, ...], Many(MAX_ROWS)]
CountColumn = Annotated[tuple[NonNegInt, ...], Many(MAX_ROWS)]


class InTransitLot(Frozen):
    """Units on their way to a node, available from ``eta`` (node local date)."""

    quantity: PosInt
    eta: Day


class InventoryPosition(Frozen):
    """Stock tiers of one SKU at one node."""

    node_id: Identifier
    sku: Identifier
    on_hand: NonNegInt
    reserved: NonNegInt = 0
    safety_stock: NonNegInt = 0
    unit_cost: Cents = 0
    in_transit: Annotated[tuple[InTransitLot, ...], Many(MAX_LOTS_PER_ROW)] = ()

    @model_validator(mode="after")
    def _reserved_within_on_hand(self) -> InventoryPosition:
        """Reservations are taken from units on hand."""
        if self.reserved > self.on_hand:
            raise ValueError(
                f"reserved ({self.reserved}) exceeds on_hand ({self.on_hand}) "
                f"for {self.sku} at {self.node_id}"
            )
        return self


class InventoryTable(Frozen):
    """Inventory rows as columns: the compact form for large networks (same meaning as rows).

    Validating a few columns of plain integers is far cheaper than one model per row, and
    nothing per row is kept once the solver has turned the columns into arrays.
    """

    node_id: RowColumn
    sku: RowColumn
    on_hand: CountColumn
    reserved: CountColumn
    safety_stock: CountColumn
    unit_cost: Annotated[tuple[Cents, ...], Many(MAX_ROWS)]
    lot_row: CountColumn = Field(default=(), description="Row of each in-transit lot.")
    lot_quantity: Annotated[tuple[PosInt, ...], Many(MAX_ROWS)] = ()
    lot_eta: Annotated[tuple[dt.date, ...], Many(MAX_ROWS)] = ()

    @model_validator(mode="after")
    def _consistent(self) -> InventoryTable:
        """Columns line up, reservations fit on hand and lots point at rows."""
        count = len(self.node_id)
        columns = (self.sku, self.on_hand, self.reserved, self.safety_stock, self.unit_cost)
        if any(len(column) != count for column in columns):
            raise ValueError("inventory_table columns must all have the same length")
        if not len(self.lot_row) == len(self.lot_quantity) == len(self.lot_eta):
            raise ValueError("lot_row, lot_quantity and lot_eta must have the same length")
        over = [
            i for i, (r, o) in enumerate(zip(self.reserved, self.on_hand, strict=True)) if r > o
        ]
        if over:
            raise ValueError(f"reserved exceeds on_hand in rows {over[:5]}")
        if self.lot_row and max(self.lot_row) >= count:
            raise ValueError("lot_row points past the last inventory row")
        return self

    def __len__(self) -> int:
        """Number of rows."""
        return len(self.node_id)

    def row(self, index: int) -> InventoryPosition:
        """One row as a domain object."""
        return InventoryPosition(
            node_id=self.node_id[index],
            sku=self.sku[index],
            on_hand=self.on_hand[index],
            reserved=self.reserved[index],
            safety_stock=self.safety_stock[index],
            unit_cost=self.unit_cost[index],
            in_transit=tuple(
                InTransitLot(quantity=q, eta=eta)
                for r, q, eta in zip(self.lot_row, self.lot_quantity, self.lot_eta, strict=True)
                if r == index
            ),
        )


# Fractions are read as the decimals they were written as (models/_exact.py), hence the limit
# on decimal places; money multipliers and penalties are bounded so that every objective the
# solver builds stays an exact integer (docs/model.md, "Objective").
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False), DecimalPlaces]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False), DecimalPlaces]
Weight = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False), DecimalPlaces]
MAX_PENALTY = 10**9
Penalty = Annotated[int, Field(ge=0, le=MAX_PENALTY)]


class Buffer(Frozen):
    """Units a channel must leave untouched at a node: the larger of units and percent."""

    units: NonNegInt = 0
    percent: Percent = 0.0

    def units_for(self, on_hand: int) -> int:
        """Buffer in units for a node holding ``on_hand`` units."""
        return max(self.units, ceil_percent(self.percent, on_hand))


class ObjectiveWeights(Frozen):
    """Objective weights: multipliers on money terms, cents on penalty terms."""

    shipping: Weight = 1.0
    handling: Weight = 1.0
    labour: Weight = 1.0
    unit_cost: Weight = 0.0
    revenue: Weight = 0.0
    opportunity: Weight = Field(
        default=1.0,
        description=(
            "Multiplier on the opportunity cost of stock (cents per unit taken from a (node, SKU)"
            " in the live price table; 0 ignores the table)."
        ),
    )
    split_penalty: Penalty = Field(default=200, description="Cents per package beyond the first.")
    lateness_per_day: Penalty = Field(default=50, description="Cents per day until delivery.")
    protection_per_unit: Penalty = Field(
        default=300, description="Cents per unit taken below a node's protection level."
    )
    unfilled_per_unit: Penalty = Field(
        default=1_000_000, description="Cents per unit left unfilled (dominates everything)."
    )


class WeightOverrides(Frozen):
    """Per-request overrides of some objective weights; omitted fields keep the policy's."""

    shipping: Weight | None = None
    handling: Weight | None = None
    labour: Weight | None = None
    unit_cost: Weight | None = None
    revenue: Weight | None = None
    opportunity: Weight | None = None
    split_penalty: Penalty | None = None
    lateness_per_day: Penalty | None = None
    protection_per_unit: Penalty | None = None
    unfilled_per_unit: Penalty | None = None

    def apply(self, weights: ObjectiveWeights) -> ObjectiveWeights:
        """Return ``weights`` with the fields set here replaced."""
        return weights.model_copy(update=self.model_dump(exclude_none=True))


class ChannelPolicy(Frozen):
    """How a sales channel may use stock and what it optimises."""

    channel: Identifier
    buffers: Annotated[dict[NodeKind, Buffer], Entries(len(NodeKind))] = Field(default_factory=dict)
    in_transit_share: Share = 0.95
    max_shipments: Annotated[int, Field(ge=1, le=20)] = 3
    min_margin_pct: Percent | None = None
    weights: ObjectiveWeights = ObjectiveWeights()

    def buffer_units(self, kind: NodeKind, on_hand: int) -> int:
        """Buffer this channel keeps at a node of ``kind`` holding ``on_hand`` units."""
        buffer = self.buffers.get(kind)
        return 0 if buffer is None else buffer.units_for(on_hand)

    def in_transit_units(self, units: int) -> int:
        """In-transit units this channel may promise: ``floor(share × units)``, exactly."""
        return floor_share(self.in_transit_share, units)
