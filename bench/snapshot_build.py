"""Build a synthetic network and measure build time, JSON load time, peak memory and size.

Run ``python -m bench.snapshot_build --json PATH [--nodes 1000 --skus 5000 --seed 7]``.
The build is measured cold (first call in the process, including loading the city dataset),
as a service or CLI would pay it. The snapshot is then dumped to JSON, dropped, and
re-validated from the JSON, which is what loading a stored network costs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydantic

from models import Snapshot
from scenarios import generate_network


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure(*, nodes: int, skus: int, seed: int) -> dict[str, Any]:
    """Build, dump and reload one network; return the measurements."""
    started = time.perf_counter()
    snapshot = generate_network(nodes=nodes, skus=skus, seed=seed)
    build_s = time.perf_counter() - started
    peak_build = _peak_rss_mib()
    rows = len(snapshot.inventory)
    lots = sum(len(row.in_transit) for row in snapshot.inventory)
    started = time.perf_counter()
    payload = snapshot.model_dump_json()
    dump_s = time.perf_counter() - started
    del snapshot
    gc.collect()
    started = time.perf_counter()
    loaded = Snapshot.model_validate_json(payload)
    load_s = time.perf_counter() - started
    return {
        "nodes": len(loaded.nodes),
        "skus": len(loaded.items),
        "seed": seed,
        "inventory_rows": rows,
        "in_transit_lots": lots,
        "build_s": round(build_s, 3),
        "peak_rss_after_build_mib": round(peak_build, 1),
        "dump_json_s": round(dump_s, 3),
        "load_json_s": round(load_s, 3),
        "json_mib": round(len(payload) / 2**20, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pydantic": pydantic.VERSION,
        "cpus": os.cpu_count(),
    }


def _table(result: dict[str, Any]) -> str:
    """The measurements as a two-column Markdown table."""
    width = max(len(key) for key in result)
    lines = [f"| {'metric':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {key:<{width}} | {value} |" for key, value in result.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, print a table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, required=True, help="where to write the results")
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--skus", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    result = measure(nodes=args.nodes, skus=args.skus, seed=args.seed)
    print(_table(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
