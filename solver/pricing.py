"""Opportunity cost of stock from the duals of a transportation LP over forecast demand.

For every SKU ``s``, stocking node ``n`` and demand region ``r`` of the forecast::

    min  Σ c[n,r,s] x[n,r,s] + Σ M_s u[r,s]
    s.t. Σ_n x[n,r,s] + u[r,s] = D[r,s]        (demand of the horizon)
         Σ_r x[n,r,s] ≤ A[n,s]                  (stock: ATP now plus the channel's share of
                                                 what is in transit) — dual −λ[n,s]
         x, u ≥ 0

``λ[n,s] ≥ 0`` is what one more unit of ``s`` at ``n`` would save the forecast orders: the
price an order should pay for taking it now (Acimovic & Graves 2015). ``c[n,r,s]`` is the
weighted cost of shipping one unit alone from ``n`` to the region's centre by the cheapest
service of the level (base rate and kg of the zone, handling, pick labour, unit cost), with the
package part shared by ``units_per_package`` units. ``M_s`` exceeds every ``c`` of the SKU, so
the LP leaves demand unmet only when stock runs out, as the engine does. Each region keeps its
``nearest`` cheapest stocking nodes per SKU: a farther node never serves it at the optimum of
any sensible network, and the cut keeps the LP linear in nodes × SKUs.

The LP is solved by GLOP (OR-Tools' simplex), which gives exact vertex duals; prices are
rounded to whole cents. The SKUs' blocks are independent, so they are solved in batches: one
model per batch, built from arrays. A SKU whose regions can each take all their demand from
their cheapest node without filling any node's stock needs no LP: that assignment is optimal,
every stock row is slack at it, and complementary slackness makes every dual of the SKU zero.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from models import (
    CarrierService,
    ServiceLevel,
    Snapshot,
    StockPrices,
    floor_share_array,
    scale_cents_array,
)
from solver._lp import sparse_model, stock_duals
from solver.errors import InvalidRequestError
from solver.geo import haversine_km, zones_of
from solver.index import SnapshotIndex
from solver.prepared import PreparedNetwork, as_prepared

__all__ = ["Forecast", "PricingRun", "cheapest_by_level", "price_stock", "ship_cost_matrix"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
# Arcs per GLOP model. A simplex's time grows faster than its model's size while filling a
# model costs a fraction of a millisecond, so a model of one or two SKUs is fastest: pricing
# 1,000 nodes × 5,000 SKUs took 74 s at 200,000 arcs a model, 25 s at 20,000 and 19 s at
# 1,000 (bench.pricing measures the current figure).
_BATCH_ARCS = 1_000
# Presolve pays off on large models; on a block of a few SKUs it costs more than it saves.
_GLOP_PARAMETERS = "use_preprocessing: false"


@dataclasses.dataclass(frozen=True, slots=True)
class Forecast:
    """Expected units per demand region (a point) and SKU over the pricing horizon."""

    lat: FloatArray  # per region
    lon: FloatArray  # per region
    skus: tuple[str, ...]
    units: FloatArray  # regions × SKUs, ≥ 0

    def __post_init__(self) -> None:
        """Shapes agree and every figure is finite and non-negative."""
        if self.lat.shape != self.lon.shape or self.units.shape != (
            self.lat.size,
            len(self.skus),
        ):
            raise ValueError("forecast shapes disagree: regions × SKUs units expected")
        if not np.isfinite(self.units).all() or (self.units < 0).any():
            raise ValueError("forecast units must be finite and non-negative")

    def scaled(self, share: float) -> Forecast:
        """The same forecast with every figure times ``share`` (e.g. the rest of a day)."""
        return dataclasses.replace(self, units=self.units * max(0.0, share))

    @property
    def total(self) -> float:
        """Units over every region and SKU."""
        return float(self.units.sum())


@dataclasses.dataclass(frozen=True, slots=True)
class PricingRun:
    """Prices and how they were found."""

    prices: StockPrices
    objective: float  # the LP's optimum, cents
    arcs: int
    seconds: float
    status: str
    skus: int = 0  # SKUs of the forecast with stock and demand
    screened: int = 0  # of which priced at zero without an LP (no stock row binds)


def cheapest_by_level(
    index: SnapshotIndex,
    level: ServiceLevel,
    lat: FloatArray,
    lon: FloatArray,
    per_zone: Callable[[CarrierService], FloatArray],
) -> FloatArray:
    """Nodes × regions: the least ``per_zone(service)[zone]`` over services of ``level``.

    ``inf`` where no service of the level serves the pair (out of its reach or not offered).
    """
    distance = np.stack(
        [haversine_km(index.node_lat, index.node_lon, a, b) for a, b in zip(lat, lon, strict=True)],
        axis=1,
    )
    zone = zones_of(distance) - 1
    best = np.full(distance.shape, np.inf)
    for service, serves in zip(index.snapshot.services, index.service_mask, strict=True):
        if service.service_level is not level:
            continue
        value = per_zone(service)[zone]
        ok = serves[:, None] & np.ones_like(distance, dtype=np.bool_)
        if service.max_distance_km is not None:
            ok &= distance <= service.max_distance_km
        best = np.where(ok, np.minimum(best, value), best)
    return best


def ship_cost_matrix(
    index: SnapshotIndex, level: ServiceLevel, lat: FloatArray, lon: FloatArray, kg: int
) -> FloatArray:
    """Nodes × regions: cheapest base + kg rate of a ``kg`` package by a service of ``level``.

    ``inf`` where no service of the level serves the pair.
    """
    return cheapest_by_level(
        index,
        level,
        lat,
        lon,
        lambda service: np.array([r.base + r.per_kg * kg for r in service.rates], np.float64),
    )


def price_stock(
    network: PreparedNetwork | Snapshot,
    forecast: Forecast,
    *,
    channel: str,
    level: ServiceLevel = ServiceLevel.GROUND,
    nearest: int = 8,
    units_per_package: float = 1.0,
    version: int = 0,
    computed_at: dt.datetime | None = None,
) -> PricingRun:
    """Price every (node, SKU) of the forecast's SKUs by the duals of the transportation LP.

    ``network`` is prepared (with live stock through ``with_inventory``), or a bare snapshot
    prepared for this one call.
    """
    started = time.perf_counter()
    index = as_prepared(network).index
    policy = index.snapshot.policy(channel)
    if policy is None:
        raise InvalidRequestError(f"unknown channel {channel!r}", ("channel",))
    if units_per_package < 1.0:
        raise ValueError("units_per_package must be at least 1")
    w = policy.weights
    atp = index.on_hand_atp(policy)
    stock = atp + floor_share_array(policy.in_transit_share, index.row_in_transit)
    node_extra = scale_cents_array(w.handling, index.node_handling).astype(
        np.float64
    ) / units_per_package + scale_cents_array(w.labour, index.node_pick_cost).astype(np.float64)
    by_kg: dict[int, FloatArray] = {}
    blocks: list[_Block] = []
    for k, sku in enumerate(forecast.skus):
        position = index.sku_pos.get(sku)
        demand = forecast.units[:, k]
        wanted = np.flatnonzero(demand > 0)
        if position is None or not wanted.size:
            continue
        rows = np.arange(*_span(index, position), dtype=np.int64)
        rows = rows[stock[rows] > 0]
        kg = max(1, -(-int(index.sku_weight_g[position]) // 1000))
        if kg not in by_kg:
            # Prices are LP figures in floating point: the weight need not be applied exactly.
            by_kg[kg] = w.shipping * ship_cost_matrix(index, level, forecast.lat, forecast.lon, kg)
        ship = by_kg[kg]
        blocks.append(
            _block(
                index,
                unit_weight=w.unit_cost,
                rows=rows,
                wanted=wanted,
                demand=demand,
                ship=ship,
                node_extra=node_extra,
                nearest=nearest,
            )
        )
    hard: list[_Block] = []
    easy = 0.0
    for block in blocks:
        slack = _slack_objective(block, stock)
        if slack is None:
            hard.append(block)
        else:
            easy += slack
    rows_out, cents, objective, arcs, status = _solve(hard, stock)
    node_ids = [node.node_id for node in index.nodes]
    sku_ids = [item.sku for item in index.snapshot.items]
    prices = StockPrices.of(
        (
            (node_ids[index.row_node[row]], sku_ids[index.row_sku[row]], c)
            for row, c in zip(rows_out.tolist(), cents.tolist(), strict=True)
        ),
        version=version,
        computed_at=computed_at,
        note=f"LP over {forecast.total:.0f} forecast units, {arcs} arcs",
    )
    return PricingRun(
        prices,
        objective + easy,
        arcs,
        time.perf_counter() - started,
        status,
        skus=len(blocks),
        screened=len(blocks) - len(hard),
    )


def _span(index: SnapshotIndex, sku: int) -> tuple[int, int]:
    """Inventory rows of a SKU position (rows are sorted by SKU)."""
    rows = index.rows_of(sku)
    return rows.start, rows.stop


@dataclasses.dataclass(frozen=True, slots=True)
class _Block:
    """One SKU's transportation LP: stock rows, demand regions and the arcs between them."""

    rows: IntArray  # inventory rows with stock
    demand: FloatArray  # per wanted region
    arc_row: IntArray  # position in ``rows`` per arc
    arc_region: IntArray  # position in ``demand`` per arc
    arc_cost: FloatArray
    unmet: float  # cost per unmet unit


def _block(
    index: SnapshotIndex,
    *,
    unit_weight: float,
    rows: IntArray,
    wanted: IntArray,
    demand: FloatArray,
    ship: FloatArray,
    node_extra: FloatArray,
    nearest: int,
) -> _Block:
    """The arcs of one SKU: per region its ``nearest`` cheapest stocking nodes."""
    nodes = index.row_node[rows]
    unit = scale_cents_array(unit_weight, index.row_unit_cost[rows]).astype(np.float64)
    cost = ship[np.ix_(nodes, wanted)] + (node_extra[nodes] + unit)[:, None]  # rows × regions
    keep = np.isfinite(cost)
    if rows.size > nearest:
        cutoff = np.partition(np.where(keep, cost, np.inf), nearest - 1, axis=0)[nearest - 1]
        keep &= cost <= cutoff[None, :]
    arc_row, arc_region = np.nonzero(keep)
    finite = cost[keep]
    unmet = float(finite.max(initial=0.0)) + 100.0
    return _Block(rows, demand[wanted], arc_row, arc_region, finite, unmet)


def _slack_objective(block: _Block, stock: IntArray) -> float | None:
    """The block's optimum when each region's cheapest arc leaves every stock row slack.

    None when some row would be filled (or overfilled): the block needs its LP. Strictly
    slack rows have a zero dual in every dual optimum, so the SKU's prices are all zero.
    """
    if not block.arc_row.size:
        return float(block.demand.sum()) * block.unmet
    # Per region, its arcs in cost order: the first is its cheapest.
    order = np.lexsort((block.arc_cost, block.arc_region))
    regions = block.arc_region[order]
    first = np.ones(regions.size, dtype=np.bool_)
    first[1:] = regions[1:] != regions[:-1]
    best_region = regions[first]
    best_row = block.arc_row[order][first]
    load = np.bincount(best_row, weights=block.demand[best_region], minlength=block.rows.size)
    if (load >= stock[block.rows]).any():
        return None
    served = float((block.demand[best_region] * block.arc_cost[order][first]).sum())
    unserved = float(block.demand.sum() - block.demand[best_region].sum())
    return served + unserved * block.unmet


def _solve(blocks: Sequence[_Block], stock: IntArray) -> tuple[IntArray, IntArray, float, int, str]:
    """Solve the blocks in batches; returns priced rows, their cents, objective, arcs, status."""
    out_rows: list[IntArray] = []
    out_cents: list[IntArray] = []
    objective = 0.0
    arcs = 0
    statuses: set[str] = set()
    batch: list[_Block] = []
    size = 0
    for block in [*blocks, None]:
        if block is not None:
            batch.append(block)
            size += block.arc_row.size
            if size < _BATCH_ARCS:
                continue
        if not batch:
            continue
        rows, cents, value, status = _solve_batch(batch, stock)
        out_rows.append(rows)
        out_cents.append(cents)
        objective += value
        arcs += size
        statuses.add(status)
        batch, size = [], 0
    status = "OPTIMAL" if statuses <= {"OPTIMAL"} else ",".join(sorted(statuses))
    if not out_rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0.0, 0, status
    return np.concatenate(out_rows), np.concatenate(out_cents), objective, arcs, status


def _solve_batch(batch: list[_Block], stock: IntArray) -> tuple[IntArray, IntArray, float, str]:
    """One GLOP model of several SKUs' blocks; prices are minus the stock rows' duals."""
    var_cost: list[FloatArray] = []
    coo_row: list[IntArray] = []
    coo_col: list[IntArray] = []
    con_lo: list[FloatArray] = []
    con_hi: list[FloatArray] = []
    stock_rows: list[IntArray] = []
    stock_con: list[IntArray] = []
    n_var = 0
    n_con = 0
    for block in batch:
        n_arc, n_reg, n_row = block.arc_row.size, block.demand.size, block.rows.size
        demand_con = n_con + np.arange(n_reg)
        row_con = n_con + n_reg + np.arange(n_row)
        arcs = n_var + np.arange(n_arc)
        unmet = n_var + n_arc + np.arange(n_reg)
        # demand rows: arcs into the region plus its unmet variable
        coo_row += [demand_con[block.arc_region], demand_con]
        coo_col += [arcs, unmet]
        # stock rows: arcs out of the node
        coo_row.append(row_con[block.arc_row])
        coo_col.append(arcs)
        var_cost += [block.arc_cost, np.full(n_reg, block.unmet)]
        con_lo += [block.demand, np.zeros(n_row)]
        con_hi += [block.demand, stock[block.rows].astype(np.float64)]
        stock_rows.append(block.rows)
        stock_con.append(row_con)
        n_var += n_arc + n_reg
        n_con += n_reg + n_row
    model = sparse_model(
        (np.zeros(n_var), np.full(n_var, np.inf), np.concatenate(var_cost)),
        np.concatenate(con_lo),
        np.concatenate(con_hi),
        (np.concatenate(coo_row), np.concatenate(coo_col), None),
    )
    all_rows = np.concatenate(stock_rows)
    cents, objective, status = stock_duals(
        model, np.concatenate(stock_con), parameters=_GLOP_PARAMETERS
    )
    if cents is None:
        return all_rows, np.zeros(all_rows.size, dtype=np.int64), 0.0, status
    return all_rows, cents, objective, status
