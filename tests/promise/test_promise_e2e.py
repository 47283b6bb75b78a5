"""End-to-end: a real `promise serve` process with two workers, called over HTTP."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest

import scenarios
import solver
from models import PromiseRequest, Snapshot
from solver.checker import Reference, check
from tests.launcher import ServerProcess
from tests.promise.promise_helpers import (
    E2E_MAX_BODY_BYTES,
    E2E_MAX_CART_LINES,
    E2E_MAX_TIME_BUDGET_MS,
    TINY_SKU,
    metric_value,
    result_of,
    shipping_nodes,
    tiny_body,
    tiny_snapshot,
)

PROBLEM = "application/problem+json"
# Enough fresh connections that the kernel hands some to each of the two workers.
MAX_CONNECTIONS_TO_REACH_BOTH = 200


def _demo_bodies(snapshot: Snapshot, count: int) -> list[dict[str, Any]]:
    """Realistic carts of the demo network as JSON bodies."""
    carts = scenarios.generate_carts(snapshot, count=count, seed=11)
    return [cart.model_dump(mode="json", exclude_none=True) for cart in carts]


def _fresh_post(server: ServerProcess, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST on a new connection, so successive calls spread over the workers."""
    with httpx.Client(
        base_url=server.base_url, headers=server.auth_headers, timeout=10.0
    ) as client:
        return client.post(path, json=body)


def test_promise_on_demo_network_passes_the_checker(
    demo_client: httpx.Client, demo_snapshot: Snapshot
) -> None:
    """Realistic carts get answers with shipments that the independent checker accepts."""
    bodies = [b for b in _demo_bodies(demo_snapshot, 12) if len(b["cart"]["lines"]) <= 5][:6]
    shipped = 0
    reference = Reference.of(demo_snapshot)
    for body in bodies:
        response = demo_client.post("/v1/promise", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        uuid.UUID(answer["promise_id"])
        assert answer["snapshot_version"] == demo_snapshot.version
        report = check(result_of(answer), PromiseRequest.model_validate(body), reference)
        assert report.ok, report.violations
        shipped += bool(shipping_nodes(answer))
    assert shipped >= len(bodies) // 2


def test_inline_snapshot_is_used_instead_of_the_live_one(demo_client: httpx.Client) -> None:
    """A body with its own snapshot is solved on it: the stocked tiny node ships."""
    snapshot = tiny_snapshot("tiny-v2")
    body = {**tiny_body(), "snapshot": snapshot.model_dump(mode="json")}
    response = demo_client.post("/v1/promise", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["snapshot_version"] == "tiny-v2"
    assert shipping_nodes(answer) == {"DAL"}
    request = PromiseRequest.model_validate(tiny_body())
    assert check(result_of(answer), request, snapshot).ok


def test_availability_matches_the_library(
    demo_client: httpx.Client, demo_snapshot: Snapshot
) -> None:
    """GET /v1/availability reports what solver.availability computes, unknown SKUs flagged."""
    known = demo_snapshot.items[0].sku
    response = demo_client.get(
        "/v1/availability", params={"sku": [known, "NO-SUCH-SKU"], "channel": "web"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    # The server reports live stock: the snapshot's rows, since no event has changed them.
    live = solver.prepare(demo_snapshot).with_inventory(solver.Inventory.of(demo_snapshot))
    expected = solver.availability(live, [known, "NO-SUCH-SKU"], "web")
    assert report == json.loads(expected.model_dump_json())
    assert [s["known"] for s in report["skus"]] == [True, False]


def test_unknown_sku_is_an_unfulfilled_line_not_an_error(
    demo_client: httpx.Client, demo_snapshot: Snapshot
) -> None:
    """An unknown SKU comes back unfulfilled with its reason, with a 200."""
    body = _demo_bodies(demo_snapshot, 1)[0]
    body["cart"]["lines"] = [
        {"line_id": "ghost", "sku": "NO-SUCH-SKU", "quantity": 1, "unit_price": 100}
    ]
    response = demo_client.post("/v1/promise", json=body)
    assert response.status_code == 200, response.text
    reasons = {
        (u["line_id"], u["reason"]) for o in response.json()["options"] for u in o["unfulfilled"]
    }
    assert reasons == {("ghost", "unknown_sku")}


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert a problem document with ``status`` and return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    return problem


def test_malformed_json_is_400(demo_client: httpx.Client) -> None:
    """A body that is not JSON is a 400 problem."""
    response = demo_client.post(
        "/v1/promise", content=b'{"cart": ', headers={"content-type": "application/json"}
    )
    _problem(response, 400)


def test_invalid_field_is_422_with_its_path(demo_client: httpx.Client) -> None:
    """A zero quantity is a 422 naming cart.lines.0.quantity."""
    body = tiny_body(quantity=0)
    problem = _problem(demo_client.post("/v1/promise", json=body), 422)
    paths = [error["loc"] for error in problem["errors"]]
    assert ["cart", "lines", 0, "quantity"] in paths
    assert "cart.lines.0.quantity" in [error["field"] for error in problem["errors"]]


def test_body_over_the_limit_is_413(demo_client: httpx.Client) -> None:
    """A body larger than the configured maximum is refused with 413."""
    body = tiny_body()
    body["cart"]["cart_id"] = "x" * 10
    padding = " " * (E2E_MAX_BODY_BYTES + 1)
    response = demo_client.post(
        "/v1/promise",
        content=json.dumps(body).encode() + padding.encode(),
        headers={"content-type": "application/json"},
    )
    _problem(response, 413)


def test_cart_over_the_line_limit_is_422(demo_client: httpx.Client) -> None:
    """A cart with more lines than the configured maximum is a 422 on cart.lines."""
    body = tiny_body()
    body["cart"]["lines"] = [
        {"line_id": f"l{i}", "sku": TINY_SKU, "quantity": 1} for i in range(E2E_MAX_CART_LINES + 1)
    ]
    problem = _problem(demo_client.post("/v1/promise", json=body), 422)
    assert problem["errors"][0]["loc"] == ["cart", "lines"]


def test_time_budget_over_the_maximum_is_422(demo_client: httpx.Client) -> None:
    """time_budget_ms above the configured maximum is a 422 on that field."""
    body = {**tiny_body(), "time_budget_ms": E2E_MAX_TIME_BUDGET_MS + 1}
    problem = _problem(demo_client.post("/v1/promise", json=body), 422)
    assert problem["errors"][0]["loc"] == ["time_budget_ms"]


def test_unknown_postal_code_is_422(demo_client: httpx.Client) -> None:
    """A postal code missing from the dataset is a 422 on destination.postal_code."""
    body = {**tiny_body(), "destination": {"postal_code": "00000", "country": "US"}}
    problem = _problem(demo_client.post("/v1/promise", json=body), 422)
    assert problem["type"].endswith("unknown-postal-code")
    assert problem["errors"][0]["loc"] == ["destination", "postal_code"]


def test_unknown_channel_is_422(demo_client: httpx.Client) -> None:
    """A channel without a policy is a 422 on cart.channel."""
    body = tiny_body()
    body["cart"]["channel"] = "carrier-pigeon"
    problem = _problem(demo_client.post("/v1/promise", json=body), 422)
    assert problem["errors"][0]["loc"] == ["cart", "channel"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/nothing-here", 404),  # unknown route
        ("DELETE", "/v1/promise", 405),  # known route, wrong method
    ],
)
def test_routing_errors_are_problems(
    demo_client: httpx.Client, method: str, path: str, status: int
) -> None:
    """Unknown routes and wrong methods answer problem documents too."""
    _problem(demo_client.request(method, path), status)


def test_request_id_is_echoed_or_generated(demo_client: httpx.Client) -> None:
    """An incoming X-Request-ID comes back; without one the service makes one up."""
    echoed = demo_client.get("/healthz", headers={"X-Request-ID": "checkout-42"})
    assert echoed.headers["x-request-id"] == "checkout-42"
    generated = demo_client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    problem = _problem(demo_client.get("/nope", headers={"X-Request-ID": "trace-7"}), 404)
    assert problem["request_id"] == "trace-7"


def test_ready_after_warm_up(demo_client: httpx.Client, demo_snapshot: Snapshot) -> None:
    """Once started, /readyz says ready with the demo snapshot and /healthz is up."""
    ready = demo_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["snapshot_version"] == demo_snapshot.version
    assert demo_client.get("/healthz").json()["status"] == "ok"


def test_snapshot_counts(demo_client: httpx.Client, demo_snapshot: Snapshot) -> None:
    """GET /v1/snapshot reports the live version and its counts."""
    info = demo_client.get("/v1/snapshot").json()
    assert info["version"] == demo_snapshot.version
    assert info["nodes"] == len(demo_snapshot.nodes)
    assert info["inventory_rows"] == demo_snapshot.row_count
    assert info["policies"] == len(demo_snapshot.policies)


def test_metrics_count_requests_of_every_worker(
    demo_server: ServerProcess, demo_client: httpx.Client
) -> None:
    """Promises served by both workers all show up in /metrics, whichever worker answers."""
    labels = {"route": "/v1/promise", "method": "POST", "status": "200"}
    before = demo_client.get("/metrics").text
    pids: set[str] = set()
    sent = 0
    while len(pids) < 2 and sent < MAX_CONNECTIONS_TO_REACH_BOTH:
        response = _fresh_post(demo_server, "/v1/promise", tiny_body())
        assert response.status_code == 200
        pids.add(response.headers["x-worker-pid"])
        sent += 1
    assert len(pids) == 2
    after = demo_client.get("/metrics").text
    delta = metric_value(after, "promise_http_requests_total", **labels) - metric_value(
        before, "promise_http_requests_total", **labels
    )
    assert delta == sent
    solves = metric_value(after, "promise_solves_total") - metric_value(
        before, "promise_solves_total"
    )
    assert solves == sent
    assert "promise_http_request_duration_seconds_bucket" in after
    assert "promise_solve_fallbacks_total" in after


def test_openapi_and_docs_are_published(demo_client: httpx.Client) -> None:
    """The OpenAPI document lists the API and an interactive docs page is served."""
    schema = demo_client.get("/schema/openapi.json").json()
    assert {"/v1/promise", "/v1/availability", "/v1/snapshot", "/readyz"} <= set(schema["paths"])
    page = demo_client.get("/schema/swagger")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]


def test_metrics_and_docs_are_open_to_an_open_network(demo_server: ServerProcess) -> None:
    """The demo server opens 127.0.0.1/32: metrics and docs answer there without a key."""
    with httpx.Client(base_url=demo_server.base_url, timeout=10.0) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/schema/openapi.json").status_code == 200
        # Only those: everything else still needs a credential from an open network too.
        assert client.get("/v1/snapshot").status_code == 401
