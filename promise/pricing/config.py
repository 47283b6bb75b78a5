"""Settings of the re-pricing job, read from ``PROMISE_PRICING_*`` environment variables.

They sit beside :class:`promise.settings.Settings` (same prefix, disjoint names), so every worker
process reads them from the environment it inherits. The job is off unless
``PROMISE_PRICING_EVERY_ORDERS`` or ``PROMISE_PRICING_EVERY_S`` is set, and then it needs a
forecast: a CSV file (``PROMISE_PRICING_FORECAST``) or a scenario store
(``PROMISE_PRICING_SCENARIOS``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from promise.settings import EnvSettings

__all__ = ["PricingSettings"]


class PricingSettings(EnvSettings):
    """When the service re-prices stock, from what forecast, and how."""

    pricing_every_orders: Annotated[int, Field(ge=1, le=10_000_000)] | None = Field(
        default=None,
        description="Re-price once this many holds were placed (on any host) since the current "
        "table was written; None: not on orders.",
    )
    pricing_every_s: Annotated[float, Field(ge=1, le=30 * 86400)] | None = Field(
        default=None,
        description="Re-price once the current table is this old; None: not on time.",
    )
    pricing_forecast: Path | None = Field(
        default=None,
        description="CSV forecast over the horizon: lat,lon,sku,units or lat,lon,skus,orders.",
    )
    pricing_scenarios: Path | None = Field(
        default=None,
        description="Scenario store (DuckDB) whose captured promises make the forecast; it must "
        "not be open for writing (merge capture files into it).",
    )
    pricing_channel: Annotated[str, Field(min_length=1, max_length=64)] = "web"
    pricing_horizon_s: Annotated[float, Field(ge=60, le=365 * 86400)] = Field(
        default=86400.0, description="The period the forecast demand covers (scenarios scaled)."
    )
    pricing_lookback_s: Annotated[float, Field(ge=60, le=365 * 86400)] = Field(
        default=7 * 86400.0, description="The period of captured scenarios the forecast reads."
    )
    pricing_cell_deg: Annotated[float, Field(gt=0, le=90)] = Field(
        default=1.0, description="Demand regions are cells of this many degrees a side."
    )
    pricing_lp: Literal["baskets", "units"] = Field(
        default="units",
        description="The pricing LP: orders as baskets of SKUs (sees package costs and "
        "splits), or units one by one (the transportation LP).",
    )
    pricing_baskets: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=400, description="Basket LP: the most frequent multi-SKU baskets kept whole."
    )
    pricing_nearest: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=8, description="Arcs kept per region and SKU: its cheapest stocking nodes."
    )
    pricing_check_s: Annotated[float, Field(ge=0.05, le=3600)] = Field(
        default=5.0, description="How often the job's lease holder checks whether one is due."
    )
    pricing_lease_s: Annotated[float, Field(ge=1, le=3600)] = Field(
        default=30.0,
        description="The job's lease in the authority: another host takes over this long after "
        "its holder stopped renewing.",
    )
    pricing_timeout_s: Annotated[float, Field(ge=1, le=86400)] = Field(
        default=900.0, description="A pricing run still going after this long is killed."
    )

    @property
    def enabled(self) -> bool:
        """Whether the service re-prices on its own."""
        return self.pricing_every_orders is not None or self.pricing_every_s is not None

    @model_validator(mode="after")
    def _one_forecast(self) -> PricingSettings:
        """An enabled job needs exactly one forecast source."""
        sources = [p for p in (self.pricing_forecast, self.pricing_scenarios) if p is not None]
        if len(sources) > 1:
            raise ValueError("set one of pricing_forecast and pricing_scenarios, not both")
        if self.enabled and not sources:
            raise ValueError(
                "re-pricing needs a forecast: set pricing_forecast (CSV) or pricing_scenarios"
            )
        return self
