"""Opportunity cost of stock from an LP over forecast baskets (orders as sets of SKUs).

The transportation LP of solver/pricing.py sees units; a package's fixed cost, paid once per
order and node, is invisible to it, and on a network where every box costs the same that is
most of what depletion costs: later orders split because the SKUs they combine are no longer
together. This LP sees orders. For each forecast basket ``b`` (a region and a set ``S_b`` of
SKUs, ``D_b`` orders expected) and each non-empty part ``T ⊆ S_b`` shipped as one package from
a node ``n`` (a column, cost: one package of ``T``'s weight from ``n`` to the region, handling,
split penalty, and pick labour and unit cost per unit)::

    min  Σ cost[b,T,n] z[b,T,n] + Σ M u[b,s]
    s.t. Σ_{T ∋ s} Σ_n z[b,T,n] + u[b,s] = D_b         for every basket b and s ∈ S_b
         Σ_{b,T ∋ s} z[b,T,n] ≤ A[n,s]                  for every node n and SKU s (dual −λ)
         z, u ≥ 0

so a basket shipped whole pays one package and a split one pays one per part (Jasin & Sinha's
order-level LP, with parts instead of items). Each part also pays lateness for its ground
transit days (an order pays for its latest package, so a split basket is charged a little
more than the MIP would), and units below a node's protection level pay the protection
weight, as in the per-order objective::

         Σ_{b,T ∋ s} z[b,T,n] − q[n,s] ≤ A[n,s] − keep[n]   where keep[n] > 0 (dual −μ)
         cost of q[n,s]: protection per unit

and the price of (n, s) is λ + μ: one more unit on hand raises both right-hand sides. The
price values a unit by what it is worth to the orders that will want it *together with* what
else the node holds. Baskets of more than
``MAX_PARTS_OF`` SKUs are cut into singletons (their parts would be too many columns). Each
basket sees its ``nearest`` cheapest nodes for its whole set. GLOP solves it; prices are
rounded to whole cents.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import time

import numpy as np
import numpy.typing as npt

from models import (
    MAX_PRICE_CENTS,
    ServiceLevel,
    Snapshot,
    StockPrices,
    floor_share_array,
    scale_cents_array,
)
from solver._lp import sparse_model, stock_duals
from solver.errors import InvalidRequestError
from solver.index import SnapshotIndex
from solver.prepared import PreparedNetwork, as_prepared
from solver.pricing import PricingRun, cheapest_by_level, ship_cost_matrix

__all__ = ["MAX_PARTS_OF", "BasketForecast", "price_baskets"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
# A basket of up to this many SKUs gets a column per part (2^k − 1 parts); larger ones are
# priced as singletons.
MAX_PARTS_OF = 4
# Baskets × nodes cells whose costs are computed at once (a few arrays of this many floats).
CHUNK_CELLS = 4_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class BasketForecast:
    """Expected orders per (region, set of SKUs) over the pricing horizon."""

    lat: FloatArray  # per region
    lon: FloatArray
    skus: tuple[str, ...]
    region: IntArray  # per basket
    items: tuple[tuple[int, ...], ...]  # per basket: positions in ``skus``, distinct
    orders: FloatArray  # per basket, ≥ 0

    def condensed(self, most: int) -> BasketForecast:
        """The ``most`` most frequent multi-SKU baskets; every other one as its singletons.

        Singletons of one region and SKU merge into one basket, so the LP keeps a row per
        (region, SKU) for the long tail and a row per SKU of each frequent basket.
        """
        multi = [b for b, items in enumerate(self.items) if len(items) > 1]
        multi.sort(key=lambda b: (-self.orders[b], b))
        kept = set(multi[:most])
        single: dict[tuple[int, int], float] = {}
        region: list[int] = []
        items: list[tuple[int, ...]] = []
        orders: list[float] = []
        for b, basket in enumerate(self.items):
            if b in kept:
                region.append(int(self.region[b]))
                items.append(basket)
                orders.append(float(self.orders[b]))
                continue
            for k in basket:
                key = (int(self.region[b]), k)
                single[key] = single.get(key, 0.0) + float(self.orders[b])
        for (r, k), count in sorted(single.items()):
            region.append(r)
            items.append((k,))
            orders.append(count)
        return dataclasses.replace(
            self,
            region=np.array(region, dtype=np.int64),
            items=tuple(items),
            orders=np.array(orders, dtype=np.float64),
        )

    def scaled(self, share: float) -> BasketForecast:
        """The same forecast with every count times ``share`` (e.g. the rest of a day)."""
        return dataclasses.replace(self, orders=self.orders * max(0.0, share))


def price_baskets(
    network: PreparedNetwork | Snapshot,
    forecast: BasketForecast,
    *,
    channel: str,
    level: ServiceLevel = ServiceLevel.GROUND,
    nearest: int = 8,
    baskets: int = 400,
    version: int = 0,
    computed_at: dt.datetime | None = None,
) -> PricingRun:
    """Price every (node, SKU) the baskets use by the duals of the order-level LP.

    The ``baskets`` most frequent multi-SKU baskets keep their own rows; the long tail is
    priced as singletons (BasketForecast.condensed), which keeps the LP small. ``network`` is
    prepared (with live stock through ``with_inventory``), or a bare snapshot prepared for this
    one call.
    """
    started = time.perf_counter()
    forecast = forecast.condensed(baskets)
    index = as_prepared(network).index
    policy = index.snapshot.policy(channel)
    if policy is None:
        raise InvalidRequestError(f"unknown channel {channel!r}", ("channel",))
    w = policy.weights
    atp = index.on_hand_atp(policy)
    stock_rows = atp + floor_share_array(policy.in_transit_share, index.row_in_transit)
    sku_pos = np.array([index.sku_pos.get(sku, -1) for sku in forecast.skus], dtype=np.int64)
    n_nodes = len(index.nodes)
    # stock[n, k] and its inventory row, for the forecast's SKUs
    stock = np.zeros((n_nodes, len(forecast.skus)), dtype=np.int64)
    row_of = np.full((n_nodes, len(forecast.skus)), -1, dtype=np.int64)
    for k, position in enumerate(sku_pos.tolist()):
        if position < 0:
            continue
        rows = index.rows_of(position)
        ids = np.arange(rows.start, rows.stop, dtype=np.int64)
        stock[index.row_node[ids], k] = stock_rows[ids]
        row_of[index.row_node[ids], k] = ids
    grams = np.array(
        [index.sku_weight_g[p] if p >= 0 else 0 for p in sku_pos.tolist()], dtype=np.int64
    )
    per_unit = scale_cents_array(w.labour, index.node_pick_cost).astype(np.float64)
    unit_cost = np.where(
        row_of >= 0,
        scale_cents_array(w.unit_cost, index.row_unit_cost[np.maximum(row_of, 0)]),
        0,
    ).astype(np.float64)
    package_fixed = scale_cents_array(w.handling, index.node_handling).astype(np.float64)
    package_fixed += w.split_penalty
    max_kg = max(1, -(-int(grams.sum()) // 1000))
    # kg × nodes × regions: the weighted cost of one package of each billable weight, with
    # the lateness of its transit days.
    late = w.lateness_per_day * transit_days_matrix(index, level, forecast.lat, forecast.lon)
    ship = np.stack(
        [
            w.shipping * ship_cost_matrix(index, level, forecast.lat, forecast.lon, kg) + late
            for kg in range(max_kg + 1)
        ]
    )
    keep = index.node_protection if w.protection_per_unit > 0 else np.zeros(n_nodes, np.int64)
    lp = _Lp(stock, keep=keep, protection=float(w.protection_per_unit))
    for size in range(1, MAX_PARTS_OF + 1):
        chosen = [
            b
            for b, items in enumerate(forecast.items)
            if len(items) == size and forecast.orders[b] > 0
        ]
        # Larger baskets are priced as singletons of each of their SKUs.
        if size == 1:
            chosen_items = [forecast.items[b] for b in chosen]
            chosen_region = [int(forecast.region[b]) for b in chosen]
            chosen_orders = [float(forecast.orders[b]) for b in chosen]
            for b, items in enumerate(forecast.items):
                if len(items) > MAX_PARTS_OF and forecast.orders[b] > 0:
                    chosen_items += [(k,) for k in items]
                    chosen_region += [int(forecast.region[b])] * len(items)
                    chosen_orders += [float(forecast.orders[b])] * len(items)
        else:
            chosen_items = [forecast.items[b] for b in chosen]
            chosen_region = [int(forecast.region[b]) for b in chosen]
            chosen_orders = [float(forecast.orders[b]) for b in chosen]
        if not chosen_items:
            continue
        lp.baskets(
            np.array(chosen_items, dtype=np.int64),
            np.array(chosen_region, dtype=np.int64),
            np.array(chosen_orders, dtype=np.float64),
            ship=ship,
            grams=grams,
            node_cost=(package_fixed, per_unit, unit_cost),
            nearest=nearest,
        )
    cents, keys, objective, status = lp.solve()
    node_ids = [node.node_id for node in index.nodes]
    prices = StockPrices.of(
        (
            (node_ids[n], forecast.skus[k], int(c))
            for (n, k), c in zip(keys, cents.tolist(), strict=True)
        ),
        version=version,
        computed_at=computed_at,
        note=f"order-level LP over {forecast.orders.sum():.0f} forecast orders",
    )
    return PricingRun(prices, objective, lp.columns, time.perf_counter() - started, status)


def transit_days_matrix(
    index: SnapshotIndex, level: ServiceLevel, lat: FloatArray, lon: FloatArray
) -> FloatArray:
    """Nodes × regions: fewest transit days of a service of ``level`` (0 where none serves)."""
    best = cheapest_by_level(
        index, level, lat, lon, lambda service: np.array(service.transit_days, np.float64)
    )
    # Unserved pairs already cost ``inf`` to ship; their lateness is moot.
    return np.where(np.isfinite(best), best, 0.0)


def _parts(size: int) -> list[tuple[int, ...]]:
    """Every non-empty subset of positions ``0..size-1``."""
    return [part for k in range(1, size + 1) for part in itertools.combinations(range(size), k)]


class _Lp:
    """The LP as sparse columns: coverage rows per (basket, SKU), stock rows per (node, SKU)."""

    def __init__(self, stock: IntArray, *, keep: IntArray, protection: float) -> None:
        """An empty LP over ``stock`` (nodes × forecast SKUs), ``keep`` units protected per node."""
        self.stock = stock
        self.keep = keep
        self.protection = protection
        self.rows = 0
        self.lo: list[FloatArray] = []
        self.hi: list[FloatArray] = []
        self.cost: list[FloatArray] = []
        self.entry_row: list[IntArray] = []
        self.entry_col: list[IntArray] = []
        self.columns = 0
        self.stock_key: list[IntArray] = []  # dense (node · SKUs + SKU) of each entry's stock row
        self.stock_col: list[IntArray] = []

    def _new_columns(self, cost: FloatArray) -> IntArray:
        """Columns with these costs; returns their indices."""
        ids = self.columns + np.arange(cost.size, dtype=np.int64)
        self.cost.append(cost)
        self.columns += cost.size
        return ids

    def baskets(
        self,
        items: IntArray,
        region: IntArray,
        orders: FloatArray,
        *,
        ship: FloatArray,
        grams: IntArray,
        node_cost: tuple[FloatArray, FloatArray, FloatArray],
        nearest: int,
    ) -> None:
        """Baskets of one size (rows of ``items``): coverage rows and a column per part × node.

        Written a slice of baskets at a time: the costs are dense baskets × nodes arrays, and
        half a million baskets over 1,000 nodes held at once took 15 GiB.
        """
        step = max(1, CHUNK_CELLS // max(1, self.stock.shape[0]))
        for start in range(0, items.shape[0], step):
            part = slice(start, start + step)
            self._baskets(
                items[part],
                region[part],
                orders[part],
                ship=ship,
                grams=grams,
                node_cost=node_cost,
                nearest=nearest,
            )

    def _baskets(
        self,
        items: IntArray,
        region: IntArray,
        orders: FloatArray,
        *,
        ship: FloatArray,
        grams: IntArray,
        node_cost: tuple[FloatArray, FloatArray, FloatArray],
        nearest: int,
    ) -> None:
        """One slice of ``baskets``."""
        fixed, per_unit, unit_cost = node_cost
        n_baskets, size = items.shape
        n_nodes = self.stock.shape[0]
        cover = self.rows + np.arange(n_baskets * size, dtype=np.int64).reshape(n_baskets, size)
        self.rows += n_baskets * size
        self.lo.append(np.repeat(orders, size))
        self.hi.append(np.repeat(orders, size))
        held = self.stock[:, items] > 0  # nodes × baskets × size

        def part_cost(part: tuple[int, ...]) -> FloatArray:
            """Baskets × nodes: one package of the part from each node to the basket's region."""
            chosen = items[:, list(part)]
            kg = np.maximum(1, -(-grams[chosen].sum(axis=1) // 1000))
            cost: FloatArray = (
                ship[kg, :, region]
                + fixed[None, :]
                + per_unit[None, :] * len(part)
                + unit_cost[:, chosen].sum(axis=2).T
            )
            return cost

        whole = part_cost(tuple(range(size)))
        holds_any = held.any(axis=2).T & np.isfinite(whole)  # baskets × nodes
        ranked = np.where(holds_any, whole, np.inf)
        keep_n = min(nearest, n_nodes)
        cutoff = np.partition(ranked, keep_n - 1, axis=1)[:, keep_n - 1]
        candidate = holds_any & (ranked <= cutoff[:, None])
        worst = np.zeros(n_baskets)
        for part in _parts(size):
            cost = part_cost(part)
            ok = candidate & held[:, :, list(part)].all(axis=2).T & np.isfinite(cost)
            b, n = np.nonzero(ok)
            if not b.size:
                continue
            ids = self._new_columns(cost[b, n])
            worst = np.maximum(worst, np.where(ok, cost, 0.0).max(axis=1))
            for position in part:
                self.entry_row.append(cover[b, position])
                self.entry_col.append(ids)
                self.stock_key.append(n * self.stock.shape[1] + items[b, position])
                self.stock_col.append(ids)
        # Unmet units cost more than any way of shipping them, so the LP leaves demand unmet
        # only when stock runs out.
        unmet = self._new_columns(np.repeat(worst + 100.0, size))
        self.entry_row.append(cover.ravel())
        self.entry_col.append(unmet)

    def solve(self) -> tuple[IntArray, list[tuple[int, int]], float, str]:
        """Solve with GLOP: prices and (node, SKU) per stock row, the objective, the status."""
        if not self.columns:
            return np.zeros(0, dtype=np.int64), [], 0.0, "OPTIMAL"
        dense = np.concatenate(self.stock_key) if self.stock_key else np.zeros(0, np.int64)
        keys, stock_row = np.unique(dense, return_inverse=True)
        stock_row = stock_row + self.rows
        n_skus = self.stock.shape[1]
        bound = self.stock.ravel()[keys].astype(np.float64)
        # A protection row per protected stock row: the same entries, less q[n,s], within the
        # units above the protection level.
        keep = self.keep[keys // n_skus]
        guarded = np.flatnonzero(keep > 0)
        entry_stock = np.concatenate(self.stock_col)
        guard_of = np.full(keys.size, -1, dtype=np.int64)
        guard_of[guarded] = self.rows + keys.size + np.arange(guarded.size)
        guard_row = guard_of[stock_row - self.rows]
        mask = guard_row >= 0
        q = self.columns + np.arange(guarded.size, dtype=np.int64)
        n_rows = self.rows + keys.size + guarded.size
        rows = np.concatenate([*self.entry_row, stock_row, guard_row[mask], guard_of[guarded]])
        cols = np.concatenate([*self.entry_col, entry_stock, entry_stock[mask], q])
        values = np.concatenate([np.ones(rows.size - guarded.size), -np.ones(guarded.size)])
        n_cols = self.columns + guarded.size
        cost = np.concatenate([*self.cost, np.full(guarded.size, self.protection)])
        free = np.maximum(0.0, bound[guarded] - keep[guarded])
        model = sparse_model(
            (np.zeros(n_cols), np.full(n_cols, np.inf), cost),
            np.concatenate([*self.lo, np.zeros(keys.size), np.full(guarded.size, -np.inf)]),
            np.concatenate([*self.hi, bound, free]),
            (rows, cols, values),
        )
        pairs = [(int(key) // n_skus, int(key) % n_skus) for key in keys.tolist()]
        duals, objective, status = stock_duals(model, np.arange(self.rows, n_rows))
        if duals is None:
            return np.zeros(keys.size, dtype=np.int64), pairs, 0.0, status
        # One more unit on hand raises the stock row and its protection row alike.
        cents = duals[: keys.size].copy()
        cents[guarded] += duals[keys.size :]
        return np.minimum(cents, MAX_PRICE_CENTS), pairs, objective, status
