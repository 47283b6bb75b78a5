"""Request fields that refuse hostile values: list floods, dates out of range, booleans."""

from __future__ import annotations

import copy
import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.promise.promise_helpers import (
    TINY_SKU,
    problem_fields,
    problem_of,
    tiny_app_client,
    tiny_body,
    tiny_event,
    tiny_snapshot,
)

# --- list floods ---------------------------------------------------------------------------

# ~350,000 tiny invalid items fit in 1 MiB: the flood the list bounds must stop cheaply.
FLOOD_ITEMS = 349_000
# The unbounded code took minutes and gigabytes for the flood; this leaves room for parsing.
FLOOD_PEAK_BYTES = 150 * 1024 * 1024
FLOOD_SECONDS = 20.0
SMALL_BODY_BYTES = 64 * 1024
# A body memory budget above the flood's bound (about 400 MiB), so that validation sees it.
FLOOD_BUDGET_MIB = 1024


def _flood(app_client: TestClient[Litestar], path: str, body: bytes) -> tuple[httpx.Response, int]:
    """Post ``body`` and return the answer and the peak of traced allocations meanwhile."""
    tracemalloc.start()
    try:
        response = app_client.post(path, content=body, headers={"Content-Type": "application/json"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return response, peak


@pytest.mark.parametrize("path", ["/v1/inventory/events", "/v1/promise"])
def test_a_flood_of_invalid_items_is_refused_small_fast_and_lean(data_dir: Path, path: str) -> None:
    """Past the memory pre-scan, a 1 MiB body of ~350,000 empty items answers 422 at once, lean."""
    items = b"[" + b",".join([b"{}"] * FLOOD_ITEMS) + b"]"
    if path == "/v1/promise":
        envelope = tiny_body()
        envelope["cart"]["lines"] = "LINES"
        body = json.dumps(envelope).encode().replace(b'"LINES"', items)
    else:
        body = b'{"events": ' + items + b"}"
    assert len(body) <= 1024 * 1024
    # The default budget refuses this body before decoding (tests/promise/test_body_limits.py);
    # a budget that admits it shows the list bound stopping the flood during validation.
    with tiny_app_client(data_dir, max_body_memory_mib=FLOOD_BUDGET_MIB) as app_client:
        started = time.monotonic()
        response, peak = _flood(app_client, path, body)
        elapsed = time.monotonic() - started
    problem = problem_of(response, 422)
    assert len(response.content) < SMALL_BODY_BYTES
    assert problem["errors"][0]["type"] == "too_long"
    assert elapsed < FLOOD_SECONDS
    assert peak < FLOOD_PEAK_BYTES, f"peak {peak / 2**20:.0f} MiB"


# --- date ranges --------------------------------------------------------------------------

OUT_OF_RANGE = ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-20T00:00:00Z"]


@pytest.mark.parametrize("instant", [*OUT_OF_RANGE, "9999-12-31T23:59:59+00:00"])
def test_requested_at_out_of_range_is_422(app_client: TestClient[Litestar], instant: str) -> None:
    """A requested_at the calendar arithmetic cannot handle is a 422 naming it, not a 500."""
    body = tiny_body()
    body["requested_at"] = instant
    problem = problem_of(app_client.post("/v1/promise", json=body), 422)
    assert problem_fields(problem) == {"requested_at"}
    assert problem["errors"][0]["type"] == "date_out_of_range"


def test_requested_at_at_the_range_edge_is_answered(app_client: TestClient[Litestar]) -> None:
    """The last supported date still solves: the range leaves room for the date arithmetic."""
    body = tiny_body()
    body["requested_at"] = "2200-12-31T12:00:00Z"
    response = app_client.post("/v1/promise", json=body)
    assert response.status_code == 200, response.text[:500]


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"occurred_at": "0001-01-01T00:00:00Z"}, "events.0.occurred_at"),
        ({"occurred_at": "9999-12-31T00:00:00Z"}, "events.0.occurred_at"),
        ({"type": "in_transit", "eta": "9999-12-31"}, "events.0.eta"),
        ({"type": "in_transit", "eta": "0001-01-01"}, "events.0.eta"),
    ],
)
def test_event_dates_out_of_range_are_422(
    app_client: TestClient[Litestar], fields: dict[str, object], bad: str
) -> None:
    """Event instants and lot arrival dates outside the range are 422s naming the field."""
    response = app_client.post("/v1/inventory/events", json={"events": [tiny_event(**fields)]})
    assert bad in problem_fields(problem_of(response, 422))


@pytest.mark.parametrize("as_of", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z"])
def test_a_snapshot_as_of_out_of_range_is_422(app_client: TestClient[Litestar], as_of: str) -> None:
    """A snapshot whose as_of lies outside the range is refused before it can go live."""
    snapshot = json.loads(tiny_snapshot("tiny-v2").model_dump_json())
    snapshot["as_of"] = as_of
    assert "as_of" in problem_fields(problem_of(app_client.put("/v1/snapshot", json=snapshot), 422))
    assert app_client.get("/v1/snapshot").json()["version"] == "tiny-v1"


# --- booleans are not integers, nor integers booleans ---------------------------------------


def _with(body: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    """A deep copy of ``body`` with the value at ``path`` replaced."""
    changed = copy.deepcopy(body)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


PROMISE_CASES = [
    (("cart", "lines", 0, "quantity"), True),
    (("cart", "lines", 0, "unit_price"), False),
    (("max_shipments",), True),
    (("time_budget_ms",), True),
    (("allow_partial",), 1),
    (("allow_partial",), 0),
    (("allow_partial",), "true"),
    (("reserve",), 1),
    (("cart", "lines", 0, "quantity"), 2.5),
    (("cart", "lines", 0, "quantity"), "2"),
]


@pytest.mark.parametrize(("path", "value"), PROMISE_CASES)
def test_promise_fields_are_strict(
    app_client: TestClient[Litestar], path: tuple[str | int, ...], value: object
) -> None:
    """A boolean for an integer, or 0/1/"true" for a boolean, is a 422 naming the field."""
    body = _with(tiny_body(), path, value)
    problem = problem_of(app_client.post("/v1/promise", json=body), 422)
    assert ".".join(map(str, path)) in problem_fields(problem)


def test_an_integral_json_number_is_an_integer(app_client: TestClient[Litestar]) -> None:
    """2.0 is an integer to JSON Schema (the published document), so it is taken as 2."""
    body = _with(tiny_body(), ("cart", "lines", 0, "quantity"), 2.0)
    response = app_client.post("/v1/promise", json=body)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["options"][0]["shipments"][0]["lines"][0]["quantity"] == 2


@pytest.mark.parametrize("field", ["quantity", "seq"])
def test_event_integers_refuse_booleans(app_client: TestClient[Litestar], field: str) -> None:
    """An event's quantity or seq given true is a 422, not the number 1."""
    response = app_client.post(
        "/v1/inventory/events", json={"events": [tiny_event(**{field: True})]}
    )
    assert f"events.0.{field}" in problem_fields(problem_of(response, 422))


@pytest.mark.parametrize(("field", "path"), [("quantity", "lines.0.quantity"), ("ttl", "ttl_s")])
def test_reservation_integers_refuse_booleans(
    app_client: TestClient[Litestar], field: str, path: str
) -> None:
    """A hold's line quantity or ttl_s given true is a 422 naming the field."""
    body: dict[str, Any] = {
        "lines": [{"node_id": "CHI", "sku": TINY_SKU, "quantity": 1}],
        "channel": "web",
        "ttl_s": 60,
    }
    if field == "quantity":
        body["lines"][0]["quantity"] = True
    else:
        body["ttl_s"] = True
    response = app_client.post("/v1/reservations", json=body, headers={"Idempotency-Key": "k-bool"})
    assert path in problem_fields(problem_of(response, 422))


def test_strict_fields_still_take_plain_json(app_client: TestClient[Litestar]) -> None:
    """Integers and booleans given as JSON numbers and true/false still validate and solve."""
    body = tiny_body()
    body.update(max_shipments=2, time_budget_ms=500, allow_partial=True, reserve=False)
    response = app_client.post("/v1/promise", json=body)
    assert response.status_code == 200, response.text[:500]
    events = app_client.post("/v1/inventory/events", json={"events": [tiny_event()]})
    assert events.status_code == 200, events.text[:500]
    assert events.json()["applied"] == 1
