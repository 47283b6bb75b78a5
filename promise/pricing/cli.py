"""``promise price``: price live stock from a forecast and write the authority's next table.

The command talks to the authority directly (the database of ``PROMISE_DATABASE_URL``, else the
embedded one under ``--data-dir``), as ``promise keys`` does: it reads the live network and live
stock, builds the forecast (a CSV file, or captured scenarios), solves the pricing LP (the
per-unit transportation LP by default, ``--lp baskets`` for the order-level basket LP) and
writes the prices as the next version, audited under ``cli:<user>`` (or ``--actor``). Every
worker of every host charges the new table from its next promise on. The re-pricing job of the
service runs this same command in a child process.

Exit status: 0 written, 1 the run failed, 2 bad arguments or no usable input, 3 with
``--if-version`` another table was written first (nothing written).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from promise.access.cli import actor_name
from promise.cli_options import data_dir_option

__all__ = ["BEATEN_EXIT", "duration", "register"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 3600}
# With --if-version: another table was written first, nothing was written.
BEATEN_EXIT = 3


def _positive(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def duration(text: str) -> dt.timedelta:
    """A duration such as ``90m``, ``24h``, ``7d`` or ``3600s`` (a bare number is hours)."""
    match = _DURATION.match(text)
    if match is None or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"not a positive duration such as 24h or 7d: {text!r}")
    return dt.timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])


def _price(args: argparse.Namespace) -> int:
    """Run one pricing and print its figures."""
    # Imported here: the stock service pulls in the metrics registry, which `promise serve`
    # must configure before any import of it (see promise.cli).
    from promise.pricing.run import ForecastSource, PricingError, run_pricing  # noqa: PLC0415
    from promise.stock.config import StockSettings  # noqa: PLC0415
    from promise.stock.connect import open_backend  # noqa: PLC0415
    from promise.stock.errors import PricesMovedError  # noqa: PLC0415
    from scenarios.forecast import ForecastError  # noqa: PLC0415

    if args.nice:
        # A run started by the service yields the CPU to the solves of its workers.
        os.nice(args.nice)
    scenarios: Path | None = args.from_scenarios
    if scenarios is not None and str(scenarios) == "":
        scenarios = args.data_dir / "scenarios.duckdb"
    source = ForecastSource(
        csv=args.forecast,
        scenarios=scenarios,
        horizon=args.horizon,
        lookback=args.lookback,
        cell_deg=args.cell_deg,
    )
    backend = open_backend(StockSettings.from_env(data_dir=args.data_dir))
    try:
        outcome = run_pricing(
            backend,
            source,
            channel=args.channel,
            nearest=args.nearest,
            lp=args.lp,
            baskets=args.baskets,
            origin=args.origin,
            actor=args.actor or actor_name(),
            expect=args.if_version,
            note=args.note,
        )
    except PricesMovedError as exc:
        sys.stderr.write(f"promise price: {exc.message}\n")
        return BEATEN_EXIT
    except (PricingError, ForecastError) as exc:
        sys.stderr.write(f"promise price: {exc}\n")
        return 2
    finally:
        backend.close()
    figures: dict[str, Any] = outcome.figures()
    if args.json:
        sys.stdout.write(json.dumps(figures) + "\n")
    else:
        width = max(map(len, figures))
        for name, value in figures.items():
            sys.stdout.write(f"{name:<{width}}  {value}\n")
    return 0


def register(subparsers: Any) -> None:
    """Add ``price`` to ``subparsers`` (from ``add_subparsers``)."""
    price = subparsers.add_parser(
        "price",
        help="price live stock from a forecast; write the authority's next price table",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    source = price.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--forecast",
        type=Path,
        metavar="FILE",
        help="CSV with columns lat,lon,sku,units or lat,lon,skus,orders (baskets)",
    )
    source.add_argument(
        "--from-scenarios",
        type=Path,
        nargs="?",
        const=Path(""),
        metavar="STORE",
        help="demand captured in a scenario store (default <data dir>/scenarios.duckdb)",
    )
    price.add_argument("--channel", default="web", help="the channel whose ATP is priced (web)")
    price.add_argument(
        "--horizon",
        type=duration,
        default=dt.timedelta(days=1),
        help="the period the prices look ahead: scenario demand is scaled to it (default 1d)",
    )
    price.add_argument(
        "--lookback",
        type=duration,
        default=dt.timedelta(days=7),
        help="the period of scenarios read, ending at the newest (default 7d)",
    )
    price.add_argument(
        "--cell-deg",
        type=float,
        default=1.0,
        help="scenario destinations are grouped in cells of this many degrees (default 1)",
    )
    price.add_argument(
        "--nearest", type=_positive, default=8, help="cheapest stocking nodes per region kept (8)"
    )
    price.add_argument(
        "--lp",
        choices=["baskets", "units"],
        default="units",
        help="the pricing LP: units one by one (default) or orders as baskets of SKUs",
    )
    price.add_argument(
        "--baskets",
        type=_positive,
        default=400,
        help="basket LP: the most frequent multi-SKU baskets kept whole (400)",
    )
    price.add_argument("--note", default="", help="said in the table's note")
    price.add_argument(
        "--if-version",
        type=int,
        metavar="N",
        help="write only if version N is current (exit 3 otherwise)",
    )
    price.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    # Set by the service's re-pricing job.
    price.add_argument("--origin", default="cli", choices=["cli", "job"], help=argparse.SUPPRESS)
    price.add_argument("--actor", help=argparse.SUPPRESS)
    price.add_argument("--nice", type=int, default=0, help=argparse.SUPPRESS)
    data_dir_option(price)
    price.set_defaults(handler=_price)
