"""Quality of every engine on generated scenarios: cost, splits, promised days, unfilled.

Each scenario is a realistic cart on the 200-node demo network, quoted at the ground level
(the default shipping option). Every answer runs through the independent checker. Mean cost is
the fulfilment cost (shipping + handling + labour) over the scenarios every engine fills
completely; split rate is the share of orders shipped in more than one package. Usage::

    python -m bench.quality --scenarios 1000 --json out/quality.json
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

import numpy as np
from tqdm import tqdm

from bench._common import machine, warm_network, write_outputs
from models import Engine, PromiseOption, PromiseRequest, ServiceLevel, Snapshot, Status
from scenarios import demo_snapshot, generate_carts
from solver import PreparedNetwork, SolveParams, solve
from solver.checker import Reference, check

ENGINES = (Engine.MIP, Engine.PRIORITY, Engine.NEAREST, Engine.FEWEST_SPLITS)
COMPLETE = (Status.OPTIMAL, Status.FEASIBLE, Status.FALLBACK)


def scenarios(snapshot: Snapshot, count: int, seed: int) -> list[PromiseRequest]:
    """Realistic carts quoted at the ground level."""
    carts = generate_carts(snapshot, count=count, seed=seed)
    return [c.model_copy(update={"service_levels": (ServiceLevel.GROUND,)}) for c in carts]


def answer(
    request: PromiseRequest, network: PreparedNetwork, reference: Reference, engine: Engine
) -> tuple[PromiseOption, int | None, bool]:
    """One engine's ground option, its promised days from the order date, the checker verdict."""
    result = solve(request, network, params=SolveParams(engine=engine))
    option = result.options[0]
    promised = option.promised_delivery_date
    days = None if promised is None else (promised - result.order_date).days
    return option, days, check(result, request, reference).ok


def summarise(
    options: dict[Engine, list[PromiseOption]],
    promised: dict[Engine, list[int]],
    failures: dict[Engine, int],
) -> dict[str, Any]:
    """KPIs per engine; cost over the scenarios every engine fills completely."""
    count = len(options[Engine.MIP])
    complete = [all(options[e][k].status in COMPLETE for e in ENGINES) for k in range(count)]
    out: dict[str, Any] = {}
    for engine in ENGINES:
        rows = options[engine]
        filled = [o for o in rows if o.status in COMPLETE]
        both = [o for o, ok in zip(rows, complete, strict=True) if ok]
        days = promised[engine]
        out[engine.value] = {
            "scenarios": count,
            "complete": len(filled),
            "mean_cost": round(float(np.mean([o.cost.total for o in both])), 2) if both else None,
            "mean_objective": round(float(np.mean([o.objective for o in both])), 2)
            if both
            else None,
            "split_rate": round(sum(o.split_count > 0 for o in filled) / max(1, len(filled)), 4),
            "mean_shipments": round(float(np.mean([len(o.shipments) for o in filled])), 4)
            if filled
            else None,
            "mean_promised_days": round(float(np.mean(days)), 3) if days else None,
            "unfilled_rate": round(sum(o.status not in COMPLETE for o in rows) / count, 4),
            "checker_failures": failures[engine],
        }
    return out


def run(count: int, seed: int) -> dict[str, Any]:
    """Solve every scenario with every engine and compare."""
    snapshot = demo_snapshot()
    carts = scenarios(snapshot, count, seed)
    network = warm_network(snapshot, carts[:20])
    reference = Reference.of(snapshot)
    options: dict[Engine, list[PromiseOption]] = {engine: [] for engine in ENGINES}
    promised: dict[Engine, list[int]] = {engine: [] for engine in ENGINES}
    failures = dict.fromkeys(ENGINES, 0)
    worse = worse_cost = 0
    for request in tqdm(carts, desc="scenarios", unit="cart", file=sys.stderr):
        found = {}
        for engine in ENGINES:
            option, days, ok = answer(request, network, reference, engine)
            found[engine] = option
            options[engine].append(option)
            if days is not None and option.status in COMPLETE:
                promised[engine].append(days)
            failures[engine] += not ok
        mip = found[Engine.MIP]
        baselines = [found[e] for e in ENGINES if e is not Engine.MIP]
        worse += any(b.objective < mip.objective for b in baselines)
        worse_cost += mip.status in COMPLETE and any(
            b.status in COMPLETE and b.cost.total < mip.cost.total for b in baselines
        )
    engines = summarise(options, promised, failures)
    engines["mip"]["worse_than_a_baseline"] = worse
    engines["mip"]["cheaper_baseline_cost"] = worse_cost
    nearest = engines["nearest"]
    mip_kpis = engines["mip"]
    return {
        "machine": machine(),
        "network": {"nodes": len(snapshot.nodes), "skus": len(snapshot.items)},
        "level": "ground",
        "engines": engines,
        "vs_nearest": {
            "split_rate_reduction": round(1 - mip_kpis["split_rate"] / nearest["split_rate"], 4)
            if nearest["split_rate"]
            else None,
            "mean_cost_reduction": round(1 - mip_kpis["mean_cost"] / nearest["mean_cost"], 4)
            if nearest["mean_cost"]
            else None,
        },
    }


def markdown(report: dict[str, Any]) -> str:
    """A Markdown table of the report."""
    rows = [
        "| engine | scenarios | mean cost | split rate | promised days | unfilled | checker fail |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, kpi in report["engines"].items():
        rows.append(
            f"| {name} | {kpi['scenarios']} | {kpi['mean_cost']} | {kpi['split_rate']:.1%} | "
            f"{kpi['mean_promised_days']} | {kpi['unfilled_rate']:.1%} | "
            f"{kpi['checker_failures']} |"
        )
    vs = report["vs_nearest"]
    mip = report["engines"]["mip"]
    return (
        "# Sourcing quality (ground level)\n\n"
        + "\n".join(rows)
        + f"\n\nMIP against nearest: split rate {vs['split_rate_reduction']:.1%} lower, mean cost "
        f"{vs['mean_cost_reduction']:.1%} lower; scenarios where a baseline had a lower "
        f"objective: {mip['worse_than_a_baseline']}; a lower fulfilment cost (at a higher "
        f"objective): {mip['cheaper_baseline_cost']}.\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write JSON and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=1000, help="number of carts")
    parser.add_argument("--seed", type=int, default=4242, help="cart generator seed")
    parser.add_argument("--json", type=pathlib.Path, required=True, help="report path")
    args = parser.parse_args(argv)
    report = run(args.scenarios, args.seed)
    write_outputs(args.json, report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
