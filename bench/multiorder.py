"""A whole day of orders on depleting stock: myopic MIP, greedy baselines, priced MIP, clairvoyant.

Each day (scenarios/day_networks.py: a Jasin–Sinha-style network and the scarce demo
network, several seeds) is replayed in arrival order under every policy (scenarios/day.py):

- ``myopic``: the per-order MIP, blind to later orders;
- ``nearest``, ``fewest_splits``, ``priority``: the greedy baselines;
- ``units-fixed``: the MIP with prices from the per-unit transportation LP (solver/pricing.py),
  computed once at the start of the day;
- ``baskets-fixed`` and ``baskets-every-K``: the MIP with prices from the order-level LP
  (solver/basket_pricing.py), once, or again every K orders on what is left of the forecast.

The clairvoyant plan is the whole day as one MIP on SCIP (solver/joint.py) started from the
policies' plans, with the valid inequalities of solver/_joint_cuts.py that tighten its LP
relaxation (promised day per line, billable kg per slot); ``bound`` is ``mip`` when SCIP
proves it optimal within the limit, else the larger of SCIP's dual bound and the LP
relaxation's optimum on HiGHS is used and ``bound`` says ``lp`` (a lower bound: the share of
the gap closed is then understated, never overstated). The pricing policies were not tuned
for these figures: the inequalities change the bound only, not what any policy does.
``gap_closed`` is the share of the myopic → clairvoyant cost gap the best priced policy
closes at no more unfilled units than myopic. Every answer runs through the independent
checker (``violations``). Usage::

    python -m bench.multiorder --json out/multiorder.json            # 1,000 orders, 3 seeds
    python -m bench.multiorder --quick --json out/multiorder_quick.json  # 300 orders, 1 seed

``--quick`` runs the MIP policies only (myopic and priced, no greedy baselines).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench._common import machine, write_outputs
from models import Engine
from scenarios.day import Day, DayPolicy, DayResult, clairvoyant, run_day
from scenarios.day_networks import jasin_sinha_day, scarce_demo_day
from solver import warm_up

NETWORKS: dict[str, Callable[[int, int], Day]] = {
    "jasin_sinha": jasin_sinha_day,
    "demo_scarce": scarce_demo_day,
}


# Cheapest stocking nodes each forecast basket sees in the pricing LPs. On the demo network
# (200 nodes, most stores holding a unit or two) the 8 nearest cannot carry a city's demand:
# the LP leaves it unmet and prices every near unit at the unmet penalty; 32 can.
NEAREST = 32


def policies(every: int, baskets: int) -> list[DayPolicy]:
    """Every policy of the comparison."""
    return [
        DayPolicy("myopic"),
        DayPolicy("nearest", engine=Engine.NEAREST),
        DayPolicy("fewest_splits", engine=Engine.FEWEST_SPLITS),
        DayPolicy("priority", engine=Engine.PRIORITY),
        DayPolicy("units-fixed", pricing="fixed", lp="units", nearest=NEAREST),
        DayPolicy("baskets-fixed", pricing="fixed", baskets=baskets, nearest=NEAREST),
        DayPolicy(
            f"baskets-every-{every}",
            pricing="repriced",
            every=every,
            baskets=baskets,
            nearest=NEAREST,
        ),
    ]


PRICED = ("units-fixed", "baskets-fixed")


def one_day(day: Day, chosen: list[DayPolicy], limit_s: float) -> dict[str, Any]:
    """Every policy and the clairvoyant plan of one day."""
    results: dict[str, DayResult] = {}
    for policy in chosen:
        results[policy.name] = run_day(day, policy)
        row = results[policy.name].as_dict()
        print(
            f"  {day.name:20s} {policy.name:18s} cost {row['cost']:>10} split "
            f"{row['split_rate']:.3f} unfilled {row['unfilled']:>3} "
            f"violations {row['violations']}",
            file=sys.stderr,
            flush=True,
        )
    plan = clairvoyant(day, time_limit_s=limit_s, hints=[r.answers for r in results.values()])
    bound_kind = "mip"
    bound: float | None = plan.cost
    if not plan.optimal or plan.cost is None:
        # The larger of SCIP's dual bound and the (strengthened) LP relaxation's optimum
        # (solver/joint.py): a lower bound on the plan, not a plan.
        bound_kind, bound = "lp", plan.bound
    myopic = results["myopic"]
    gap = myopic.cost - (bound if bound is not None else myopic.cost)
    priced = [
        r
        for name, r in results.items()
        if (name in PRICED or name.startswith("baskets-every")) and r.unfilled <= myopic.unfilled
    ]
    best = min(priced, key=lambda r: r.cost) if priced else myopic
    closed = (myopic.cost - best.cost) / gap if gap > 0 else 0.0
    # Against the best clairvoyant plan found (an upper bound on its optimum): the most the
    # share closed can be; equal to ``closed`` when the plan is proven.
    plan_gap = myopic.cost - plan.cost if plan.cost is not None else 0
    closed_vs_plan = (myopic.cost - best.cost) / plan_gap if plan_gap > 0 else 0.0
    print(
        f"  {day.name:20s} clairvoyant {plan.cost} ({plan.status}, {plan.seconds:.0f} s), "
        f"bound {bound_kind} {bound}, gap closed {closed:.3f} by {best.policy}",
        file=sys.stderr,
        flush=True,
    )
    return {
        "day": day.name,
        "orders": len(day.orders),
        "units": day.units,
        "policies": {name: r.as_dict() for name, r in results.items()},
        "clairvoyant": {
            "cost": plan.cost,
            "unfilled": plan.unfilled,
            "status": plan.status,
            "optimal": plan.optimal,
            "seconds": round(plan.seconds, 1),
            "variables": plan.variables,
        },
        "bound": bound_kind,
        "bound_cost": bound,
        "gap_pct": 100.0 * gap / bound if bound else 0.0,
        "gap_closed": closed,
        "gap_closed_vs_plan": closed_vs_plan,
        "best_priced": best.policy,
        "unfilled_myopic": myopic.unfilled,
        "unfilled_priced": best.unfilled,
    }


def summary(days: list[dict[str, Any]]) -> dict[str, Any]:
    """One network's days: gap closed per day and overall (total costs)."""
    names = list(days[0]["policies"])
    totals = {name: sum(d["policies"][name]["cost"] for d in days) for name in names}
    bound = sum(d["bound_cost"] for d in days)
    myopic = totals["myopic"]
    priced = {
        name: cost
        for name, cost in totals.items()
        if name in PRICED or name.startswith("baskets-every")
    }
    best = min(priced, key=lambda name: priced[name])
    gap = myopic - bound
    plans = [d["clairvoyant"]["cost"] for d in days]
    plan_gap = myopic - sum(plans) if all(p is not None for p in plans) else 0
    return {
        "gap_closed": (myopic - priced[best]) / gap if gap > 0 else 0.0,
        "gap_closed_vs_plan": (myopic - priced[best]) / plan_gap if plan_gap > 0 else 0.0,
        "gap_closed_per_day": [d["gap_closed"] for d in days],
        "best_priced": best,
        "bound": "mip" if all(d["bound"] == "mip" for d in days) else "lp",
        "bounds": [d["bound"] for d in days],
        "unfilled_myopic": sum(d["unfilled_myopic"] for d in days),
        "unfilled_priced": sum(d["policies"][best]["unfilled"] for d in days),
        "total_cost": totals,
        "clairvoyant_cost": bound,
        "myopic_over_clairvoyant_pct": 100.0 * gap / bound if bound else 0.0,
        "cost_per_order": {
            name: cost / sum(d["orders"] for d in days) for name, cost in totals.items()
        },
        "split_rate": {
            name: float(np.mean([d["policies"][name]["split_rate"] for d in days]))
            for name in names
        },
        "solve_p50_ms": {
            name: float(np.median([d["policies"][name]["solve_p50_ms"] for d in days]))
            for name in names
        },
        "violations": sum(d["policies"][n]["violations"] for d in days for n in names),
        "days": days,
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as tables."""
    lines = [f"# Multi-order day ({report['orders']} orders per day)", ""]
    for name, net in report["networks"].items():
        lines += [
            f"## {name}: gap closed {net['gap_closed']:.1%} by {net['best_priced']} "
            f"(bound {net['bound']}; {net['gap_closed_vs_plan']:.1%} of the gap to the best "
            f"clairvoyant plan found; myopic +{net['myopic_over_clairvoyant_pct']:.2f} % over "
            "the bound)",
            "",
            "| policy | cost per order | split rate | solve p50 ms |",
            "|---|---:|---:|---:|",
        ]
        for policy, cost in net["cost_per_order"].items():
            lines.append(
                f"| {policy} | {cost / 100:.2f} | {net['split_rate'][policy]:.3f} | "
                f"{net['solve_p50_ms'][policy]:.2f} |"
            )
        lines += [
            "",
            f"unfilled: myopic {net['unfilled_myopic']}, priced "
            f"{net['unfilled_priced']}; checker violations {net['violations']}",
            "",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write JSON and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=pathlib.Path, default=pathlib.Path("out/multiorder.json"))
    parser.add_argument(
        "--quick", action="store_true", help="one 300-order day per network, MIP policies only"
    )
    parser.add_argument("--orders", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--every", type=int, default=50, help="orders between re-pricings")
    parser.add_argument("--limit", type=float, default=None, help="clairvoyant time limit, s")
    parser.add_argument(
        "--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS), help="days of"
    )
    args = parser.parse_args(argv)
    orders = args.orders or (300 if args.quick else 1000)
    seeds = args.seeds or ([1] if args.quick else [1, 2, 3])
    limit = args.limit or (40.0 if args.quick else 300.0)
    # The quick run keeps the 600 most frequent baskets whole (the rest as singletons): a
    # smaller LP, a little less of the gap closed.
    baskets = 600 if args.quick else 100_000
    warm_up()
    started = time.perf_counter()
    chosen = policies(args.every, baskets)
    if args.quick:
        # Under three minutes on two cores: the myopic baseline and the priced policies.
        chosen = [p for p in chosen if p.engine is Engine.MIP]
    networks = {}
    for name in args.networks:
        build = NETWORKS[name]
        days = [one_day(build(seed, orders), chosen, limit) for seed in seeds]
        networks[name] = summary(days)
    report = {
        "machine": machine(),
        "orders": orders,
        "seeds": seeds,
        "every": args.every,
        "seconds": round(time.perf_counter() - started, 1),
        "networks": networks,
    }
    write_outputs(args.json, report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
