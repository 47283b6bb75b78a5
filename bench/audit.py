"""Audit of every optimality claim against the exact reference, on independent networks.

Each instance (bench/audit_instances.py: its own geography, rate cards, calendars and
stress) is solved in the default mode, as checkout gets it, and in the exact mode (every
stocking node, every dispatch date of the horizon, no dominance pruning, a long budget).
Options are grouped by the default answer's tier (status) and counted: equal to the exact
objective, claimed proven yet worse than the exact answer (must be 0), not proven, and
checker failures of either answer (must be 0). The exit status is 1 when a must-be-0 count
is not 0, so CI can run ``--quick``.

Usage::

    python -m bench.audit --instances 1000 --json out/audit.json
    python -m bench.audit --quick --json out/audit_quick.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import sys
import time
from typing import Any

from tqdm import tqdm

from bench._common import machine, write_outputs
from bench.audit_instances import instance
from solver import SolveParams, prepare, solve, warm_up
from solver.checker import Reference, check

DEFAULT = SolveParams()
EXACT = SolveParams(time_budget_ms=60_000, exact=True)
QUICK_INSTANCES = 400


def audit_one(seed: int) -> list[dict[str, Any]]:
    """Solve one instance in both modes; one row per option."""
    request, snapshot = instance(seed)
    network = prepare(snapshot)
    quick = solve(request, network, params=DEFAULT)
    exact = solve(request, network, params=EXACT)
    reference = Reference.of(snapshot)
    quick_ok = check(quick, request, reference).ok
    exact_ok = check(exact, request, reference).ok
    rows = []
    # Without allow_partial any complete answer beats an unfulfillable one, whatever the
    # objectives say (docs/model.md, "Outcomes"): compare (refused, objective).
    refused = {} if request.allow_partial else {"unfulfillable": 1}
    for mine, ref in zip(quick.options, exact.options, strict=True):
        rows.append(
            {
                "seed": seed,
                "level": mine.service_level.value,
                "tier": mine.status.value,
                "proven": mine.proven,
                "objective": mine.objective,
                "exact_objective": ref.objective,
                "rank": (refused.get(mine.status.value, 0), mine.objective),
                "exact_rank": (refused.get(ref.status.value, 0), ref.objective),
                "exact_proven": ref.proven,
                "checker_ok": quick_ok and exact_ok,
            }
        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Counts per tier of the default answer, and over all options."""
    tiers: dict[str, dict[str, int]] = {}
    for row in rows:
        for name in (row["tier"], "all"):
            t = tiers.setdefault(
                name,
                {
                    "options": 0,
                    "equal": 0,
                    "claimed_optimal_but_worse": 0,
                    "not_proven": 0,
                    "checker_failures": 0,
                    "reference_unproven": 0,
                    "reference_beaten": 0,
                },
            )
            t["options"] += 1
            t["equal"] += row["rank"] == row["exact_rank"]
            worse = row["rank"] > row["exact_rank"]
            # A proof is wrong when the reference found cheaper, proven or not.
            t["claimed_optimal_but_worse"] += row["proven"] and worse
            t["not_proven"] += not row["proven"]
            t["checker_failures"] += not row["checker_ok"]
            t["reference_unproven"] += not row["exact_proven"]
            # The reference searched a superset: a proven reference beaten is a bug in it.
            t["reference_beaten"] += row["exact_proven"] and row["rank"] < row["exact_rank"]
    return dict(sorted(tiers.items(), key=lambda kv: (kv[0] == "all", kv[0])))


def _markdown(report: dict[str, Any]) -> str:
    """The per-tier table."""
    head = (
        "| tier | options | equal | claimed optimal but worse | not proven | checker failures "
        "| reference unproven | reference beaten |\n|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {tier} | {t['options']} | {t['equal']} | {t['claimed_optimal_but_worse']} | "
        f"{t['not_proven']} | {t['checker_failures']} | {t['reference_unproven']} | "
        f"{t['reference_beaten']} |\n"
        for tier, t in report["tiers"].items()
    )
    return (
        f"# Optimality audit\n\n{report['instances']} instances "
        f"(seeds from {report['first_seed']}), {report['seconds']:.0f} s "
        f"on {report['machine']['cpus']} CPUs.\n\n{head}{body}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the audit and write JSON and Markdown; exit 1 on a false claim or checker failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_INSTANCES} instances")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=pathlib.Path, default=pathlib.Path("out/audit.json"))
    args = parser.parse_args(argv)
    count = QUICK_INSTANCES if args.quick else args.instances
    seeds = range(args.first_seed, args.first_seed + count)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    # Each worker warms CP-SAT first: the first solve of a process is slow, and a cold
    # solve would make default answers time out for reasons checkout never sees.
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=args.workers, initializer=warm_up
    ) as pool:
        for found in tqdm(
            pool.map(audit_one, seeds, chunksize=4),
            total=count,
            desc="audit",
            unit="instance",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
        ):
            rows.extend(found)
    report: dict[str, Any] = {
        "instances": count,
        "first_seed": args.first_seed,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
        "tiers": summarise(rows),
        "false_claims": [r for r in rows if r["proven"] and r["rank"] > r["exact_rank"]],
        "reference_beaten": [r for r in rows if r["exact_proven"] and r["rank"] < r["exact_rank"]],
    }
    markdown = _markdown(report)
    write_outputs(args.json, report, markdown)
    print(markdown)
    total = report["tiers"]["all"]
    bad = total["claimed_optimal_but_worse"] + total["checker_failures"] + total["reference_beaten"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
