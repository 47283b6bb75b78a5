"""The stock endpoints of the service (in process): status codes, problem documents, fields."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from promise.app import create_app
from promise.settings import Settings
from promise.stock import StockSettings
from tests.auth import authorized_client
from tests.stock.stock_cases import FakeClock, network

PROBLEM = "application/problem+json"


@pytest.fixture
def client(
    tmp_path: Path, store_settings: StockSettings, clock: FakeClock
) -> Iterator[TestClient[Any]]:
    """The service on the test network, once ready (solver warm, network loaded)."""
    app = create_app(
        Settings(data_dir=tmp_path),
        initial_snapshot=network,
        stock_settings=store_settings,
        clock=clock,
    )
    with authorized_client(app) as test_client:
        deadline = time.monotonic() + 30
        while test_client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the service did not get ready"
            time.sleep(0.01)
        yield test_client


def hold(client: TestClient[Any], key: str, quantity: int, sku: str = "A") -> Any:
    """POST a one-line web hold at DC1."""
    body = {"lines": [{"node_id": "DC1", "sku": sku, "quantity": quantity}], "channel": "web"}
    return client.post("/v1/reservations", json=body, headers={"Idempotency-Key": key})


def test_events_answer_each_outcome(client: TestClient[Any]) -> None:
    """A batch answers applied, duplicate, stale and rejected in order, with the version."""
    events = [
        {"event_id": "c", "type": "count", "quantity": 4, "seq": 5},
        {"event_id": "c", "type": "count", "quantity": 4, "seq": 5},
        {"event_id": "s", "type": "sale", "quantity": 1, "seq": 2},
        {"event_id": "x", "type": "receipt", "quantity": 1, "seq": 6, "sku": "NOPE"},
    ]
    base = {"node_id": "DC1", "sku": "A", "occurred_at": "2026-11-30T15:00:00Z"}
    response = client.post("/v1/inventory/events", json={"events": [base | e for e in events]})
    assert response.status_code == 200
    answer = response.json()
    assert [r["outcome"] for r in answer["results"]] == [
        "applied",
        "duplicate",
        "stale",
        "rejected",
    ]
    assert (answer["applied"], answer["duplicate"], answer["stale"], answer["rejected"]) == (
        1,
        1,
        1,
        1,
    )
    assert answer["state_version"] >= 1
    recorded = client.get("/v1/inventory/events/s").json()
    assert recorded["outcome"] == "stale"
    position = client.get("/v1/inventory/positions", params={"node_id": "DC1", "sku": "A"})
    assert position.json()["on_hand"] == 4


def test_bad_events_are_422_with_field_paths(client: TestClient[Any]) -> None:
    """Malformed events are refused whole, naming the event and field at fault."""
    event = {
        "event_id": "e",
        "node_id": "DC1",
        "sku": "A",
        "type": "in_transit",
        "quantity": 3,
        "seq": 1,
        "occurred_at": "2026-11-30T15:00:00Z",
    }
    response = client.post("/v1/inventory/events", json={"events": [event]})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["errors"][0]["loc"][:2] == ["events", 0]
    missing = client.post("/v1/inventory/events", json={"events": [{"event_id": "e"}]})
    assert missing.status_code == 422
    assert ["events", 0, "node_id"] in [e["loc"] for e in missing.json()["errors"]]


def test_reservation_life_cycle_over_http(client: TestClient[Any], clock: FakeClock) -> None:
    """201 hold, same-key replay, 409 shortfall, confirm, release, 404 and 409 transitions."""
    created = hold(client, "k1", 6)
    assert created.status_code == 201
    reservation = created.json()
    assert created.headers["idempotent-replayed"] == "false"
    replay = hold(client, "k1", 6)
    assert (replay.status_code, replay.content) == (201, created.content)
    assert replay.headers["idempotent-replayed"] == "true"
    refused = hold(client, "k2", 5)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["shortfalls"][0]["available"] == 4
    rid = reservation["reservation_id"]
    assert client.post(f"/v1/reservations/{rid}/confirm").json()["status"] == "confirmed"
    assert client.post(f"/v1/reservations/{rid}/release").json()["status"] == "released"
    conflict = client.post(f"/v1/reservations/{rid}/confirm")
    assert conflict.status_code == 409
    assert conflict.json()["type"].endswith("reservation-conflict")
    missing = client.get("/v1/reservations/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)
    expiring = hold(client, "k3", 1).json()["reservation_id"]
    clock.advance(3600)
    assert client.get(f"/v1/reservations/{expiring}").json()["status"] == "expired"


def test_reservation_requests_are_validated(client: TestClient[Any]) -> None:
    """No key, a reused key, both sources or an unknown node: 422 naming where."""
    body = {"lines": [{"node_id": "DC1", "sku": "A", "quantity": 1}], "channel": "web"}
    no_key = client.post("/v1/reservations", json=body)
    assert no_key.status_code == 422
    assert hold(client, "k", 1).status_code == 201
    reused = hold(client, "k", 2)
    assert reused.status_code == 422
    assert reused.json()["errors"][0]["source"] == "header"
    assert "different request body" in reused.json()["detail"]
    both = client.post(
        "/v1/reservations",
        json={**body, "promise_id": "4b0c3a9e-4a55-4d7a-9f57-7d8d1b0f3c11"},
        headers={"Idempotency-Key": "b"},
    )
    assert both.status_code == 422
    unknown = {"lines": [{"node_id": "XX", "sku": "A", "quantity": 1}], "channel": "web"}
    nowhere = client.post("/v1/reservations", json=unknown, headers={"Idempotency-Key": "u"})
    assert nowhere.status_code == 422
    assert nowhere.json()["errors"][0]["loc"] == ["lines", 0, "node_id"]
    forgotten = client.post(
        "/v1/reservations",
        json={"promise_id": "4b0c3a9e-4a55-4d7a-9f57-7d8d1b0f3c11"},
        headers={"Idempotency-Key": "p"},
    )
    assert forgotten.status_code == 422
    assert forgotten.json()["errors"][0]["loc"] == ["promise_id"]


def test_the_schema_documents_the_stock_routes(client: TestClient[Any]) -> None:
    """OpenAPI lists the routes with their problem answers."""
    schema = client.get("/schema/openapi.json").json()
    create = schema["paths"]["/v1/reservations"]["post"]
    assert {"201", "409", "422"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "404" in schema["paths"]["/v1/reservations/{reservation_id}"]["get"]["responses"]
