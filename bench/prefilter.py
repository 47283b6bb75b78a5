"""Pre-filter and proof cap: default answers against answers whose proof may add any node.

The default mode keeps the pre-filter's candidates and lets the optimality proof add at most
``SolveParams.proof_nodes`` nodes per level; the reference lets the proof add every node it
cannot rule out (exact by construction: solver/bounds.py), with a generous budget. A scenario
counts as kept when every service level's objective is the same in both modes. (The exact
mode proper, every node and every date with no pruning, is audited by bench/audit.py on
networks small enough for it.)
Usage::

    python -m bench.prefilter --scenarios 500 --json out/prefilter.json
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

from tqdm import tqdm

from bench._common import machine, warm_network, write_outputs
from models import PromiseRequest
from scenarios import generate_carts, generate_network
from solver import PreparedNetwork, SolveParams, solve

FILTERED = SolveParams(time_budget_ms=4000)
EXACT = SolveParams(time_budget_ms=4000, proof_nodes=10**6)


def compare(network: PreparedNetwork, carts: list[PromiseRequest]) -> dict[str, Any]:
    """Count scenarios where the pre-filter keeps the exact optimum."""
    same = worse = better = unproven = 0
    candidates_filtered = candidates_exact = 0
    lost: list[dict[str, Any]] = []
    for request in tqdm(carts, desc="scenarios", unit="cart", file=sys.stderr):
        filtered = solve(request, network, params=FILTERED)
        exact = solve(request, network, params=EXACT)
        candidates_filtered += filtered.solver.candidates
        candidates_exact += exact.solver.candidates
        pairs = list(zip(filtered.options, exact.options, strict=True))
        if any(not e.proven for _, e in pairs):
            unproven += 1
        gaps = [f.objective - e.objective for f, e in pairs]
        if all(g == 0 for g in gaps):
            same += 1
        elif any(g > 0 for g in gaps):
            worse += 1
            lost.append({"cart_id": request.cart.cart_id, "gap": max(gaps)})
        else:
            better += 1  # the reference ran out of time before matching the default
    count = len(carts)
    return {
        "scenarios": count,
        "same_objective": same,
        "same_rate": round(same / count, 4) if count else 1.0,
        "prefilter_worse": worse,
        "prefilter_better": better,
        "exact_unproven": unproven,
        "mean_candidates_prefilter": round(candidates_filtered / max(1, count), 2),
        "mean_candidates_exact": round(candidates_exact / max(1, count), 2),
        "worst": sorted(lost, key=lambda row: -row["gap"])[:10],
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write JSON and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=500, help="number of carts")
    parser.add_argument("--nodes", type=int, default=200, help="network size")
    parser.add_argument("--seed", type=int, default=31, help="cart generator seed")
    parser.add_argument("--json", type=pathlib.Path, required=True, help="report path")
    args = parser.parse_args(argv)
    snapshot = generate_network(nodes=args.nodes, skus=2000, seed=7)
    carts = generate_carts(snapshot, count=args.scenarios, seed=args.seed)
    network = warm_network(snapshot, carts[:10])
    report = {"machine": machine(), "nodes": args.nodes, **compare(network, carts)}
    text = (
        "# Pre-filter and proof cap\n\n"
        f"{report['same_objective']} of {report['scenarios']} scenarios "
        f"({report['same_rate']:.1%}) have the objective of an uncapped proof at every level; "
        f"pre-filter worse on {report['prefilter_worse']}, better on "
        f"{report['prefilter_better']} (reference unproven on {report['exact_unproven']}). "
        f"Candidates per cart: {report['mean_candidates_prefilter']} against "
        f"{report['mean_candidates_exact']}.\n"
    )
    write_outputs(args.json, report, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
