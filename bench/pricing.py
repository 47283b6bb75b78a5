"""A pricing run at scale: the transportation LP behind the opportunity cost of stock.

Run ``python -m bench.pricing --json PATH [--quick] [--nodes 1000 --skus 5000 --regions 100]``.

The network is ``scenarios.generate_network(nodes, skus, columnar=True)``; the forecast has a
region at each of the ``regions`` largest contiguous-US cities, weighted by population, and a
Zipf share of demand per SKU (catalog order as popularity rank), ``--demand-share`` of the
network's web ATP in all (a quarter by default: a horizon that binds the popular SKUs' nearest
stock, as a day's demand does a few days after replenishment). Each of ``--runs`` runs prices
every (node, SKU) with ``solver.pricing.price_stock``; the report gives the median wall time,
the figures of the LP, and the peak memory. It also times what a new table
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
from solver.pricing import Forecast, PricingRun, price_stock

CHANNEL = "web"
QUICK = {"nodes": 200, "skus": 1_000, "regions": 50, "runs": 1}
FULL = {"nodes": 1_000, "skus": 5_000, "regions": 100, "runs": 3}
# Zipf exponent of SKU demand over its popularity rank (as scenarios.carts draws carts).
DEMAND_EXPONENT = 1.0


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


def run(*, nodes: int, skus: int, regions: int, runs: int, demand_share: float) -> dict[str, Any]:
    """Build the network and forecast once, price ``runs`` times; the report."""
    started = time.perf_counter()
    snapshot = generate_network(nodes=nodes, skus=skus, columnar=True)
    forecast = synthetic_forecast(snapshot, regions=regions, demand_share=demand_share)
    built_s = time.perf_counter() - started
    built_rss = _peak_rss_mib()
    samples: list[dict[str, Any]] = []
    last: PricingRun | None = None
    for _ in range(runs):
        started = time.perf_counter()
        last = price_stock(snapshot, forecast, channel=CHANNEL)
        samples.append({"seconds": round(time.perf_counter() - started, 3), "status": last.status})
    assert last is not None
    return {
        "machine": machine(),
        "nodes": nodes,
        "skus": skus,
        "regions": regions,
        "stock_rows": snapshot.row_count,
        "forecast_units": round(forecast.total),
        "demand_share": demand_share,
        "build_s": round(built_s, 3),
        "runs": samples,
        "median_s": round(statistics.median(s["seconds"] for s in samples), 3),
        "arcs": last.arcs,
        "skus_priced": last.skus,
        "skus_screened": last.screened,
        "priced_pairs": len(last.prices),
        "objective_cents": round(last.objective),
        "peak_rss_mib_after_build": round(built_rss, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "table": _table_costs(last),
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table."""
    table = report["table"]
    return (
        "\n".join(
            [
                f"# Pricing run: {report['nodes']} nodes × {report['skus']} SKUs, "
                f"{report['regions']} regions\n",
                "| figure | value |",
                "|---|---:|",
                f"| stock rows | {report['stock_rows']:,} |",
                f"| forecast units | {report['forecast_units']:,} |",
                f"| runs | {len(report['runs'])} |",
                f"| median run, s | {report['median_s']} |",
                f"| arcs | {report['arcs']:,} |",
                f"| SKUs with demand and stock / screened without an LP | "
                f"{report['skus_priced']:,} / {report['skus_screened']:,} |",
                f"| (node, SKU) pairs priced above zero | {report['priced_pairs']:,} |",
                f"| peak RSS with the network built, MiB | {report['peak_rss_mib_after_build']} |",
                f"| peak RSS after pricing, MiB | {report['peak_rss_mib']} |",
                f"| writing the table as a version (SQLite), s | {table['write_s']} |",
                f"| loading it as a worker's copy, s | {table['load_s']} |",
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
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    for name in sizes:
        given = getattr(args, name)
        if given is not None:
            sizes[name] = given
    report = run(**sizes, demand_share=args.demand_share)
    write_outputs(args.json, report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
