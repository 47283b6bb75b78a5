"""Enumerations shared by requests, results and the solver."""

from __future__ import annotations

import enum

__all__ = ["Engine", "NodeKind", "ServiceLevel", "Status", "UnfulfilledReason"]


class NodeKind(enum.StrEnum):
    """Kind of fulfilment node; channel buffers are set per kind."""

    DC = "dc"
    STORE = "store"
    DARK_STORE = "dark_store"


class ServiceLevel(enum.StrEnum):
    """Customer-facing delivery speed, fastest first."""

    SAME_DAY = "same_day"
    NEXT_DAY = "next_day"
    TWO_DAY = "two_day"
    GROUND = "ground"


class Status(enum.StrEnum):
    """Outcome of one option's solve (never a boolean)."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    FALLBACK = "fallback"
    PARTIAL = "partial"
    UNFULFILLABLE = "unfulfillable"


class Engine(enum.StrEnum):
    """Sourcing engine: the exact MIP or one of the greedy baselines."""

    MIP = "mip"
    PRIORITY = "priority"
    NEAREST = "nearest"
    FEWEST_SPLITS = "fewest_splits"


class UnfulfilledReason(enum.StrEnum):
    """Why units of a line could not be promised."""

    UNKNOWN_SKU = "unknown_sku"
    INSUFFICIENT_STOCK = "insufficient_stock"
    NO_SERVICE = "no_eligible_service"
    MAX_SHIPMENTS = "max_shipments"
    CAPACITY = "capacity_or_labour"
    MARGIN_FLOOR = "margin_floor"
    NOT_PARTIAL = "partial_not_allowed"
