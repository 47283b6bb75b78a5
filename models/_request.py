"""What checkout asks: a cart, a destination and options."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from models._base import BooleanOnly, Cents, Frozen, Identifier, Instant, IntegerOnly, at_most
from models._enums import ServiceLevel
from models._inventory import Percent, WeightOverrides

__all__ = ["MAX_LINE_QUANTITY", "Cart", "CartLine", "Destination", "PromiseRequest"]

# A checkout line above this is a wholesale order, not a cart; it would only inflate models.
MAX_LINE_QUANTITY = 10_000
MAX_CART_LINES = 500
# Counts and flags are strict: JSON true is not the quantity 1, nor 0 or "true" a boolean.
StrictBool = Annotated[bool, BooleanOnly]


class CartLine(Frozen):
    """One line of a cart: quantity of a SKU at a unit price (cents)."""

    line_id: Identifier
    sku: Identifier
    quantity: Annotated[int, Field(gt=0, le=MAX_LINE_QUANTITY), IntegerOnly]
    unit_price: Annotated[Cents, IntegerOnly] = 0


class Cart(Frozen):
    """A cart from one sales channel."""

    cart_id: Identifier
    channel: Identifier = "web"
    lines: Annotated[tuple[CartLine, ...], BeforeValidator(at_most(MAX_CART_LINES))] = Field(
        min_length=1, max_length=MAX_CART_LINES
    )

    @model_validator(mode="after")
    def _unique_line_ids(self) -> Cart:
        """Line ids identify lines in the answer, so they must be unique."""
        counts = Counter(line.line_id for line in self.lines)
        repeated = sorted(line_id for line_id, count in counts.items() if count > 1)
        if repeated:
            raise ValueError(f"duplicate line_id: {', '.join(repeated)}")
        return self


class Destination(Frozen):
    """Where the cart goes: a postal code (resolved offline) or coordinates."""

    postal_code: Annotated[str, Field(min_length=3, max_length=10)] | None = None
    country: Annotated[str, Field(min_length=2, max_length=2)] = "US"
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _postal_code_or_point(self) -> Destination:
        """Either a postal code or both coordinates identify the destination."""
        has_point = self.lat is not None and self.lon is not None
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        if self.postal_code is None and not has_point:
            raise ValueError("give a postal_code or both lat and lon")
        return self


class PromiseRequest(Frozen):
    """A promise request: cart, destination and solve options."""

    cart: Cart
    destination: Destination
    service_levels: (
        Annotated[tuple[ServiceLevel, ...], BeforeValidator(at_most(len(ServiceLevel)))] | None
    ) = Field(
        default=None,
        description="Levels to quote; default every level the network offers.",
        # What _unique_levels enforces, said in the published schema too.
        json_schema_extra={"minItems": 1, "uniqueItems": True},
    )
    max_shipments: Annotated[int, Field(ge=1, le=20), IntegerOnly] | None = None
    allow_partial: StrictBool = False
    requested_at: Instant | None = None
    time_budget_ms: Annotated[int, Field(ge=1, le=60_000), IntegerOnly] | None = None
    weights: WeightOverrides | None = None
    min_margin_pct: Percent | None = None

    @model_validator(mode="after")
    def _unique_levels(self) -> PromiseRequest:
        """Each service level is quoted once."""
        if self.service_levels is not None:
            if not self.service_levels:
                raise ValueError("service_levels must not be empty when given")
            if len(set(self.service_levels)) != len(self.service_levels):
                raise ValueError("service_levels must not repeat")
        return self
