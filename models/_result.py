"""What the engine answers: one option per service level, with shipments and costs."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from models._base import Frozen
from models._enums import Engine, ServiceLevel, Status, UnfulfilledReason

__all__ = [
    "CostBreakdown",
    "PromiseOption",
    "PromiseResult",
    "Shipment",
    "ShipmentLine",
    "SolverStats",
    "Unfulfilled",
]


class ShipmentLine(Frozen):
    """Units of one cart line in a shipment."""

    line_id: str
    sku: str
    quantity: int = Field(gt=0)


class CostBreakdown(Frozen):
    """Fulfilment cost in cents: shipping + handling + pick labour."""

    shipping: int = 0
    handling: int = 0
    labour: int = 0
    total: int = 0


class Shipment(Frozen):
    """One package leaving a node on a date with a carrier service."""

    node_id: str
    carrier_service_id: str
    ship_date: dt.date
    delivery_date: dt.date
    zone: int = Field(ge=1, le=8)
    distance_km: float
    weight_kg: float
    lines: tuple[ShipmentLine, ...]
    cost: CostBreakdown


class Unfulfilled(Frozen):
    """Units of a line that could not be promised, and why."""

    line_id: str
    sku: str
    quantity: int = Field(gt=0)
    reason: UnfulfilledReason


class PromiseOption(Frozen):
    """The answer for one service level."""

    service_level: ServiceLevel
    status: Status
    promised_delivery_date: dt.date | None
    shipments: tuple[Shipment, ...] = ()
    unfulfilled: tuple[Unfulfilled, ...] = ()
    cost: CostBreakdown = CostBreakdown()
    revenue: int = 0
    margin: int = Field(default=0, description="Revenue − unit costs − fulfilment cost, cents.")
    split_count: int = Field(default=0, description="Shipments beyond the first.")
    objective: int = Field(default=0, description="Weighted objective the engine minimised.")
    opportunity_cost: int = Field(
        default=0,
        description=(
            "Opportunity cost of the stock this option takes, cents (the live price table × "
            "units, before its weight): part of the objective, never of cost or margin."
        ),
    )
    fallback: bool = Field(
        default=False, description="Time ran out: this is the greedy answer, not the model's."
    )
    proven: bool = Field(
        default=False,
        description=(
            "No cheaper answer exists under the model's contract (docs/model.md): true for "
            "optimal options and for partial or unfulfillable ones whose search finished."
        ),
    )
    explanation: str = ""


class SolverStats(Frozen):
    """How the answer was found."""

    engine: Engine
    status: Status
    wall_ms: float
    candidates: int = Field(description="Candidate nodes kept after the pre-filter.")
    fallback: bool
    variables: int = 0
    prices_version: int | None = Field(
        default=None, description="Version of the opportunity-cost price table used, if any."
    )
    model_errors: tuple[str, ...] = Field(
        default=(),
        description="Models CP-SAT refused or found infeasible (a bug, never a time-out).",
    )
    cp_status: tuple[str, ...] = Field(
        default=(),
        description=(
            "CP-SAT's own status of each level whose MIP ran, as 'level: STATUS' "
            "(e.g. 'ground: OPTIMAL'); levels answered without a model are not listed."
        ),
    )


class PromiseResult(Frozen):
    """All options for a cart, the recommended level and solver stats."""

    cart_id: str
    channel: str
    requested_at: dt.datetime = Field(description="The order instant the promise was made for.")
    order_date: dt.date = Field(description="The destination's local date at that instant.")
    options: tuple[PromiseOption, ...]
    recommended: ServiceLevel | None
    solver: SolverStats
