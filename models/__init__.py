"""Domain types of the promise engine: frozen pydantic models that reject unknown fields.

Money is integer cents, weights are grams, dates are calendar dates in the node's local time.
"""

from models._availability import AvailabilityReport, NodeAvailability, SkuAvailability, Tiers
from models._base import (
    EARLIEST_DATE,
    LATEST_DATE,
    BooleanOnly,
    Day,
    Frozen,
    Instant,
    IntegerOnly,
    at_most,
)
from models._cache import PerSnapshot
from models._enums import Engine, NodeKind, ServiceLevel, Status, UnfulfilledReason
from models._exact import (
    ceil_percent,
    ceil_percent_array,
    floor_share,
    floor_share_array,
    margin_floor_scale,
    meets_margin_floor,
    scale_cents,
    scale_cents_array,
)
from models._inventory import (
    Buffer,
    ChannelPolicy,
    InTransitLot,
    InventoryPosition,
    InventoryTable,
    ObjectiveWeights,
    Percent,
    Share,
    WeightOverrides,
)
from models._network import ZONE_COUNT, CarrierService, CatalogItem, Location, Node, ZoneRate
from models._request import MAX_LINE_QUANTITY, Cart, CartLine, Destination, PromiseRequest
from models._result import (
    CostBreakdown,
    PromiseOption,
    PromiseResult,
    Shipment,
    ShipmentLine,
    SolverStats,
    Unfulfilled,
)
from models._snapshot import Snapshot

__all__ = [
    "EARLIEST_DATE",
    "LATEST_DATE",
    "MAX_LINE_QUANTITY",
    "ZONE_COUNT",
    "AvailabilityReport",
    "BooleanOnly",
    "Buffer",
    "CarrierService",
    "Cart",
    "CartLine",
    "CatalogItem",
    "ChannelPolicy",
    "CostBreakdown",
    "Day",
    "Destination",
    "Engine",
    "Frozen",
    "InTransitLot",
    "Instant",
    "IntegerOnly",
    "InventoryPosition",
    "InventoryTable",
    "Location",
    "Node",
    "NodeAvailability",
    "NodeKind",
    "ObjectiveWeights",
    "PerSnapshot",
    "Percent",
    "PromiseOption",
    "PromiseRequest",
    "PromiseResult",
    "ServiceLevel",
    "Share",
    "Shipment",
    "ShipmentLine",
    "SkuAvailability",
    "Snapshot",
    "SolverStats",
    "Status",
    "Tiers",
    "Unfulfilled",
    "UnfulfilledReason",
    "WeightOverrides",
    "ZoneRate",
    "at_most",
    "ceil_percent",
    "ceil_percent_array",
    "floor_share",
    "floor_share_array",
    "margin_floor_scale",
    "meets_margin_floor",
    "scale_cents",
    "scale_cents_array",
]
