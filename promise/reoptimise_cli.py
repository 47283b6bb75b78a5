"""``promise reoptimise``: ask a running service to re-source its open orders.

The re-sourcing needs the live snapshot, the live stock and the solver a service already has,
so the command is a client of ``POST /v1/reservations/reoptimise`` (stdlib HTTP only) and prints
the answer as JSON. The key comes from ``--api-key`` or the PROMISE_API_KEY variable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

__all__ = ["register"]

PATH = "/v1/reservations/reoptimise"
# The server's own search limit plus the time to read the holds and move them.
MARGIN_S = 30.0


def _reoptimise(args: argparse.Namespace) -> int:
    """POST the request; print the answer; exit 0 on a 200, else 1."""
    key = args.api_key or os.environ.get("PROMISE_API_KEY", "")
    body = {
        "threshold_percent": args.threshold_percent,
        "threshold_cents": args.threshold_cents,
        "time_limit_ms": args.time_limit_ms,
    }
    request = urllib.request.Request(  # noqa: S310 - the operator names the service's URL
        args.url.rstrip("/") + PATH,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    timeout = args.time_limit_ms / 1000 + MARGIN_S
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            sys.stdout.write(response.read().decode() + "\n")
            return 0
    except urllib.error.HTTPError as exc:
        sys.stderr.write(exc.read().decode() + "\n")
        return 1


def register(subparsers: Any) -> None:
    """Add ``reoptimise`` to ``subparsers`` (from ``add_subparsers``)."""
    parser = subparsers.add_parser(
        "reoptimise", help="re-source the open orders of a running service, keeping their dates"
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service's base URL")
    parser.add_argument("--api-key", help="an admin or reserve key (default: $PROMISE_API_KEY)")
    parser.add_argument("--threshold-percent", type=float, default=1.0, help="minimum saving, %%")
    parser.add_argument("--threshold-cents", type=int, default=0, help="minimum saving, cents")
    parser.add_argument("--time-limit-ms", type=int, default=2_000, help="the solver's budget")
    parser.set_defaults(handler=_reoptimise)
