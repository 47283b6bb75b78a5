"""One pricing run against the authority: live network and stock, a forecast, the LP, a write.

The run reads the live snapshot and the live stock from the authority (as a worker would),
builds the forecast, prices every (node, SKU) by the duals of a pricing LP and writes the
prices as the authority's next table version, in one transaction, audited under ``actor``.
The LP is the order-level basket LP (``solver.basket_pricing``, the default: it sees package
fixed costs, splits, lateness and protection, and is what closes most of the gap of a day on
depleting stock, docs/multiorder.md) over forecast baskets, or the per-unit transportation LP
(``solver.pricing``) over forecast units. With ``expect`` it writes only if that version is still
current: of two runs started from the same version, one writes and the other is told
(``PricesMovedError``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path

from models import Snapshot
from promise.stock._price_queries import PriceTable
from promise.stock.backend import Clock, to_us, utc_now
from promise.stock.live import LiveInventory
from promise.stock.snapshots import LiveSnapshot
from promise.stock.sql import StockBackend
from scenarios import ScenarioStore
from scenarios.forecast import (
    DEFAULT_LOOKBACK,
    ScenarioBaskets,
    ScenarioForecast,
    baskets_from_store,
    baskets_of,
    forecast_from_store,
    is_basket_csv,
    read_basket_csv,
    read_forecast_csv,
    units_of,
)
from solver import prepare
from solver.basket_pricing import BasketForecast, price_baskets
from solver.pricing import Forecast, PricingRun, price_stock

__all__ = ["LPS", "ForecastSource", "PricingError", "PricingOutcome", "run_pricing"]

# The pricing LPs, the default first.
LPS = ("baskets", "units")


class PricingError(RuntimeError):
    """The run cannot start: no live network in the authority, or no usable forecast."""


@dataclasses.dataclass(frozen=True, slots=True)
class ForecastSource:
    """Where the forecast comes from: a CSV file, or captured scenarios over a period."""

    csv: Path | None = None
    scenarios: Path | None = None
    horizon: dt.timedelta = dt.timedelta(days=1)
    lookback: dt.timedelta = DEFAULT_LOOKBACK
    cell_deg: float = 1.0

    def describe(self) -> str:
        """Said in the table's note."""
        if self.csv is not None:
            return f"forecast {self.csv.name}"
        return (
            f"scenarios {self.scenarios.name if self.scenarios else '?'} over "
            f"{self.lookback.total_seconds() / 86400:g} d scaled to "
            f"{self.horizon.total_seconds() / 3600:g} h"
        )

    def build(self, channel: str) -> tuple[Forecast, ScenarioForecast | None]:
        """The units forecast, and the scenario figures behind it when it comes from the store."""
        if self.csv is not None:
            if is_basket_csv(self.csv):
                return units_of(read_basket_csv(self.csv)), None
            return read_forecast_csv(self.csv), None
        with self._store() as store:
            built = forecast_from_store(
                store,
                horizon=self.horizon,
                lookback=self.lookback,
                channel=channel,
                cell_deg=self.cell_deg,
            )
        return built.forecast, built

    def build_baskets(self, channel: str) -> tuple[BasketForecast, ScenarioBaskets | None]:
        """The basket forecast, and the scenario figures behind it when from the store."""
        if self.csv is not None:
            if is_basket_csv(self.csv):
                return read_basket_csv(self.csv), None
            return baskets_of(read_forecast_csv(self.csv)), None
        with self._store() as store:
            built = baskets_from_store(
                store,
                horizon=self.horizon,
                lookback=self.lookback,
                channel=channel,
                cell_deg=self.cell_deg,
            )
        return built.baskets, built

    def _store(self) -> ScenarioStore:
        """The scenario store, opened read-only."""
        if self.scenarios is None:
            raise PricingError("no forecast: give a CSV file or a scenario store")
        if not self.scenarios.is_file():
            raise PricingError(f"no scenario store at {self.scenarios}")
        return ScenarioStore(self.scenarios, read_only=True)


@dataclasses.dataclass(frozen=True, slots=True)
class PricingOutcome:
    """The version written and the figures of the run that made it."""

    table: PriceTable
    run: PricingRun
    lp: str  # baskets | units
    forecast: Forecast | BasketForecast
    scenarios: ScenarioForecast | ScenarioBaskets | None
    snapshot_version: str
    stock_rows: int
    seconds: float  # the whole run: loading, forecast, LP and write

    def figures(self) -> dict[str, object]:
        """The run's figures as JSON-ready values."""
        figures: dict[str, object] = {
            "version": self.table.version,
            "priced": self.table.priced,
            "snapshot_version": self.snapshot_version,
            "snapshot_generation": self.table.snapshot_generation,
            "stock_rows": self.stock_rows,
            "lp": self.lp,
            "regions": int(self.forecast.lat.size),
            "forecast_skus": len(self.forecast.skus),
        }
        if isinstance(self.forecast, BasketForecast):
            figures |= {
                "forecast_orders": round(float(self.forecast.orders.sum()), 1),
                "baskets": len(self.forecast.items),
                "columns": self.run.arcs,
            }
        else:
            figures |= {
                "forecast_units": round(self.forecast.total, 1),
                "skus_priced_by_lp": self.run.skus - self.run.screened,
                "skus_screened": self.run.screened,
                "arcs": self.run.arcs,
            }
        figures |= {
            "lp_status": self.run.status,
            "lp_objective_cents": round(self.run.objective),
            "lp_seconds": round(self.run.seconds, 3),
            "total_seconds": round(self.seconds, 3),
        }
        if self.scenarios is not None:
            figures |= {
                "scenarios_since": self.scenarios.since.isoformat(),
                "scenarios_until": self.scenarios.until.isoformat(),
                "carts": self.scenarios.carts,
                "cart_units": self.scenarios.units,
                "unresolved_units": self.scenarios.unresolved_units,
                "scale": round(self.scenarios.scale, 6),
            }
        return figures


def run_pricing(
    backend: StockBackend,
    source: ForecastSource,
    *,
    channel: str = "web",
    nearest: int = 8,
    lp: str = "baskets",
    baskets: int = 400,
    origin: str = "cli",
    actor: str | None = None,
    expect: int | None = None,
    note: str = "",
    clock: Clock = utc_now,
) -> PricingOutcome:
    """Price the live stock for ``source``'s forecast and write the next table version.

    ``lp`` is ``baskets`` (the order-level LP, its ``baskets`` most frequent multi-SKU
    baskets kept whole) or ``units`` (the per-unit transportation LP).
    """
    if lp not in LPS:
        raise PricingError(f"unknown pricing LP {lp!r}: one of {', '.join(LPS)}")
    started = time.perf_counter()
    found = backend.load_live_snapshot()
    if found is None:
        raise PricingError(
            "the authority has no live snapshot yet: start the service once, or PUT /v1/snapshot"
        )
    pointer, body = found
    snapshot = Snapshot.model_validate_json(body)
    # A one-off process: the snapshot is prepared for this run and goes with it.
    live = LiveSnapshot.of(prepare(snapshot), pointer.generation, pointer.digest, clock())
    network = LiveInventory(backend, clock).current(live, None)
    forecast: Forecast | BasketForecast
    figures: ScenarioForecast | ScenarioBaskets | None
    if lp == "baskets":
        forecast, figures = source.build_baskets(channel)
        computed_at = clock()
        run = price_baskets(
            network,
            forecast,
            channel=channel,
            nearest=nearest,
            baskets=baskets,
            computed_at=computed_at,
        )
    else:
        forecast, figures = source.build(channel)
        computed_at = clock()
        run = price_stock(
            network, forecast, channel=channel, nearest=nearest, computed_at=computed_at
        )
    said = f"{note}; " if note else ""
    table = backend.write_prices(
        run.prices.rows(),
        clock,
        origin=origin,
        note=f"{said}{source.describe()}: {run.prices.note} ({run.status})",
        computed_at=to_us(computed_at),
        actor=actor,
        expect=expect,
        snapshot_generation=pointer.generation,
    )
    return PricingOutcome(
        table=table,
        run=run,
        lp=lp,
        forecast=forecast,
        scenarios=figures,
        snapshot_version=snapshot.version,
        stock_rows=int(network.inventory.node.size),
        seconds=time.perf_counter() - started,
    )
