"""Re-sourcing open orders over a real server: fewer packages, dates kept, never oversold.

The network: Chicago and Dallas ship ground to Indianapolis in the same two days (so a move
between them never changes a date), Chicago cheaper. Chicago stocks A×1 and B×2, Dallas A×3.
Held one at a time, order 1 {A} takes Chicago's only A, so orders 2 and 3 {A, B} each split
(A from Dallas, B from Chicago): 5 packages. Planned together, order 1 ships from Dallas and
order 2 from Chicago alone: 4 packages, and cheaper by a whole package's base rate.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from models import (
    CarrierService,
    CatalogItem,
    ChannelPolicy,
    InventoryPosition,
    Location,
    Node,
    NodeKind,
    PromiseOption,
    PromiseRequest,
    ServiceLevel,
    Snapshot,
    ZoneRate,
)
from solver.checker import check
from tests.launcher import ServerProcess
from tests.promise.promise_helpers import TINY_DESTINATION, result_of

STOCK = {("CHI", "A"): 1, ("CHI", "B"): 2, ("DAL", "A"): 3}
CARTS = ({"A": 1}, {"A": 1, "B": 1}, {"A": 1, "B": 1})
# Far more than any saving here: nothing may move.
HUGE_THRESHOLD_CENTS = 10**9


def _network() -> Snapshot:
    """Two DCs, one ground service with the same transit in every zone, A and B."""
    nodes = tuple(
        Node(
            node_id=node_id,
            kind=NodeKind.DC,
            location=Location(lat=lat, lon=lon),
            region=region,
            time_zone="America/Chicago",
        )
        for node_id, lat, lon, region in (
            ("CHI", 41.88, -87.63, "IL"),
            ("DAL", 32.78, -96.80, "TX"),
        )
    )
    ground = CarrierService(
        service_id="ground",
        carrier="tiny",
        service_level=ServiceLevel.GROUND,
        transit_days=(2,) * 8,
        rates=tuple(ZoneRate(base=500 + 100 * zone, per_kg=40) for zone in range(8)),
    )
    return Snapshot(
        version="resource-v1",
        as_of=dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC),
        nodes=nodes,
        services=(ground,),
        items=tuple(CatalogItem(sku=sku, weight_g=500, list_price=1999) for sku in "AB"),
        inventory=tuple(
            InventoryPosition(node_id=node, sku=sku, on_hand=units)
            for (node, sku), units in STOCK.items()
        ),
        policies=(ChannelPolicy(channel="web"),),
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh two-worker server on the re-sourcing network (each test changes its stock)."""
    path = tmp_path / "network.json"
    path.write_text(_network().model_dump_json())
    with ServerProcess(data_dir=tmp_path / "data", workers=2, snapshot=path).start() as server:
        yield server


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    """An admin client of the server."""
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers, timeout=30) as c:
        yield c


def _body(number: int, cart: dict[str, int]) -> dict[str, Any]:
    """A promise body that holds the ground option of ``cart``."""
    return {
        "cart": {
            "cart_id": f"order-{number}",
            "channel": "web",
            "lines": [
                {"line_id": f"l{sku}", "sku": sku, "quantity": q, "unit_price": 1999}
                for sku, q in cart.items()
            ],
        },
        "destination": dict(TINY_DESTINATION),
        "reserve": True,
        "reserve_service_level": "ground",
    }


def _hold_myopically(client: httpx.Client) -> list[dict[str, Any]]:
    """Hold the three orders one after the other; their promise answers."""
    answers = []
    for number, cart in enumerate(CARTS):
        response = client.post("/v1/promise", json=_body(number, cart))
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["reservation"]["held"], answer
        answers.append(answer)
    return answers


def _packages(answer: dict[str, Any]) -> int:
    """Packages of the held (ground) option of a promise answer."""
    return sum(len(o["shipments"]) for o in answer["options"] if o["service_level"] == "ground")


def _held(client: httpx.Client) -> dict[tuple[str, str], tuple[int, int]]:
    """(held, on hand) of every stocked row."""
    out = {}
    for node, sku in STOCK:
        response = client.get(
            "/v1/inventory/positions", params={"node_id": node, "sku": sku, "channel": "web"}
        )
        assert response.status_code == 200, response.text
        position = response.json()
        out[node, sku] = (position["held"], position["on_hand"])
    return out


def test_three_orders_are_resourced_into_fewer_packages_keeping_their_dates(
    client: httpx.Client,
) -> None:
    """Myopic holds (5 packages) move to the joint plan (4), every date kept, each checked."""
    answers = _hold_myopically(client)
    assert sum(_packages(a) for a in answers) == 5
    response = client.post("/v1/reservations/reoptimise", json={})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["outcome"] == "moved", result
    assert result["planned_cost"] < result["baseline_cost"]
    by_hold = {a["reservation"]["reservation"]["reservation_id"]: a for a in answers}
    snapshot = _network()
    after = 0
    for moved in result["moved"]:
        answer = by_hold[moved["reservation_id"]]
        option = PromiseOption.model_validate(moved["option"])
        assert option.promised_delivery_date is not None
        assert option.promised_delivery_date <= dt.date.fromisoformat(
            moved["promised_delivery_date"]
        )
        # The checker judges the new option on the network's stock before any hold.
        number = int(answer["cart_id"].removeprefix("order-"))
        body = _body(number, CARTS[number])
        request = PromiseRequest.model_validate({k: body[k] for k in ("cart", "destination")})
        checked = result_of(answer).model_copy(
            update={
                "options": (option,),
                "recommended": ServiceLevel.GROUND,
                "requested_at": dt.datetime.fromisoformat(moved["requested_at"]),
                "order_date": dt.date.fromisoformat(moved["order_date"]),
            }
        )
        report = check(checked, request, snapshot)
        assert report.ok, report.violations
        assert moved["packages_after"] <= moved["packages_before"]
        after += moved["packages_after"] - moved["packages_before"]
    assert after < 0
    for hold_id, answer in by_hold.items():
        reservation = client.get(f"/v1/reservations/{hold_id}").json()
        assert reservation["status"] == "held"
        assert sum(line["quantity"] for line in reservation["lines"]) == sum(
            CARTS[int(answer["cart_id"].removeprefix("order-"))].values()
        )
    # Every held unit still fits the stock, and a second pass finds nothing more to gain.
    assert all(held <= on_hand for held, on_hand in _held(client).values())
    again = client.post("/v1/reservations/reoptimise", json={}).json()
    assert again["outcome"] == "unchanged", again


def test_nothing_moves_when_no_plan_is_cheaper_by_the_threshold(
    server: ServerProcess, client: httpx.Client
) -> None:
    """With a threshold above any saving (asked by the CLI) the holds stay as they were."""
    answers = _hold_myopically(client)
    ids = [a["reservation"]["reservation"]["reservation_id"] for a in answers]
    before = [client.get(f"/v1/reservations/{i}").json()["lines"] for i in ids]
    command = [sys.executable, "-m", "promise.cli", "reoptimise", "--url", server.base_url]
    command += ["--threshold-cents", str(HUGE_THRESHOLD_CENTS)]
    done = subprocess.run(
        command,
        env={**os.environ, "PROMISE_API_KEY": server.api_key or ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "unchanged", result
    assert result["moved"] == []
    assert result["planned_cost"] < result["baseline_cost"]
    assert [client.get(f"/v1/reservations/{i}").json()["lines"] for i in ids] == before


def test_concurrent_holds_during_resourcing_never_oversell(
    server: ServerProcess, client: httpx.Client
) -> None:
    """Holds racing a re-sourcing from several threads leave every row within its stock."""
    _hold_myopically(client)
    start = threading.Barrier(5)
    outcomes: list[str] = []

    def grab(node: str, sku: str) -> None:
        with httpx.Client(base_url=server.base_url, headers=server.auth_headers, timeout=30) as c:
            start.wait()
            for _ in range(3):
                c.post(
                    "/v1/reservations",
                    json={
                        "channel": "web",
                        "lines": [{"node_id": node, "sku": sku, "quantity": 1}],
                    },
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                )

    def resource() -> None:
        with httpx.Client(base_url=server.base_url, headers=server.auth_headers, timeout=30) as c:
            start.wait()
            response = c.post("/v1/reservations/reoptimise", json={})
            assert response.status_code == 200, response.text
            outcomes.append(response.json()["outcome"])

    threads = [threading.Thread(target=resource)] + [
        threading.Thread(target=grab, args=key)
        for key in (("CHI", "A"), ("CHI", "B"), ("DAL", "A"), ("DAL", "A"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes
    assert outcomes[0] in {"moved", "skipped", "unchanged", "no_plan"}
    for key, (held, on_hand) in _held(client).items():
        assert held <= on_hand, key
