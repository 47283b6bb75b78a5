"""Build and load a large network: time and peak memory, for the row and the columnar forms.

Run ``python -m bench.snapshot_build --json PATH [--nodes 1000 --skus 5000 --seed 7]``.

Each measurement runs in a fresh process so peaks do not mix: *build* generates the network
(cold, including the city dataset) and turns it into the solver's arrays; *load* validates the
stored JSON and turns it into the solver's arrays, which is what a service pays at start-up or on
a snapshot swap. Both are done for the row form (one ``InventoryPosition`` per row) and the
columnar form (``inventory_table``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench._common import machine, write_outputs
from models import Snapshot
from scenarios import generate_network
from solver import prepare

FORMS = ("rows", "columnar")


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _phase(
    phase: str, form: str, *, nodes: int, skus: int, seed: int, path: pathlib.Path
) -> dict[str, Any]:
    """Run one phase in this process and return its measurements."""
    started = time.perf_counter()
    if phase == "build":
        snapshot = generate_network(nodes=nodes, skus=skus, seed=seed, columnar=form == "columnar")
    else:
        snapshot = Snapshot.model_validate_json(path.read_bytes())
    validated = time.perf_counter()
    index = prepare(snapshot).index
    done = time.perf_counter()
    out: dict[str, Any] = {
        "seconds": round(done - started, 3),
        "snapshot_s": round(validated - started, 3),
        "arrays_s": round(done - validated, 3),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "inventory_rows": int(index.row_node.size),
        "in_transit_lots": int(index.lot_qty.size),
    }
    if phase == "build":
        started = time.perf_counter()
        path.write_text(snapshot.model_dump_json())
        out["dump_s"] = round(time.perf_counter() - started, 3)
        out["json_mib"] = round(path.stat().st_size / 2**20, 1)
    return out


def _child(
    phase: str, form: str, *, nodes: int, skus: int, seed: int, path: pathlib.Path
) -> dict[str, Any]:
    """Run one phase in a fresh interpreter and parse its JSON line."""
    command = [
        sys.executable, "-m", "bench.snapshot_build", "--phase", phase, "--form", form,
        "--nodes", str(nodes), "--skus", str(skus), "--seed", str(seed), "--file", str(path),
    ]  # fmt: skip
    # The command is this very module with numbers this process parsed: nothing untrusted.
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)  # noqa: S603
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(nodes: int, skus: int, seed: int) -> dict[str, Any]:
    """Build and load both forms, each phase in its own process."""
    report: dict[str, Any] = {"machine": machine(), "nodes": nodes, "skus": skus, "seed": seed}
    with tempfile.TemporaryDirectory() as folder:
        for form in FORMS:
            path = pathlib.Path(folder) / f"{form}.json"
            report[form] = {
                phase: _child(phase, form, nodes=nodes, skus=skus, seed=seed, path=path)
                for phase in ("build", "load")
            }
    return report


def markdown(report: dict[str, Any]) -> str:
    """A Markdown table of the report."""
    rows = [
        f"# Snapshot build and load: {report['nodes']} nodes, {report['skus']} SKUs\n",
        "| form | phase | seconds | peak RSS MiB | rows | JSON MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for form in FORMS:
        for phase in ("build", "load"):
            m = report[form][phase]
            size = report[form]["build"].get("json_mib", "")
            rows.append(
                f"| {form} | {phase} | {m['seconds']} | {m['peak_rss_mib']} | "
                f"{m['inventory_rows']} | {size} |"
            )
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; orchestrate, or run one phase when asked by the orchestrator."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=pathlib.Path, help="where to write the results")
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--skus", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phase", choices=("build", "load"), help=argparse.SUPPRESS)
    parser.add_argument("--form", choices=FORMS, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase is not None:
        result = _phase(
            args.phase, args.form, nodes=args.nodes, skus=args.skus, seed=args.seed, path=args.file
        )
        print(json.dumps(result))
        return 0
    if args.json is None:
        parser.error("--json is required")
    report = run(args.nodes, args.skus, args.seed)
    write_outputs(args.json, report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
