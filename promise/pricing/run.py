"""One pricing run against the authority: live network and stock, a forecast, the LP, a write.

The run reads the live snapshot and the live stock from the authority (as a worker would),
builds the forecast, prices every (node, SKU) by the duals of the transportation LP
(``solver.pricing``) and writes the prices as the authority's next table version, in one
transaction, audited under ``actor``. With ``expect`` it writes only if that version is still
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
    ScenarioForecast,
    forecast_from_store,
    read_forecast_csv,
)
from solver import prepare
from solver.pricing import Forecast, PricingRun, price_stock

__all__ = ["ForecastSource", "PricingError", "PricingOutcome", "run_pricing"]


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
        """The forecast, and the scenario figures behind it when it comes from the store."""
        if self.csv is not None:
            return read_forecast_csv(self.csv), None
        if self.scenarios is None:
            raise PricingError("no forecast: give a CSV file or a scenario store")
        if not self.scenarios.is_file():
            raise PricingError(f"no scenario store at {self.scenarios}")
        with ScenarioStore(self.scenarios, read_only=True) as store:
            built = forecast_from_store(
                store,
                horizon=self.horizon,
                lookback=self.lookback,
                channel=channel,
                cell_deg=self.cell_deg,
            )
        return built.forecast, built


@dataclasses.dataclass(frozen=True, slots=True)
class PricingOutcome:
    """The version written and the figures of the run that made it."""

    table: PriceTable
    run: PricingRun
    forecast: Forecast
    scenarios: ScenarioForecast | None
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
            "regions": int(self.forecast.lat.size),
            "forecast_skus": len(self.forecast.skus),
            "forecast_units": round(self.forecast.total, 1),
            "skus_priced_by_lp": self.run.skus - self.run.screened,
            "skus_screened": self.run.screened,
            "arcs": self.run.arcs,
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
    origin: str = "cli",
    actor: str | None = None,
    expect: int | None = None,
    note: str = "",
    clock: Clock = utc_now,
) -> PricingOutcome:
    """Price the live stock for ``source``'s forecast and write the next table version."""
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
    forecast, figures = source.build(channel)
    computed_at = clock()
    run = price_stock(
        network,
        forecast,
        channel=channel,
        nearest=nearest,
        computed_at=computed_at,
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
        forecast=forecast,
        scenarios=figures,
        snapshot_version=snapshot.version,
        stock_rows=int(network.inventory.node.size),
        seconds=time.perf_counter() - started,
    )
