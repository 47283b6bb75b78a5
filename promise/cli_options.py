"""Command-line options shared by the ``promise`` subcommands that open the authority.

Only the standard library: ``promise serve`` must configure the metrics registry before any
module that imports it is loaded (see ``promise.cli``).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

__all__ = ["data_dir_option", "instant"]


def instant(text: str) -> dt.datetime:
    """An ISO 8601 instant from the command line; without an offset it is UTC."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def data_dir_option(parser: argparse.ArgumentParser) -> None:
    """The --data-dir option (the embedded authority's directory)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        # None: the settings read PROMISE_DATA_DIR, else ./data.
        default=None,
        metavar="PATH",
        help="the embedded authority's directory (default $PROMISE_DATA_DIR, else ./data; "
        "ignored with a database URL)",
    )
