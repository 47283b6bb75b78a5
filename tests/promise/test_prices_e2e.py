"""The price table through a real ``promise serve`` (two workers): upload, read, charge, re-price.

The network: DCs in Philadelphia and Chicago both stock SKU A (Philadelphia also B); a cart
to New York ships from Philadelphia unless Philadelphia's unit carries an opportunity cost
above 450 cents (Chicago's fulfilment and lateness cost 450 more, see tests/solver/
test_pricing.py), so an answer's shipping node shows which table it was charged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from models import PromiseRequest, Snapshot, StockPrices
from solver.checker import check
from tests.launcher import ServerProcess
from tests.promise.promise_helpers import metric_value, problem_fields, problem_of, result_of
from tests.solver.network_cases import CHICAGO, MONDAY_10AM, dc, snapshot, stock

# Enough fresh connections that the kernel hands some to each of the two workers.
FRESH_CONNECTIONS = 40
# A background job's run (a child process pricing a two-node network) ends well within this.
JOB_DEADLINE_S = 60.0
POLL_S = 0.1
# Above the 450 cents Chicago costs more: Philadelphia's unit goes to later orders.
STEERING_CENTS = 600
# Orders after which the job server re-prices.
EVERY_ORDERS = 3


def two_dcs() -> Snapshot:
    """Philadelphia (A and B) and Chicago (A)."""
    return snapshot(
        [dc("PHL"), dc("CHI", location=CHICAGO)],
        [stock("PHL", "A", 15), stock("CHI", "A", 100), stock("PHL", "B", 40)],
    ).model_copy(update={"version": "two-dcs"})


def promise_body(cart_id: str = "p", quantity: int = 1) -> dict[str, Any]:
    """One line of A to New York on Monday morning, ground only."""
    return {
        "cart": {
            "cart_id": cart_id,
            "channel": "web",
            "lines": [{"line_id": "l1", "sku": "A", "quantity": quantity, "unit_price": 2000}],
        },
        "destination": {"postal_code": "10001"},
        "service_levels": ["ground"],
        "requested_at": MONDAY_10AM.isoformat(),
    }


def forecast_csv(path: Path) -> Path:
    """New York wants 40 units of A over the horizon: more than Philadelphia's 15."""
    path.write_text("lat,lon,sku,units\n40.7484,-73.9967,A,40\n")
    return path


def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait for a condition another process brings about, failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s} s"
        time.sleep(POLL_S)


def serve(root: Path, env: dict[str, str] | None = None) -> ServerProcess:
    """A server of two workers on the two-DC network under ``root``."""
    path = root / "two-dcs.json"
    path.write_text(two_dcs().model_dump_json())
    return ServerProcess(data_dir=root / "data", workers=2, snapshot=path, env=env)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The two-DC server (its own: uploads change what every later promise is charged)."""
    process = serve(tmp_path_factory.mktemp("prices-server"))
    with process.start():
        yield process


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    """A client with every role."""
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers, timeout=30.0) as c:
        yield c


def put_table(client: httpx.Client, rows: list[tuple[str, str, int]], **fields: Any) -> int:
    """Upload a table; its version."""
    body = {"rows": [{"node_id": n, "sku": s, "cents": c} for n, s, c in rows], **fields}
    answer = client.put("/v1/prices", json=body)
    assert answer.status_code == 200, answer.text
    version: int = answer.json()["version"]
    return version


def fresh_promise(server: ServerProcess, body: dict[str, Any]) -> httpx.Response:
    """A promise on a new connection, so successive calls spread over the workers."""
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers, timeout=30.0) as c:
        answer = c.post("/v1/promise", json=body)
    assert answer.status_code == 200, answer.text
    return answer


def shipped_from(answer: dict[str, Any]) -> set[str]:
    """Nodes the ground option ships from."""
    return {shipment["node_id"] for shipment in answer["options"][0]["shipments"]}


def test_an_upload_reads_back_page_by_page(server: ServerProcess, admin: httpx.Client) -> None:
    """PUT a table, GET it in pages of one by cursor, filtered by SKU and node; audited."""
    version = put_table(
        admin, [("PHL", "A", 310), ("CHI", "A", 20), ("PHL", "B", 7)], note="hand-made"
    )
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = admin.get("/v1/prices", params=params).json()
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [(p["version"], p["note"], p["origin"], p["priced"]) for p in pages] == [
        (version, "hand-made", "upload", 3)
    ] * 3
    rows = [(r["sku"], r["node_id"], r["cents"]) for p in pages for r in p["rows"]]
    assert rows == [("A", "CHI", 20), ("A", "PHL", 310), ("B", "PHL", 7)]
    by_node = admin.get("/v1/prices", params={"node_id": "PHL"}).json()["rows"]
    assert [r["sku"] for r in by_node] == ["A", "B"]
    by_sku = admin.get("/v1/prices", params={"sku": "B", "limit": 0}).json()
    assert (by_sku["version"], by_sku["rows"]) == (version, [])
    audit = admin.get("/v1/audit", params={"action": "prices.write"}).json()["entries"]
    assert audit[-1]["subject"] == str(version)
    assert audit[-1]["principal"] == pages[0]["principal"]


def test_every_worker_charges_a_new_table_from_the_next_promise(
    server: ServerProcess, admin: httpx.Client
) -> None:
    """Right after a PUT returns, every promise on either worker reports the new version."""
    version = put_table(admin, [("CHI", "A", 1)])
    workers: set[str] = set()
    for k in range(FRESH_CONNECTIONS):
        answer = fresh_promise(server, promise_body(f"after-{k}"))
        workers.add(answer.headers["x-worker-pid"])
        assert answer.json()["solver"]["prices_version"] == version
    assert len(workers) == 2


def test_a_price_steers_the_answer_and_the_checker_agrees(
    server: ServerProcess, admin: httpx.Client
) -> None:
    """Philadelphia's unit priced at 600 cents sends the unit from Chicago, and says why."""
    put_table(admin, [("PHL", "B", 1)])
    plain = fresh_promise(server, promise_body("plain")).json()
    assert shipped_from(plain) == {"PHL"}
    version = put_table(admin, [("PHL", "A", STEERING_CENTS)])
    body = promise_body("steered")
    steered = fresh_promise(server, body).json()
    assert shipped_from(steered) == {"CHI"}
    option = steered["options"][0]
    assert option["opportunity_cost"] == 0
    assert "opportunity cost of stock changed this answer" in option["explanation"]
    prices = StockPrices.of([("PHL", "A", STEERING_CENTS)], version=version)
    report = check(
        result_of(steered), PromiseRequest.model_validate(body), two_dcs(), prices=prices
    )
    assert report.ok, report.violations


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        # a node the network does not have
        ([{"node_id": "NYC", "sku": "A", "cents": 5}], "rows.0.node_id"),
        # a SKU the network does not have, on the second row
        (
            [
                {"node_id": "PHL", "sku": "A", "cents": 5},
                {"node_id": "PHL", "sku": "Z", "cents": 5},
            ],
            "rows.1.sku",
        ),
        # one pair twice
        (
            [
                {"node_id": "PHL", "sku": "A", "cents": 5},
                {"node_id": "PHL", "sku": "A", "cents": 6},
            ],
            "rows.1",
        ),
        # a price below zero
        ([{"node_id": "PHL", "sku": "A", "cents": -1}], "rows.0.cents"),
        # a price above the cap
        ([{"node_id": "PHL", "sku": "A", "cents": 10_000_001}], "rows.0.cents"),
        # a price that is not an integer
        ([{"node_id": "PHL", "sku": "A", "cents": 2.5}], "rows.0.cents"),
        # a node id outside the identifier rule
        ([{"node_id": "P H L", "sku": "A", "cents": 1}], "rows.0.node_id"),
    ],
)
def test_a_bad_upload_is_refused_naming_the_field(
    admin: httpx.Client, rows: list[dict[str, Any]], field: str
) -> None:
    """Each bad table is a 422 problem naming the row and field; the table stays as it was."""
    before = admin.get("/v1/prices", params={"limit": 0}).json()["version"]
    problem = problem_of(admin.put("/v1/prices", json={"rows": rows}), 422)
    assert field in problem_fields(problem)
    assert admin.get("/v1/prices", params={"limit": 0}).json()["version"] == before


def test_stale_writers_and_cursors_are_told_the_table_moved(admin: httpx.Client) -> None:
    """A PUT replacing an old version, or a page of an old cursor, is a 409 prices-moved."""
    first = put_table(admin, [("PHL", "A", 1), ("CHI", "A", 2)])
    cursor = admin.get("/v1/prices", params={"limit": 1}).json()["next_cursor"]
    assert put_table(admin, [("PHL", "A", 3)], replaces=first) == first + 1
    problem = problem_of(admin.put("/v1/prices", json={"rows": [], "replaces": first}), 409)
    assert problem["type"].endswith(":prices-moved")
    stale = problem_of(admin.get("/v1/prices", params={"cursor": cursor}), 409)
    assert stale["type"].endswith(":prices-moved")
    garbled = problem_of(admin.get("/v1/prices", params={"cursor": "bm90LWEtY3Vyc29y"}), 422)
    assert problem_fields(garbled) == {"cursor"}


def test_only_admins_replace_the_table(server: ServerProcess) -> None:
    """A checkout or analyst key reads the table; only an admin key writes it."""
    for role in ("promise", "analyst"):
        key = server.make_key(role, name=f"{role}-only")
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
        ) as client:
            assert client.get("/v1/prices").status_code == 200
            refused = problem_of(client.put("/v1/prices", json={"rows": []}), 403)
            assert refused["type"].endswith(":forbidden")


def test_the_cli_writes_a_version_every_worker_charges(
    server: ServerProcess, admin: httpx.Client, tmp_path: Path
) -> None:
    """``promise price --forecast`` prices Philadelphia's scarce A and writes the next table."""
    before = admin.get("/v1/prices", params={"limit": 0}).json()["version"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "promise.cli",
            "price",
            "--forecast",
            str(forecast_csv(tmp_path / "forecast.csv")),
            "--data-dir",
            str(server.data_dir),
            "--json",
        ],
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    figures = json.loads(done.stdout)
    assert figures["version"] == before + 1
    assert (figures["regions"], figures["forecast_skus"], figures["lp_status"]) == (1, 1, "OPTIMAL")
    table = admin.get("/v1/prices").json()
    assert (table["version"], table["origin"]) == (before + 1, "cli")
    assert table["principal"].startswith("cli:")
    # New York's 40 units outrun Philadelphia's 15: each of its units saves the Chicago cost.
    (priced,) = table["rows"]
    assert (priced["node_id"], priced["sku"]) == ("PHL", "A")
    assert priced["cents"] > 0
    answer = fresh_promise(server, promise_body("after-cli")).json()
    assert answer["solver"]["prices_version"] == before + 1


def test_the_cli_refuses_an_unusable_forecast(server: ServerProcess, tmp_path: Path) -> None:
    """A forecast without its columns exits 2 and writes nothing."""
    bad = tmp_path / "bad.csv"
    bad.write_text("where,what\n1,2\n")
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "promise.cli", "price", "--forecast", str(bad)),
            *("--data-dir", str(server.data_dir)),
        ],
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2
    assert b"header" in done.stderr


def test_the_job_reprices_after_k_orders(tmp_path: Path) -> None:
    """Two holds leave the table alone; the third makes the job write version 1, once."""
    env = {
        "PROMISE_PRICING_EVERY_ORDERS": str(EVERY_ORDERS),
        "PROMISE_PRICING_FORECAST": str(forecast_csv(tmp_path / "forecast.csv")),
        "PROMISE_PRICING_CHECK_S": "0.1",
    }
    process = serve(tmp_path, env)
    with (
        process.start(),
        httpx.Client(base_url=process.base_url, headers=process.auth_headers, timeout=30.0) as c,
    ):

        def checks() -> float:
            return metric_value(c.get("/metrics").text, "promise_pricing_checks_total")

        def hold(n: int) -> None:
            answer = c.post("/v1/promise", json={**promise_body(f"order-{n}"), "reserve": True})
            assert answer.json()["reservation"]["held"], answer.text

        for n in range(EVERY_ORDERS - 1):
            hold(n)
        seen = checks()
        until(lambda: checks() >= seen + 3, JOB_DEADLINE_S, "three more job checks")
        assert c.get("/v1/prices", params={"limit": 0}).json()["version"] == 0
        hold(EVERY_ORDERS)
        until(
            lambda: c.get("/v1/prices", params={"limit": 0}).json()["version"] == 1,
            JOB_DEADLINE_S,
            "a re-pricing",
        )
        table = c.get("/v1/prices").json()
        assert table["origin"] == "job"
        assert table["principal"].startswith("job:pricing@")
        assert f"{EVERY_ORDERS} orders since version 0" in table["note"]
        # No order since version 1: however often the job looks, nothing more is written.
        seen = checks()
        until(lambda: checks() >= seen + 3, JOB_DEADLINE_S, "three more job checks")
        metrics = c.get("/metrics").text
        assert metric_value(metrics, "promise_pricing_runs_total", outcome="written") == 1
        assert c.get("/v1/prices", params={"limit": 0}).json()["version"] == 1


def test_serve_refuses_a_job_without_a_forecast(tmp_path: Path) -> None:
    """Re-pricing turned on with nothing to price from stops ``promise serve`` at once."""
    done = subprocess.run(
        [sys.executable, "-m", "promise.cli", "serve", "--data-dir", str(tmp_path), "--port", "0"],
        capture_output=True,
        check=False,
        timeout=120,
        env={**os.environ, "PROMISE_PRICING_EVERY_S": "60"},
    )
    assert done.returncode == 2
    assert b"re-pricing needs a forecast" in done.stderr
