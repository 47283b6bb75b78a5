"""A pricing run at scale: the LPs behind the opportunity cost of stock.

Run ``python -m bench.pricing --json PATH [--quick] [--nodes 1000 --skus 5000 --regions 100]
[--lp units baskets]``.

The network is ``scenarios.generate_network(nodes, skus, columnar=True)``; the forecast has a
region at each of the ``regions`` largest contiguous-US cities, weighted by population, and a
Zipf share of demand per SKU (catalog order as popularity rank), ``--demand-share`` of the
network's web ATP in all (a quarter by default: a horizon that binds the popular SKUs' nearest
stock, as a day's demand does a few days after replenishment). Each of ``--runs`` runs prices
every (node, SKU) with each LP asked for: ``solver.pricing.price_stock`` (units) and
``solver.basket_pricing.price_baskets`` (baskets: the same units as orders of one to three
distinct SKUs, half, a third and a sixth of them, drawn by the same shares; the service's
default 400 most frequent multi-SKU baskets kept whole). The report gives each LP's median
wall time, its figures, and the peak memory. It also times what a new table
costs the authority and a worker: writing its rows as a version (embedded SQLite) and loading
them back as a worker's copy. ``--quick`` prices 200 nodes × 1,000 SKUs in 50 regions, once.
"""

from __future__ import annotations

import argparse
import pathlib
import resource
import statistics
import tempfile
import time
from typing import Any

import numpy as np

from bench._common import machine, write_outputs
from models import Snapshot
from promise.stock.backend import utc_now
from promise.stock.live_prices import LivePrices
from promise.stock.sqlite import SqliteStockBackend
from scenarios import generate_network, us_cities
from solver import prepare
from solver.basket_pricing import BasketForecast, price_baskets
from solver.pricing import Forecast, PricingRun, price_stock

CHANNEL = "web"
QUICK = {"nodes": 200, "skus": 1_000, "regions": 50, "runs": 1}
FULL = {"nodes": 1_000, "skus": 5_000, "regions": 100, "runs": 3}
# Zipf exponent of SKU demand over its popularity rank (as scenarios.carts draws carts).
DEMAND_EXPONENT = 1.0
# Lines per basket: one, two or three distinct SKUs (as the day generators draw orders).
LINES_PMF = np.array([0.5, 0.3, 0.2])
# Multi-SKU baskets the basket LP keeps whole: the service's default.
KEPT_BASKETS = 400


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_forecast(snapshot: Snapshot, *, regions: int, demand_share: float) -> Forecast:
    """Regions at the largest cities by population, SKUs by Zipf share, a share of web ATP."""
    cities = us_cities()
    where = np.flatnonzero(cities.contiguous)[:regions]
    weight = cities.population[where].astype(np.float64)
    weight /= weight.sum()
    policy = snapshot.policy(CHANNEL)
    assert policy is not None
    total = float(prepare(snapshot).index.on_hand_atp(policy).sum()) * demand_share
    rank = np.arange(1, len(snapshot.items) + 1, dtype=np.float64)
    share = rank**-DEMAND_EXPONENT
    share /= share.sum()
    return Forecast(
        lat=cities.lat[where].copy(),
        lon=cities.lon[where].copy(),
        skus=tuple(item.sku for item in snapshot.items),
        units=total * np.outer(weight, share),
    )


def synthetic_baskets(forecast: Forecast, *, seed: int = 7) -> BasketForecast:
    """The forecast's units as orders of one to three distinct SKUs, drawn by its shares."""
    rng = np.random.default_rng(seed)
    mean_lines = float((LINES_PMF * np.arange(1, LINES_PMF.size + 1)).sum())
    count = max(1, round(forecast.total / mean_lines))
    weight = forecast.units.sum(axis=1) / forecast.total
    share = forecast.units.sum(axis=0) / forecast.total
    region = rng.choice(weight.size, size=count, p=weight)
    size = rng.choice(LINES_PMF.size, size=count, p=LINES_PMF) + 1
    drawn = rng.choice(share.size, size=(count, LINES_PMF.size), p=share)
    # Lines beyond an order's size, and repeats of a SKU within it, are dropped.
    drawn = np.where(np.arange(LINES_PMF.size)[None, :] < size[:, None], drawn, -1)
    drawn = np.sort(drawn, axis=1)
    repeat = np.zeros_like(drawn, dtype=np.bool_)
    repeat[:, 1:] = drawn[:, 1:] == drawn[:, :-1]
    drawn = np.sort(np.where(repeat, -1, drawn), axis=1)
    keys, orders = np.unique(np.column_stack([region, drawn]), axis=0, return_counts=True)
    return BasketForecast(
        lat=forecast.lat,
        lon=forecast.lon,
        skus=forecast.skus,
        region=keys[:, 0].astype(np.int64),
        items=tuple(tuple(int(k) for k in row if k >= 0) for row in keys[:, 1:].tolist()),
        orders=orders.astype(np.float64),
    )


def _table_costs(run: PricingRun) -> dict[str, float]:
    """Seconds to write the run's prices as a version, and to load them as a worker's copy."""
    with tempfile.TemporaryDirectory() as folder:
        backend = SqliteStockBackend(pathlib.Path(folder) / "stock.sqlite3")
        try:
            started = time.perf_counter()
            table = backend.write_prices(run.prices.rows(), utc_now, origin="cli")
            written = time.perf_counter()
            copy = LivePrices(backend).current(table.version)
            loaded = time.perf_counter()
        finally:
            backend.close()
    assert len(copy) == len(run.prices)
    return {"write_s": round(written - started, 3), "load_s": round(loaded - written, 3)}


def run(
    *,
    nodes: int,
    skus: int,
    regions: int,
    runs: int,
    demand_share: float,
    lps: tuple[str, ...] = ("units", "baskets"),
) -> dict[str, Any]:
    """Build the network and forecast once, price ``runs`` times with each LP; the report."""
    started = time.perf_counter()
    snapshot = generate_network(nodes=nodes, skus=skus, columnar=True)
    forecast = synthetic_forecast(snapshot, regions=regions, demand_share=demand_share)
    baskets = synthetic_baskets(forecast)
    built_s = time.perf_counter() - started
    built_rss = _peak_rss_mib()
    report: dict[str, Any] = {
        "machine": machine(),
        "nodes": nodes,
        "skus": skus,
        "regions": regions,
        "stock_rows": snapshot.row_count,
        "forecast_units": round(forecast.total),
        "forecast_orders": round(float(baskets.orders.sum())),
        "forecast_baskets": len(baskets.items),
        "demand_share": demand_share,
        "build_s": round(built_s, 3),
        "peak_rss_mib_after_build": round(built_rss, 1),
        "lps": {},
    }
    for lp in lps:
        samples: list[dict[str, Any]] = []
        last: PricingRun | None = None
        for _ in range(runs):
            started = time.perf_counter()
            if lp == "units":
                last = price_stock(snapshot, forecast, channel=CHANNEL)
            else:
                last = price_baskets(snapshot, baskets, channel=CHANNEL, baskets=KEPT_BASKETS)
            seconds = round(time.perf_counter() - started, 3)
            samples.append({"seconds": seconds, "status": last.status})
        assert last is not None
        report["lps"][lp] = {
            "runs": samples,
            "median_s": round(statistics.median(s["seconds"] for s in samples), 3),
            "columns": last.arcs,
            "skus_priced": last.skus,
            "skus_screened": last.screened,
            "priced_pairs": len(last.prices),
            "objective_cents": round(last.objective),
            "peak_rss_mib": round(_peak_rss_mib(), 1),
            "table": _table_costs(last),
        }
    return report


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table, a column per LP."""
    lps = report["lps"]
    names = list(lps)

    def row(label: str, cell: Any) -> str:
        return f"| {label} | " + " | ".join(str(cell(lps[name])) for name in names) + " |"

    return (
        "\n".join(
            [
                f"# Pricing run: {report['nodes']} nodes × {report['skus']} SKUs, "
                f"{report['regions']} regions\n",
                f"stock rows {report['stock_rows']:,}; forecast {report['forecast_units']:,} "
                f"units, as {report['forecast_orders']:,} orders in "
                f"{report['forecast_baskets']:,} baskets; peak RSS with the network built "
                f"{report['peak_rss_mib_after_build']} MiB\n",
                "| figure | " + " | ".join(names) + " |",
                "|---|" + "---:|" * len(names),
                row("runs", lambda lp: len(lp["runs"])),
                row("median run, s", lambda lp: lp["median_s"]),
                row("arcs / columns", lambda lp: f"{lp['columns']:,}"),
                row("(node, SKU) pairs priced above zero", lambda lp: f"{lp['priced_pairs']:,}"),
                row("peak RSS after pricing, MiB", lambda lp: lp["peak_rss_mib"]),
                row(
                    "writing the table as a version (SQLite), s", lambda lp: lp["table"]["write_s"]
                ),
                row("loading it as a worker's copy, s", lambda lp: lp["table"]["load_s"]),
            ]
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write JSON and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=pathlib.Path, required=True)
    parser.add_argument("--quick", action="store_true", help="200 × 1,000, 50 regions, one run")
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--skus", type=int)
    parser.add_argument("--regions", type=int)
    parser.add_argument("--runs", type=int)
    parser.add_argument("--demand-share", type=float, default=0.25)
    parser.add_argument(
        "--lp", nargs="+", choices=["units", "baskets"], default=["units", "baskets"]
    )
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    for name in sizes:
        given = getattr(args, name)
        if given is not None:
            sizes[name] = given
    report = run(**sizes, demand_share=args.demand_share, lps=tuple(args.lp))
    write_outputs(args.json, report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
