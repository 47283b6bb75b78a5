"""The service prices stock with the basket LP from captured carts (a real ``promise serve``).

The two-DC network of tests/promise/test_prices_e2e.py: Philadelphia holds A (15) and B (40),
Chicago only A (100). Forty carts of {A, B} to New York were captured over a week. Shipped
from Philadelphia such a cart is one box; once Philadelphia's A runs out it is a box of A from
Chicago and a box of B from Philadelphia, with the split penalty. The per-unit LP sees only
that Chicago's unit costs more to ship; the basket LP also sees the second box, so it prices
Philadelphia's A higher.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from models import Cart, CartLine, Destination, PromiseRequest
from scenarios import ScenarioStore
from tests.launcher import ServerProcess
from tests.promise.promise_helpers import metric_value
from tests.promise.test_prices_e2e import (
    EVERY_ORDERS,
    JOB_DEADLINE_S,
    promise_body,
    serve,
    two_dcs,
    until,
)
from tests.solver.network_cases import MONDAY_10AM

CARTS = 40
WEEK_S = 7 * 86400
NEW_YORK = (40.7484, -73.9967)


def captured_week(path: Path) -> Path:
    """A scenario store holding a week of {A, B} carts to New York, one every four hours."""
    with ScenarioStore(path) as store:
        for k in range(CARTS):
            request = PromiseRequest(
                cart=Cart(
                    cart_id=f"past-{k}",
                    channel="web",
                    lines=(
                        CartLine(line_id="l1", sku="A", quantity=1, unit_price=2000),
                        CartLine(line_id="l2", sku="B", quantity=1, unit_price=2000),
                    ),
                ),
                destination=Destination(lat=NEW_YORK[0], lon=NEW_YORK[1]),
                requested_at=MONDAY_10AM - dt.timedelta(hours=4 * (CARTS - k)),
            )
            store.capture(request, two_dcs())
    return path


def price(data_dir: Path, store: Path, *extra: str) -> dict[str, Any]:
    """``promise price`` from the captured week over a week's horizon: its figures."""
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "promise.cli", "price", "--from-scenarios", str(store)),
            *("--horizon", "7d", "--data-dir", str(data_dir), "--json", *extra),
        ],
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def phl_a(client: httpx.Client) -> int:
    """The current table's price of Philadelphia's A."""
    rows = client.get("/v1/prices", params={"node_id": "PHL", "sku": "A"}).json()["rows"]
    assert len(rows) == 1, rows
    cents: int = rows[0]["cents"]
    return cents


def test_the_cli_prices_baskets_above_the_unit_lp(tmp_path: Path) -> None:
    """From captured carts, the basket LP's price of the scarce A beats the unit LP's price."""
    store = captured_week(tmp_path / "past.duckdb")
    process = serve(tmp_path)
    with (
        process.start(),
        httpx.Client(base_url=process.base_url, headers=process.auth_headers, timeout=30.0) as c,
    ):
        # The per-unit LP is the default: the basket LP is asked for by name.
        units = price(process.data_dir, store)
        assert (units["lp"], units["lp_status"], units["carts"]) == ("units", "OPTIMAL", CARTS)
        unit_cents = phl_a(c)
        baskets = price(process.data_dir, store, "--lp", "baskets")
        assert (baskets["lp"], baskets["lp_status"]) == ("baskets", "OPTIMAL")
        # One basket of {A, B} to one cell, 40 orders over the week's horizon.
        assert (baskets["regions"], baskets["baskets"], baskets["forecast_orders"]) == (
            1,
            1,
            CARTS,
        )
        assert baskets["version"] == units["version"] + 1
        basket_cents = phl_a(c)
        assert "order-level LP" in c.get("/v1/prices", params={"limit": 0}).json()["note"]
        # Both see Chicago's dearer unit; only the basket LP also sees the second box.
        assert 0 < unit_cents < basket_cents


def test_the_job_reprices_with_the_basket_lp_from_captured_scenarios(tmp_path: Path) -> None:
    """The k-th hold makes the job price the captured carts' baskets and write the table."""
    env = {
        "PROMISE_PRICING_EVERY_ORDERS": str(EVERY_ORDERS),
        "PROMISE_PRICING_SCENARIOS": str(captured_week(tmp_path / "past.duckdb")),
        "PROMISE_PRICING_HORIZON_S": str(WEEK_S),
        "PROMISE_PRICING_CHECK_S": "0.1",
        "PROMISE_PRICING_LP": "baskets",
    }
    process: ServerProcess = serve(tmp_path, env)
    with (
        process.start(),
        httpx.Client(base_url=process.base_url, headers=process.auth_headers, timeout=30.0) as c,
    ):
        for n in range(EVERY_ORDERS):
            answer = c.post("/v1/promise", json={**promise_body(f"order-{n}"), "reserve": True})
            assert answer.json()["reservation"]["held"], answer.text
        until(
            lambda: c.get("/v1/prices", params={"limit": 0}).json()["version"] == 1,
            JOB_DEADLINE_S,
            "a re-pricing",
        )
        table = c.get("/v1/prices").json()
        assert table["origin"] == "job"
        assert "order-level LP" in table["note"]
        assert f"{EVERY_ORDERS} orders since version 0" in table["note"]
        assert phl_a(c) > 0
        # The run is counted once its child has exited, just after the table is written.
        until(
            lambda: (
                metric_value(
                    c.get("/metrics").text, "promise_pricing_runs_total", outcome="written"
                )
                == 1
            ),
            JOB_DEADLINE_S,
            "the run counted as written",
        )
