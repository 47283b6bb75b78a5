"""Solve latency: build + solve + extract of ``solver.solve`` by cart size and network size.

``cases`` time one model per call: the cart quoted at the ground level (one solve per service
level is how the engine works). The same carts quoted at every level the network offers (the
request checkout sends by default, up to four models) are timed too, as ``all_levels_*``. The
nearest-node greedy baseline runs on the same carts in the same run, as the floor of what any
sourcing costs. Usage::

    python -m bench.solve_latency --json out/solve_latency.json [--quick]
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys
from typing import Any

from bench._common import machine, percentiles, timed, warm_network, write_outputs
from models import Engine, PromiseRequest, ServiceLevel, Status
from scenarios import generate_carts, generate_network
from scenarios.sequential import forecast_of
from solver import PreparedNetwork, SolveParams, solve
from solver.checker import Reference, check
from solver.pricing import price_stock

LINES = (1, 3, 10, 20)
NODES = (50, 200, 1000)
NEAREST = SolveParams(engine=Engine.NEAREST)


def measure(network: PreparedNetwork, carts: list[PromiseRequest]) -> dict[str, Any]:
    """Time one level and all levels of the MIP and the nearest greedy on the same carts."""
    ground = [c.model_copy(update={"service_levels": (ServiceLevel.GROUND,)}) for c in carts]
    reference = Reference.of(network.snapshot)
    one = _measure(network, reference, ground)
    every = _measure(network, reference, carts)
    return {
        **one,
        **{f"all_levels_{key}": value for key, value in every.items() if key != "runs"},
    }


def _measure(
    network: PreparedNetwork, reference: Reference, carts: list[PromiseRequest]
) -> dict[str, Any]:
    """Time the MIP and the nearest greedy on ``carts``; count proven options and checks."""
    mip_ms: list[float] = []
    greedy_ms: list[float] = []
    proven = solved = fallbacks = failures = 0
    for request in carts:
        result, elapsed = timed(functools.partial(solve, request, network))
        mip_ms.append(elapsed)
        _, elapsed = timed(functools.partial(solve, request, network, params=NEAREST))
        greedy_ms.append(elapsed)
        failures += not check(result, request, reference).ok
        for option in result.options:
            if option.status in (Status.OPTIMAL, Status.FEASIBLE, Status.FALLBACK):
                solved += 1
                proven += option.status is Status.OPTIMAL
                fallbacks += option.status is Status.FALLBACK
    stats = percentiles(mip_ms)
    greedy = percentiles(greedy_ms)
    return {
        "runs": len(carts),
        **stats,
        "optimal_rate": round(proven / solved, 4) if solved else 1.0,
        "options_solved": solved,
        "fallbacks": fallbacks,
        "checker_failures": failures,
        "greedy_p50_ms": greedy["p50_ms"],
        "greedy_p99_ms": greedy["p99_ms"],
    }


# Forecast sizes of the two price tables (with_prices): a day of the mix, and forty.
DAY_ORDERS = 2_000
STRESS_ORDERS = 80_000


def run(*, quick: bool, runs: int) -> dict[str, Any]:
    """Measure every (nodes, lines) case and the realistic mix over 200 nodes."""
    cases: list[dict[str, Any]] = []
    mix: dict[str, Any] = {}
    priced: dict[str, Any] = {}
    day: dict[str, Any] = {}
    for nodes in NODES[:2] if quick else NODES:
        snapshot = generate_network(nodes=nodes, skus=2000, seed=7)
        network = warm_network(snapshot, generate_carts(snapshot, count=30, seed=99))
        for lines in LINES:
            carts = generate_carts(snapshot, count=runs, seed=1000 + lines, lines=lines)
            row = {"lines": lines, "nodes": nodes, **measure(network, carts)}
            cases.append(row)
            print(
                f"{nodes:>5} nodes {lines:>3} lines: p50 {row['p50_ms']:7.2f} ms  "
                f"p99 {row['p99_ms']:7.2f} ms  optimal {row['optimal_rate']:.1%}  "
                f"greedy p50 {row['greedy_p50_ms']:.2f} ms  all levels p50 "
                f"{row['all_levels_p50_ms']:.2f} p99 {row['all_levels_p99_ms']:.2f}",
                file=sys.stderr,
            )
        if nodes == 200:
            carts = generate_carts(snapshot, count=runs * 2, seed=2024)
            mix = {"nodes": nodes, **measure(network, carts)}
            # The p99 of a ratio needs a few hundred carts even in --quick: with 80, one cart
            # that hits the budget on one side moves it by a third.
            priced_carts = generate_carts(snapshot, count=max(runs * 2, 400), seed=2024)
            priced = with_prices(network, priced_carts, orders=STRESS_ORDERS)
            day = with_prices(network, priced_carts, orders=DAY_ORDERS)
    return {
        "machine": machine(),
        "quick": quick,
        "cases": cases,
        "mix": mix,
        "prices": priced,
        "prices_day": day,
    }


def with_prices(
    network: PreparedNetwork, carts: list[PromiseRequest], *, orders: int
) -> dict[str, Any]:
    """The realistic mix with and without an opportunity-cost table, interleaved cart by cart.

    The table is the units LP's (the one the service's pricing job writes) over a forecast of
    ``orders`` orders shaped like 2,000 other carts. ``DAY_ORDERS`` is a day's demand, which
    prices the stock a day would exhaust; ``STRESS_ORDERS``, 40 days' at once, prices scarce
    stock almost everywhere: a table far larger than any day's, which is the case that could
    slow a solve most. The carts are alternated, and so is which side goes first.
    """
    snapshot = network.snapshot
    history = generate_carts(snapshot, count=2000, seed=77)
    units, _ = forecast_of(history, skus=[i.sku for i in snapshot.items], orders=orders)
    table = price_stock(network, units, channel="web").prices
    reference = Reference.of(snapshot)
    plain_ms: list[float] = []
    priced_ms: list[float] = []
    failures = 0
    for k, request in enumerate(carts):
        # Alternate which side goes first, so neither always finds the caches warm.
        for side in (0, 1) if k % 2 == 0 else (1, 0):
            if side == 0:
                _, elapsed = timed(functools.partial(solve, request, network))
                plain_ms.append(elapsed)
                continue
            result, elapsed = timed(functools.partial(solve, request, network, prices=table))
            priced_ms.append(elapsed)
            failures += not check(result, request, reference, prices=table).ok
    plain, priced = percentiles(plain_ms), percentiles(priced_ms)
    print(
        f"prices ({len(table)} priced pairs): p50 {priced['p50_ms']:.2f} vs "
        f"{plain['p50_ms']:.2f} ms, p99 {priced['p99_ms']:.2f} vs {plain['p99_ms']:.2f} ms",
        file=sys.stderr,
    )
    return {
        "forecast_orders": orders,
        "priced_pairs": len(table),
        "runs": len(carts),
        "without": plain,
        "with": priced,
        "p50_ratio": round(priced["p50_ms"] / plain["p50_ms"], 3),
        "p99_ratio": round(priced["p99_ms"] / plain["p99_ms"], 3),
        "checker_failures": failures,
    }


def markdown(report: dict[str, Any]) -> str:
    """A Markdown table of the report."""
    rows = [
        "| nodes | lines | runs | p50 ms | p99 ms | optimal | greedy p50 | "
        "all levels p50 | all levels p99 | all levels optimal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in [*report["cases"], {**report["mix"], "lines": "mix"}]:
        rows.append(
            f"| {case['nodes']} | {case['lines']} | {case['runs']} | {case['p50_ms']} | "
            f"{case['p99_ms']} | {case['optimal_rate']:.1%} | {case['greedy_p50_ms']} | "
            f"{case['all_levels_p50_ms']} | {case['all_levels_p99_ms']} | "
            f"{case['all_levels_optimal_rate']:.1%} |"
        )
    lines = [
        f"With an opportunity-cost table of {prices['priced_pairs']} priced pairs (the units "
        f"LP over {prices['forecast_orders']:,} orders' forecast; realistic mix, every level): "
        f"p50 {prices['with']['p50_ms']} vs {prices['without']['p50_ms']} ms "
        f"({prices['p50_ratio']}×), p99 {prices['with']['p99_ms']} vs "
        f"{prices['without']['p99_ms']} ms ({prices['p99_ratio']}×)"
        for prices in (report["prices_day"], report["prices"])
        if prices
    ]
    return (
        "# Solve latency (ms; one level = ground, all levels = every level offered)\n\n"
        + "\n".join(rows)
        + "\n\n"
        + "\n\n".join(lines)
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write JSON and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=pathlib.Path, required=True, help="report path")
    parser.add_argument("--quick", action="store_true", help="fewer runs, under a minute")
    parser.add_argument("--runs", type=int, default=None, help="carts per case")
    args = parser.parse_args(argv)
    runs = args.runs or (40 if args.quick else 300)
    report = run(quick=args.quick, runs=runs)
    write_outputs(args.json, report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
