"""Demand forecasts for the pricing LPs: from a CSV file, or from captured scenarios.

The per-unit LP (``solver.pricing``) wants expected units per demand region (a point) and SKU
over the pricing horizon; the basket LP (``solver.basket_pricing``) wants expected orders per
region and set of SKUs (a basket). Two sources:

- a CSV file with the columns ``lat,lon,sku,units`` (one row per region and SKU; rows of the
  same point are one region, repeated (point, SKU) rows add up), taken as the horizon's units;
- the scenario store: the promises captured over the last comparable period (``lookback``,
  a week by default, so each weekday counts once), ending at the newest scenario or at
  ``until``. Each cart counts once, as last quoted (checkout quotes a cart on every view).
  Destinations fall into cells of ``cell_deg`` × ``cell_deg`` degrees; a cell is one region,
  centred on the unit-weighted mean of its destinations. Units are scaled by horizon /
  lookback.

Baskets come from the same carts (each cart one order of the set of SKUs it holds, cells
centred on their carts' mean), or from a CSV file with the columns ``lat,lon,skus,orders``
(``skus`` separated by spaces). A units file read for the basket LP is one singleton basket
per region and SKU, and a basket file read for the unit LP counts a unit per SKU per order.

Quotes are a demand signal, not orders: a cart quoted and abandoned counts too. A forecast
built from them prices stock for the demand checkout saw, which is what the next quotes meet.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models import Destination
from scenarios._store import ScenarioStore
from solver.basket_pricing import BasketForecast
from solver.errors import PromiseError
from solver.geo import resolve_destination
from solver.pricing import Forecast

__all__ = [
    "BASKET_CSV_COLUMNS",
    "CSV_COLUMNS",
    "DEFAULT_LOOKBACK",
    "ForecastError",
    "ScenarioBaskets",
    "ScenarioForecast",
    "baskets_from_store",
    "baskets_of",
    "forecast_from_store",
    "is_basket_csv",
    "read_basket_csv",
    "read_forecast_csv",
    "units_of",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CSV_COLUMNS = ("lat", "lon", "sku", "units")
BASKET_CSV_COLUMNS = ("lat", "lon", "skus", "orders")
DEFAULT_LOOKBACK = dt.timedelta(days=7)
# Each cart once, as last quoted (checkout quotes a cart on every view).
_PICKED = """
WITH picked AS (
    SELECT request FROM scenarios
    WHERE requested_at >= $since AND requested_at < $until
      AND ($channel::VARCHAR IS NULL OR channel = $channel::VARCHAR)
    QUALIFY row_number() OVER (
        PARTITION BY request->>'$.cart.cart_id' ORDER BY requested_at DESC, id DESC) = 1
)
"""
# The picked carts' lines summed per destination and SKU. A destination is a point or a
# postal code (resolved in Python, as the solver resolves it).
_DEMAND_SQL = (
    _PICKED  # noqa: S608 - constant SQL joined to constant SQL
    + """, lines AS (
    SELECT request,
           unnest(from_json(request->'$.cart.lines',
                            '[{"sku": "VARCHAR", "quantity": "BIGINT"}]')) AS line
    FROM picked
)
SELECT TRY_CAST(request->>'$.destination.lat' AS DOUBLE) AS lat,
       TRY_CAST(request->>'$.destination.lon' AS DOUBLE) AS lon,
       request->>'$.destination.postal_code' AS postal_code,
       coalesce(request->>'$.destination.country', 'US') AS country,
       line.sku AS sku,
       CAST(sum(line.quantity) AS BIGINT) AS units
FROM lines
GROUP BY ALL
ORDER BY ALL
"""
)
_CARTS_SQL = _PICKED + "SELECT count(*) FROM picked"  # noqa: S608 - constant SQL
# Each picked cart: its destination and its lines.
_BASKETS_SQL = (
    _PICKED
    + """
SELECT TRY_CAST(request->>'$.destination.lat' AS DOUBLE) AS lat,
       TRY_CAST(request->>'$.destination.lon' AS DOUBLE) AS lon,
       request->>'$.destination.postal_code' AS postal_code,
       coalesce(request->>'$.destination.country', 'US') AS country,
       from_json(request->'$.cart.lines', '[{"sku": "VARCHAR", "quantity": "BIGINT"}]') AS lines
FROM picked
ORDER BY ALL
"""
)


class ForecastError(ValueError):
    """A forecast cannot be built from what was given (a bad file, an empty period)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ScenarioForecast:
    """A forecast built from the scenario store and the figures behind it."""

    forecast: Forecast
    since: dt.datetime
    until: dt.datetime
    scale: float  # horizon / lookback
    carts: int  # distinct carts in the period
    units: int  # units they asked for (before scaling)
    unresolved_units: int  # units to postal codes the dataset does not know (left out)


def read_forecast_csv(path: Path) -> Forecast:
    """A forecast from a CSV file with the header ``lat,lon,sku,units``."""
    points: dict[tuple[float, float], int] = {}
    skus: dict[str, int] = {}
    entries: list[tuple[int, int, float]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or set(CSV_COLUMNS) - set(reader.fieldnames):
            raise ForecastError(f"{path}: the header must name the columns {','.join(CSV_COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            try:
                lat, lon, units = float(row["lat"]), float(row["lon"]), float(row["units"])
            except (TypeError, ValueError) as exc:
                raise ForecastError(f"{path}:{line}: lat, lon and units must be numbers") from exc
            sku = (row["sku"] or "").strip()
            if not sku:
                raise ForecastError(f"{path}:{line}: sku is empty")
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ForecastError(f"{path}:{line}: ({lat}, {lon}) is not a point on Earth")
            if not math.isfinite(units) or units < 0:
                raise ForecastError(f"{path}:{line}: units must be finite and at least 0")
            region = points.setdefault((lat, lon), len(points))
            entries.append((region, skus.setdefault(sku, len(skus)), units))
    if not entries:
        raise ForecastError(f"{path}: no forecast rows")
    units_table = np.zeros((len(points), len(skus)))
    region_ix, sku_ix, amount = (np.array(column) for column in zip(*entries, strict=True))
    np.add.at(units_table, (region_ix.astype(np.int64), sku_ix.astype(np.int64)), amount)
    coordinates = np.array(list(points), dtype=np.float64)
    return Forecast(
        lat=coordinates[:, 0].copy(),
        lon=coordinates[:, 1].copy(),
        skus=tuple(skus),
        units=units_table,
    )


def _resolved(
    lat: FloatArray, lon: FloatArray, codes: list[str | None], countries: list[str]
) -> tuple[FloatArray, FloatArray]:
    """Coordinates of every destination; NaN where a postal code does not resolve."""
    lat = lat.copy()
    lon = lon.copy()
    found: dict[tuple[str, str], tuple[float, float]] = {}
    for k in np.flatnonzero(np.isnan(lat) | np.isnan(lon)).tolist():
        code = codes[k]
        if code is None:
            continue
        key = (code, countries[k])
        if key not in found:
            try:
                where = resolve_destination(Destination(postal_code=code, country=key[1]))
                found[key] = (where.lat, where.lon)
            except (PromiseError, ValueError):
                found[key] = (math.nan, math.nan)
        lat[k], lon[k] = found[key]
    return lat, lon


def _period_rows(
    store: ScenarioStore,
    sql: str,
    *,
    horizon: dt.timedelta,
    lookback: dt.timedelta,
    until: dt.datetime | None,
    channel: str | None,
    cell_deg: float,
) -> tuple[dt.datetime, dt.datetime, list[Any], FloatArray, FloatArray]:
    """The period, the rows ``sql`` reads for it and each row's destination as lat and lon."""
    if horizon <= dt.timedelta(0) or lookback <= dt.timedelta(0):
        raise ForecastError("horizon and lookback must be positive")
    if not 0 < cell_deg <= 90:
        raise ForecastError("cell_deg must be in (0, 90]")
    if until is None:
        newest = store.connection.execute("SELECT max(requested_at) FROM scenarios").fetchone()
        if newest is None or newest[0] is None:
            raise ForecastError("the scenario store holds no scenarios")
        # Just past the newest, so that it is inside the half-open period.
        until = newest[0] + dt.timedelta(microseconds=1)
    since = until - lookback
    period = {"since": since, "until": until, "channel": channel}
    rows = store.connection.execute(sql, period).fetchall()
    if not rows:
        raise ForecastError(f"no scenarios requested in [{since.isoformat()}, {until.isoformat()})")
    lat = np.array([math.nan if r[0] is None else r[0] for r in rows], dtype=np.float64)
    lon = np.array([math.nan if r[1] is None else r[1] for r in rows], dtype=np.float64)
    lat, lon = _resolved(lat, lon, [r[2] for r in rows], [str(r[3]) for r in rows])
    return since, until, rows, lat, lon


def forecast_from_store(
    store: ScenarioStore,
    *,
    horizon: dt.timedelta,
    lookback: dt.timedelta = DEFAULT_LOOKBACK,
    until: dt.datetime | None = None,
    channel: str | None = None,
    cell_deg: float = 1.0,
) -> ScenarioForecast:
    """Demand by region × SKU over the period before ``until``, scaled to ``horizon``."""
    since, until, rows, lat, lon = _period_rows(
        store,
        _DEMAND_SQL,
        horizon=horizon,
        lookback=lookback,
        until=until,
        channel=channel,
        cell_deg=cell_deg,
    )
    period = {"since": since, "until": until, "channel": channel}
    counted = store.connection.execute(_CARTS_SQL, period).fetchone()
    carts = 0 if counted is None else int(counted[0])
    units = np.array([r[5] for r in rows], dtype=np.float64)
    known = ~(np.isnan(lat) | np.isnan(lon))
    scale = horizon / lookback
    forecast = _gridded(
        lat[known],
        lon[known],
        [r[4] for r, ok in zip(rows, known, strict=True) if ok],
        units[known] * scale,
        cell_deg,
    )
    return ScenarioForecast(
        forecast=forecast,
        since=since,
        until=until,
        scale=scale,
        carts=carts,
        units=int(units.sum()),
        unresolved_units=int(units[~known].sum()),
    )


def _gridded(
    lat: FloatArray, lon: FloatArray, skus: list[str], units: FloatArray, cell_deg: float
) -> Forecast:
    """Units per cell × SKU; each cell centred on the unit-weighted mean of its points."""
    if not units.size:
        raise ForecastError("no destination of the period resolves to a point")
    cells = np.stack([np.floor(lat / cell_deg), np.floor(lon / cell_deg)], axis=1)
    _, region = np.unique(cells, axis=0, return_inverse=True)
    region = region.reshape(-1).astype(np.int64)
    sku_ids, sku_ix = np.unique(np.array(skus, dtype=object), return_inverse=True)
    count = int(region.max()) + 1
    weight = np.bincount(region, weights=units, minlength=count)
    # A cell whose units are all zero still has a centre: the plain mean of its points.
    plain = weight == 0
    weight_safe = np.where(plain, 1.0, weight)
    centre_lat = np.bincount(region, weights=lat * units, minlength=count) / weight_safe
    centre_lon = np.bincount(region, weights=lon * units, minlength=count) / weight_safe
    if plain.any():
        points = np.bincount(region, minlength=count)
        centre_lat[plain] = (np.bincount(region, weights=lat, minlength=count) / points)[plain]
        centre_lon[plain] = (np.bincount(region, weights=lon, minlength=count) / points)[plain]
    table = np.zeros((count, sku_ids.size))
    np.add.at(table, (region, sku_ix.reshape(-1).astype(np.int64)), units)
    return Forecast(
        lat=centre_lat,
        lon=centre_lon,
        skus=tuple(str(sku) for sku in sku_ids),
        units=table,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class ScenarioBaskets:
    """A basket forecast built from the scenario store and the figures behind it."""

    baskets: BasketForecast
    since: dt.datetime
    until: dt.datetime
    scale: float  # horizon / lookback
    carts: int  # distinct carts in the period
    units: int  # units they asked for (before scaling)
    unresolved_units: int  # units to postal codes the dataset does not know (left out)


def baskets_from_store(
    store: ScenarioStore,
    *,
    horizon: dt.timedelta,
    lookback: dt.timedelta = DEFAULT_LOOKBACK,
    until: dt.datetime | None = None,
    channel: str | None = None,
    cell_deg: float = 1.0,
) -> ScenarioBaskets:
    """Orders by cell × set of SKUs over the period before ``until``, scaled to ``horizon``."""
    since, until, rows, lat, lon = _period_rows(
        store,
        _BASKETS_SQL,
        horizon=horizon,
        lookback=lookback,
        until=until,
        channel=channel,
        cell_deg=cell_deg,
    )
    units = np.array([sum(int(line["quantity"]) for line in r[4]) for r in rows], dtype=np.int64)
    known = ~(np.isnan(lat) | np.isnan(lon))
    if not known.any():
        raise ForecastError("no destination of the period resolves to a point")
    scale = horizon / lookback
    carts = [
        tuple(sorted({str(line["sku"]) for line in r[4] if int(line["quantity"]) > 0}))
        for r, ok in zip(rows, known, strict=True)
        if ok
    ]
    baskets = _gridded_baskets(lat[known], lon[known], carts, scale, cell_deg)
    return ScenarioBaskets(
        baskets=baskets,
        since=since,
        until=until,
        scale=scale,
        carts=len(rows),
        units=int(units.sum()),
        unresolved_units=int(units[~known].sum()),
    )


def _gridded_baskets(
    lat: FloatArray,
    lon: FloatArray,
    carts: list[tuple[str, ...]],
    scale: float,
    cell_deg: float,
) -> BasketForecast:
    """``scale`` orders per cart, per cell and set of SKUs; cells centred on their carts' mean."""
    cells = np.stack([np.floor(lat / cell_deg), np.floor(lon / cell_deg)], axis=1)
    _, region = np.unique(cells, axis=0, return_inverse=True)
    region = region.reshape(-1).astype(np.int64)
    count = int(region.max()) + 1
    points = np.bincount(region, minlength=count)
    centre_lat = np.bincount(region, weights=lat, minlength=count) / points
    centre_lon = np.bincount(region, weights=lon, minlength=count) / points
    skus = tuple(sorted({sku for cart in carts for sku in cart}))
    position = {sku: k for k, sku in enumerate(skus)}
    counted: dict[tuple[int, tuple[int, ...]], float] = {}
    for cell, cart in zip(region.tolist(), carts, strict=True):
        if cart:
            key = (cell, tuple(position[sku] for sku in cart))
            counted[key] = counted.get(key, 0.0) + scale
    keys = sorted(counted)
    if not keys:
        raise ForecastError("no cart of the period holds a line")
    return BasketForecast(
        lat=centre_lat,
        lon=centre_lon,
        skus=skus,
        region=np.array([cell for cell, _ in keys], dtype=np.int64),
        items=tuple(items for _, items in keys),
        orders=np.array([counted[key] for key in keys], dtype=np.float64),
    )


def read_basket_csv(path: Path) -> BasketForecast:
    """A basket forecast from a CSV file with the header ``lat,lon,skus,orders``."""
    points: dict[tuple[float, float], int] = {}
    skus: dict[str, int] = {}
    counted: dict[tuple[int, tuple[int, ...]], float] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or set(BASKET_CSV_COLUMNS) - set(reader.fieldnames):
            raise ForecastError(
                f"{path}: the header must name the columns {','.join(BASKET_CSV_COLUMNS)}"
            )
        for line, row in enumerate(reader, start=2):
            try:
                lat, lon, orders = float(row["lat"]), float(row["lon"]), float(row["orders"])
            except (TypeError, ValueError) as exc:
                raise ForecastError(f"{path}:{line}: lat, lon and orders must be numbers") from exc
            names = sorted(set((row["skus"] or "").split()))
            if not names:
                raise ForecastError(f"{path}:{line}: skus is empty")
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ForecastError(f"{path}:{line}: ({lat}, {lon}) is not a point on Earth")
            if not math.isfinite(orders) or orders < 0:
                raise ForecastError(f"{path}:{line}: orders must be finite and at least 0")
            region = points.setdefault((lat, lon), len(points))
            items = tuple(sorted(skus.setdefault(name, len(skus)) for name in names))
            counted[region, items] = counted.get((region, items), 0.0) + orders
    if not counted:
        raise ForecastError(f"{path}: no forecast rows")
    coordinates = np.array(list(points), dtype=np.float64)
    keys = sorted(counted)
    return BasketForecast(
        lat=coordinates[:, 0].copy(),
        lon=coordinates[:, 1].copy(),
        skus=tuple(skus),
        region=np.array([region for region, _ in keys], dtype=np.int64),
        items=tuple(items for _, items in keys),
        orders=np.array([counted[key] for key in keys], dtype=np.float64),
    )


def baskets_of(forecast: Forecast) -> BasketForecast:
    """A units forecast as baskets: one singleton basket per region and SKU with demand."""
    region, sku = np.nonzero(forecast.units > 0)
    return BasketForecast(
        lat=forecast.lat,
        lon=forecast.lon,
        skus=forecast.skus,
        region=region.astype(np.int64),
        items=tuple((int(k),) for k in sku.tolist()),
        orders=forecast.units[region, sku].astype(np.float64),
    )


def units_of(baskets: BasketForecast) -> Forecast:
    """A basket forecast as units: each order of a basket wants one unit of each of its SKUs."""
    units = np.zeros((baskets.lat.size, len(baskets.skus)))
    for region, items, orders in zip(
        baskets.region.tolist(), baskets.items, baskets.orders.tolist(), strict=True
    ):
        units[region, list(items)] += orders
    return Forecast(lat=baskets.lat, lon=baskets.lon, skus=baskets.skus, units=units)


def is_basket_csv(path: Path) -> bool:
    """Whether a forecast file's header names the basket columns (else it is a units file)."""
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    return set(BASKET_CSV_COLUMNS) <= {name.strip() for name in header}
