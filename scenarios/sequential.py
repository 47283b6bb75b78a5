"""Replay stored scenarios as one day: in arrival order, on depleting stock, stored as a run.

``promise replay --sequential`` shows what a policy does to a whole day rather than to each
order alone. The day starts from the stock the scenarios saw: for each (node, SKU) the row of
the earliest scenario that carried it (its slice was captured before that order took
anything). Orders are then answered one after another by scenarios/day.py, each taking its
stock, carrier capacity and labour from the next; every answer is checked; the rows go into
the store as a run like any replay, so ``compare`` and the KPIs work on it.

A priced policy needs a forecast: demand by region and basket from another selection of
scenarios (``forecast``: the last comparable period), scaled to the day's order count.
Regions are cells of one degree of latitude and longitude, centred on their orders' mean.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from models import InventoryPosition, PromiseRequest, PromiseResult, ServiceLevel, Snapshot
from scenarios._records import RunInfo, Scenario, Selection
from scenarios._schema import StoreError
from scenarios._store import ScenarioStore
from scenarios.day import Day, DayPolicy, DayResult, run_day
from scenarios.policy import DEFAULT_POLICY, Policy
from scenarios.replay import code_version, result_rows, selection_of
from solver.basket_pricing import BasketForecast
from solver.checker import CheckReport
from solver.geo import resolve_destination
from solver.pricing import Forecast

__all__ = ["SEQUENTIAL", "forecast_of", "replay_sequential", "stored_day"]

# Engine label prefix of a sequential run (the engine follows it: "sequential:mip").
SEQUENTIAL = "sequential"


def forecast_of(
    requests: Sequence[PromiseRequest], *, skus: Sequence[str], orders: int
) -> tuple[Forecast, BasketForecast]:
    """Demand of ``orders`` orders by region × SKU and by basket, from past ``requests``."""
    cells: dict[tuple[int, int], list[tuple[float, float]]] = {}
    baskets: dict[tuple[tuple[int, int], tuple[int, ...]], float] = {}
    position = {sku: k for k, sku in enumerate(skus)}
    for request in requests:
        point = resolve_destination(request.destination)
        cell = (math.floor(point.lat), math.floor(point.lon))
        cells.setdefault(cell, []).append((point.lat, point.lon))
        items = tuple(
            sorted({position[line.sku] for line in request.cart.lines if line.sku in position})
        )
        if items:
            baskets[cell, items] = baskets.get((cell, items), 0.0) + 1.0
    keys = sorted(cells)
    index = {cell: k for k, cell in enumerate(keys)}
    lat = np.array([np.mean([p[0] for p in cells[c]]) for c in keys], dtype=np.float64)
    lon = np.array([np.mean([p[1] for p in cells[c]]) for c in keys], dtype=np.float64)
    scale = orders / max(1, len(requests))
    units = np.zeros((len(keys), len(skus)))
    basket_keys = sorted(baskets)
    for (cell, items), count in baskets.items():
        units[index[cell], list(items)] += count * scale
    return Forecast(lat, lon, tuple(skus), units), BasketForecast(
        lat=lat,
        lon=lon,
        skus=tuple(skus),
        region=np.array([index[cell] for cell, _ in basket_keys], dtype=np.int64),
        items=tuple(items for _, items in basket_keys),
        orders=np.array([baskets[key] * scale for key in basket_keys], dtype=np.float64),
    )


def stored_day(
    store: ScenarioStore,
    selection: Selection,
    *,
    level: ServiceLevel,
    policy: Policy = DEFAULT_POLICY,
    forecast: Selection | None = None,
) -> tuple[Day, list[str]]:
    """The selected scenarios as a day (and their ids in arrival order)."""
    scenarios = sorted(store.scenarios(selection), key=lambda s: (s.requested_at, s.scenario_id))
    if not scenarios:
        raise ValueError(f"no scenarios match the selection ({selection.describe()})")
    versions = {s.network_version for s in scenarios}
    if len(versions) != 1:
        raise StoreError("a sequential replay needs scenarios of one network version")
    base = policy.apply(store.network(versions.pop()))
    stock: dict[tuple[str, str], InventoryPosition] = {}
    for scenario in scenarios:
        for row in scenario.inventory:
            stock.setdefault((row.node_id, row.sku), row)
    ordered = {line.sku for s in scenarios for line in s.request.cart.lines}
    skus = sorted({sku for _, sku in stock} | ordered)
    known = {item.sku for item in base.items}
    # Validated as a whole: the day's rows must name the network's nodes and SKUs.
    snapshot = Snapshot(
        version=f"{base.version}-day",
        as_of=scenarios[0].requested_at,
        nodes=base.nodes,
        services=base.services,
        items=tuple(item for item in base.items if item.sku in set(skus)),
        inventory=tuple(stock.values()),
        policies=base.policies,
    )
    orders = tuple(_order(s, level) for s in scenarios)
    past = [] if forecast is None else [s.request for s in store.scenarios(forecast)]
    units, baskets = forecast_of(past, skus=[s for s in skus if s in known], orders=len(orders))
    day = Day(
        name=selection.describe(),
        snapshot=snapshot,
        orders=orders,
        level=level,
        forecast=units,
        baskets=baskets,
    )
    return day, [s.scenario_id for s in scenarios]


def _order(scenario: Scenario, level: ServiceLevel) -> PromiseRequest:
    """A scenario's request quoted at ``level`` at its own order instant."""
    return scenario.request.model_copy(
        update={"service_levels": (level,), "requested_at": scenario.requested_at}
    )


def replay_sequential(
    store: ScenarioStore,
    selection: Selection | Sequence[str] | str | tuple[dt.datetime, dt.datetime] | None,
    *,
    day_policy: DayPolicy,
    level: ServiceLevel = ServiceLevel.GROUND,
    policy: Policy = DEFAULT_POLICY,
    forecast: Selection | None = None,
    label: str = "",
    progress: bool = True,
) -> tuple[int, DayResult]:
    """Replay the selection as one day under ``day_policy``; the stored run id and the day."""
    wanted = selection_of(selection)
    day, ids = stored_day(store, wanted, level=level, policy=policy, forecast=forecast)
    if day_policy.pricing != "none" and not day.forecast.units.any():
        raise ValueError("a priced sequential replay needs a forecast selection with orders")
    rows: list[tuple[Any, ...]] = []
    run_id = store.next_run_id()
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    description = f"{SEQUENTIAL} {day_policy.engine.value} / {day_policy.name}"
    with tqdm(
        total=len(ids), desc=description, unit="order", disable=not progress, file=sys.stderr
    ) as bar:

        def keep(position: int, result: PromiseResult, report: CheckReport) -> None:
            """Store the order's rows as they come."""
            rows.extend(result_rows(ids[position], result, report))
            bar.update(1)

        result = run_day(day, day_policy, observe=keep)
    settings = {**dataclasses.asdict(day_policy), "engine": day_policy.engine.value}
    info = RunInfo(
        run_id=run_id,
        label=label or description,
        engine=f"{SEQUENTIAL}:{day_policy.engine.value}",
        policy_name=f"{policy.name}+{day_policy.name}",
        policy_hash=policy.digest,
        policy=json.dumps({**policy.model_dump(mode="json"), "day": settings}),
        code_version=code_version(),
        selection=wanted.describe(),
        levels=level.value,
        workers=1,
        started=started,
        duration_s=round(time.perf_counter() - clock, 4),
        scenario_count=len(ids),
    )
    store.record_run(info, rows)
    return run_id, result
