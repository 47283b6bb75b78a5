"""Bodies that are too large or amplify: refused before decoding, or validated in bounded memory.

The in-process app checks statuses and problem documents; the real server (``demo_server``)
checks a worker's resident memory around the worst bodies (docs/limits.md).
"""

from __future__ import annotations

import functools
import gc
import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import msgspec
import pydantic
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from litestar.types import Receive, Scope, Send

import scenarios
from bench.hostile_http import Body, Http
from models import Snapshot
from promise import body_limits
from promise.access.principal import Scope as Role
from promise.app import create_app
from promise.body_limits import ERRORS_MIB, MIB, BodyCost, one_body_at_a_time
from promise.errors import ServiceUnavailableError
from promise.schemas import PromiseBody
from promise.settings import Settings
from promise.stock.schemas import EventBatch
from tests.auth import authorized_client
from tests.launcher import ServerProcess, rss_kib
from tests.promise.promise_helpers import (
    problem_fields,
    problem_of,
    tiny_app_client,
    tiny_body,
    tiny_snapshot,
)

# Small budgets keep the bodies of the status tests small.
BODY_MIB = 8
SNAPSHOT_MIB = 16
JSON = {"Content-Type": "application/json", "Idempotency-Key": "k1"}
BODY_ROUTES = [
    ("POST", "/v1/promise", BODY_MIB),
    ("POST", "/v1/promise/validate", BODY_MIB),
    ("POST", "/v1/inventory/events", BODY_MIB),
    ("POST", "/v1/reservations", BODY_MIB),
    ("PUT", "/v1/snapshot", SNAPSHOT_MIB),
]
# A refusal or a 4xx of a bounded body comes at once; this leaves room for a loaded machine.
QUICK_S = 5.0


def _objects(count: int, key: str = "nodes") -> bytes:
    """A body of ``count`` empty objects in one list."""
    return b'{"%b":[' % key.encode() + b",".join([b"{}"] * count) + b"]}"


def _objects_over(budget_mib: int, *, over: bool) -> bytes:
    """Empty objects whose pre-scan bound lies just over (or under) ``budget_mib``."""
    per_object = BodyCost.of(_objects(2)).bound - BodyCost.of(_objects(1)).bound
    count = (budget_mib * MIB) // per_object + (1 if over else -1)
    body = _objects(count)
    assert (BodyCost.of(body).bound > budget_mib * MIB) == over
    return body


@pytest.fixture
def inline_client(data_dir: Path) -> Iterator[TestClient[Litestar]]:
    """An in-process app with inline snapshots on and the default limits."""
    with tiny_app_client(data_dir, inline_snapshots=True) as client:
        yield client


@pytest.fixture
def small_budget_client(data_dir: Path) -> Iterator[TestClient[Litestar]]:
    """An in-process app whose memory budgets are small."""
    with tiny_app_client(
        data_dir, max_body_memory_mib=BODY_MIB, max_snapshot_memory_mib=SNAPSHOT_MIB
    ) as client:
        yield client


# --- the pre-scan -----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "budget"), BODY_ROUTES)
def test_every_body_route_refuses_a_costly_body_with_413(
    small_budget_client: TestClient[Litestar], method: str, path: str, budget: int
) -> None:
    """Just over a route's memory budget is a 413 problem naming the budget, on every route."""
    response = small_budget_client.request(
        method, path, content=_objects_over(budget, over=True), headers=JSON
    )
    problem = problem_of(response, 413)
    assert f"this route accepts {budget} MiB" in problem["detail"]


@pytest.mark.parametrize(("method", "path", "budget"), BODY_ROUTES)
def test_a_body_within_the_budget_is_decoded_and_validated(
    small_budget_client: TestClient[Litestar], method: str, path: str, budget: int
) -> None:
    """Just under the budget the body reaches validation: a 422 about its fields, not a 413."""
    response = small_budget_client.request(
        method, path, content=_objects_over(budget, over=False), headers=JSON
    )
    assert problem_of(response, 422)["type"].endswith("validation-failed")


def test_the_pre_scan_refuses_before_decoding(small_budget_client: TestClient[Litestar]) -> None:
    """A costly body that is not even valid JSON is a 413: the bytes were never decoded."""
    body = b"[" + b"{}," * (BODY_MIB * MIB // 1000)
    response = small_budget_client.post("/v1/promise", content=body, headers=JSON)
    assert problem_of(response, 413)["status"] == 413


def test_the_budgets_are_settings() -> None:
    """Both budgets and the snapshot byte limit come from PROMISE_* variables."""
    settings = Settings.from_env(
        {
            "PROMISE_MAX_BODY_MEMORY_MIB": "32",
            "PROMISE_MAX_SNAPSHOT_MEMORY_MIB": "512",
            "PROMISE_MAX_SNAPSHOT_BYTES": str(16 * MIB),
        }
    )
    assert (settings.max_body_memory_mib, settings.max_snapshot_memory_mib) == (32, 512)
    assert settings.max_snapshot_bytes == 16 * MIB
    assert Settings().max_snapshot_bytes == 64 * MIB


def test_the_defaults_admit_a_large_real_network(demo_snapshot: Snapshot) -> None:
    """The demo network, and a 2,000-node × 5,000-SKU columnar one, fit the default limits."""
    settings = Settings()
    demo = demo_snapshot.model_dump_json().encode()
    assert len(demo) <= settings.max_snapshot_bytes
    assert BodyCost.of(demo).bound <= settings.max_snapshot_memory_mib * MIB
    # 1,000 nodes is the generator's largest; rows grow with nodes, so 2,000 doubles it.
    large = scenarios.generate_network(nodes=1000, skus=5000, columnar=True)
    body = large.model_dump_json().encode()
    assert 2 * len(body) <= settings.max_snapshot_bytes
    assert 2 * BodyCost.of(body).bound <= settings.max_snapshot_memory_mib * MIB


AMPLIFYING: dict[str, tuple[type[pydantic.BaseModel], bytes]] = {
    # Decoded dicts in a list of models, stopped at the first one.
    "empty nodes": (Snapshot, _objects(100_000)),
    # Valid rows: one model instance each, the heaviest per byte.
    "valid rows": (
        Snapshot,
        b'{"inventory":['
        + b",".join(b'{"node_id":"n","sku":"S%d","on_hand":1}' % i for i in range(30_000))
        + b"]}",
    ),
    # Short strings in columns.
    "id column": (
        Snapshot,
        b'{"inventory_table":{"node_id":['
        + b",".join(b'"n%d"' % i for i in range(150_000))
        + b"]}}",
    ),
    # One object of many unknown keys.
    "unknown keys": (
        PromiseBody,
        b'{"cart":{' + b",".join(b'"k%d":0' % i for i in range(100_000)) + b"}}",
    ),
    # Arrays in arrays.
    "nested arrays": (Snapshot, b'{"nodes":[' + b",".join([b"[[[[0]]]]"] * 60_000) + b"]}"),
    # A string of characters outside Latin-1: four bytes each once decoded.
    "wide string": (Snapshot, json.dumps({"version": "😀" + "x" * 500_000}).encode()),
    # Many empty events: the batch stops at the first.
    "empty events": (EventBatch, _objects(5000, "events")),
}


@pytest.mark.parametrize("shape", sorted(AMPLIFYING))
def test_the_bound_covers_decoding_and_validation(shape: str) -> None:
    """Decoding and validating each amplifying shape allocates less than its pre-scan bound."""
    model, body = AMPLIFYING[shape]
    gc.collect()
    tracemalloc.start()
    try:
        data = msgspec.json.decode(body)
        with pytest.raises(pydantic.ValidationError) as caught:
            model.model_validate(data, strict=False)
        # What Litestar builds from the error for the 422.
        caught.value.errors(include_input=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The body's own bytes (kept as received and joined) are part of the bound too.
    assert peak + 2 * len(body) <= BodyCost.of(body).bound, f"{peak / MIB:.1f} MiB"


# --- bounded field errors ---------------------------------------------------------------------


def _errors_total(response: httpx.Response) -> int:
    """The errors_total of a 422 problem."""
    total: int = problem_of(response, 422)["errors_total"]
    return total


def _capacities(nodes: int) -> dict[str, Any]:
    """A snapshot whose one service has a bad capacity for each of ``nodes`` nodes, twice."""
    service = {
        "service_id": "s",
        "service_level": "ground",
        "transit_days": [1] * 8,
        "rates": [{"base": 1, "per_kg": 1}] * 8,
        "daily_capacity_by_node": {f"n{i}": -1 for i in range(nodes)},
        "remaining_capacity": {f"n{i}": {"2026-12-01": -1} for i in range(nodes)},
    }
    return {"services": [service]}


FLOODS: dict[str, tuple[str, str, Callable[[], Any]]] = {
    "empty nodes": ("PUT", "/v1/snapshot", lambda: {"nodes": [{}] * 100_000}),
    "bad rows": ("PUT", "/v1/snapshot", lambda: {"inventory": [{"on_hand": -1}] * 100_000}),
    "bad capacities": ("PUT", "/v1/snapshot", lambda: _capacities(20_000)),
    "empty events": ("POST", "/v1/inventory/events", lambda: {"events": [{}] * 5000}),
    "unknown keys": (
        "POST",
        "/v1/promise",
        lambda: {**tiny_body(), "destination": {f"k{i}": 0 for i in range(100_000)}},
    ),
}


@pytest.mark.parametrize("flood", sorted(FLOODS))
def test_a_flood_of_invalid_items_makes_few_errors(
    app_client: TestClient[Litestar], flood: str
) -> None:
    """Lists stop at their first bad item and objects report one bad entry: few errors, fast."""
    method, path, body = FLOODS[flood]
    started = time.monotonic()
    response = app_client.request(method, path, content=json.dumps(body()), headers=JSON)
    assert time.monotonic() - started < QUICK_S
    assert _errors_total(response) <= 20


def test_an_object_of_unknown_keys_is_one_error(app_client: TestClient[Litestar]) -> None:
    """100,000 unknown keys are one extra_forbidden error naming a few of them and the count."""
    body = {**tiny_body(), "destination": {f"k{i}": 0 for i in range(100_000)}}
    problem = problem_of(app_client.post("/v1/promise", json=body), 422)
    assert problem["errors_total"] == 1
    error = problem["errors"][0]
    assert (error["field"], error["type"]) == ("destination", "extra_forbidden")
    assert "100000 unknown fields" in error["message"]
    assert "'k0'" in error["message"]


def test_a_cart_still_lists_every_bad_line(app_client: TestClient[Litestar]) -> None:
    """A cart (at most 500 lines) keeps counting every line's errors: the bound is small."""
    body = tiny_body()
    body["cart"]["lines"] = [{}] * 20
    assert _errors_total(app_client.post("/v1/promise", json=body)) >= 60


# --- inline snapshots -------------------------------------------------------------------------


def _inline(snapshot: object) -> dict[str, Any]:
    """The tiny promise body with ``snapshot`` inline."""
    return {**tiny_body(), "snapshot": snapshot}


@pytest.mark.parametrize(
    ("snapshot", "field"),
    [
        # Invalid nodes: a 422 about the limit, not about them, shows validation never ran.
        ({"nodes": [{}] * 501}, "snapshot.nodes"),
        ({"inventory_table": {"node_id": ["n"] * 100_001}}, "snapshot"),
        ({"inventory": [{}] * 100_001}, "snapshot"),
    ],
)
def test_an_inline_snapshot_over_a_limit_is_refused_before_validation(
    inline_client: TestClient[Litestar], snapshot: dict[str, Any], field: str
) -> None:
    """Over the node or row limit, an inline snapshot is a 422 naming it, before validation."""
    started = time.monotonic()
    response = inline_client.post("/v1/promise", json=_inline(snapshot))
    assert time.monotonic() - started < QUICK_S
    problem = problem_of(response, 422)
    assert problem["type"].endswith("request-limit")
    assert problem_fields(problem) == {field}


def test_an_inline_snapshot_is_refused_unvalidated_for_a_caller_without_admin(
    data_dir: Path,
) -> None:
    """Inline snapshots off and no admin role: even a malformed one is the 422 saying so."""
    app = create_app(
        Settings.from_env({}, data_dir=data_dir),
        initial_snapshot=lambda: tiny_snapshot("tiny-v1"),
    )
    with authorized_client(app, Role.PROMISE) as client:
        problem = problem_of(client.post("/v1/promise", json=_inline({"nodes": 5})), 422)
    assert "PROMISE_INLINE_SNAPSHOTS" in problem["detail"]
    assert problem_fields(problem) == {"snapshot"}


# --- a real worker's memory -------------------------------------------------------------------


def _reset_peaks(pids: list[int]) -> None:
    """Reset each worker's peak resident memory (VmHWM) to its current resident memory."""
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _peak_growth_mib(server: ServerProcess, send: Callable[[], httpx.Response]) -> float:
    """Send, and return the largest VmHWM growth over VmRSS before, among the workers."""
    pids = sorted(server.worker_pids)
    _reset_peaks(pids)
    before = {pid: rss_kib(pid)["VmRSS"] for pid in pids}
    response = send()
    assert response.status_code in (413, 422), response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    return max(rss_kib(pid)["VmHWM"] - before[pid] for pid in pids) / 1024


@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc/PID/clear_refs"
)
def test_the_worst_bodies_stay_under_the_ceiling_on_a_real_server(
    demo_server: ServerProcess, demo_client: httpx.Client
) -> None:
    """32 MiB of {} (22.7 GB before) and {} just under the budget: growth under the budget."""
    settings = Settings()
    budget = settings.max_snapshot_memory_mib + ERRORS_MIB
    flood = b'{"nodes":[' + b",".join([b"{}"] * (32 * MIB // 3)) + b"]}"
    admitted = _objects_over(settings.max_snapshot_memory_mib, over=False)
    for body, limit_mib in ((flood, 4 * len(flood) / MIB), (admitted, budget)):
        started = time.monotonic()
        send = functools.partial(
            demo_client.put, "/v1/snapshot", content=body, headers=JSON, timeout=60
        )
        growth = _peak_growth_mib(demo_server, send)
        assert time.monotonic() - started < QUICK_S
        assert growth < limit_mib, f"{growth:.0f} MiB"
    # Both workers still answer at once.
    assert demo_client.get("/healthz").status_code == 200


def test_an_oversized_request_head_is_refused_on_a_real_server(demo_server: ServerProcess) -> None:
    """A 1 MiB and a 64 MiB header are a 431 problem at once (a 64 MiB one was 200 in 6 s)."""
    http = Http(demo_server.base_url, demo_server.api_key)
    for padding in (MIB, 64 * MIB):
        answer = http.send("POST", "/v1/promise/validate", Body.of(b"{}"), head_padding=padding)
        assert answer.status == 431
        assert answer.content_type == "application/problem+json"
        assert answer.seconds < QUICK_S
    # A head within the limit still reaches the app.
    answer = http.send("POST", "/v1/promise/validate", Body.of(b"{}"), head_padding=8 * 1024)
    assert answer.status == 422


# --- one upload at a time -------------------------------------------------------------------


def _most_at_once(method: str, requests: int, hold_s: float) -> int:
    """How many of ``requests`` concurrent ``method`` requests a one-at-a-time route ran at once."""
    running = most = 0

    async def app(_scope: Scope, _receive: Receive, _send: Send) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(hold_s)
        running -= 1

    route = one_body_at_a_time(app)
    scope = cast("Scope", {"type": "http", "method": method})

    async def request() -> None:
        await route(scope, _no_receive, _no_send)

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            for _ in range(requests):
                tasks.start_soon(request)

    anyio.run(main)
    return most


async def _no_receive() -> Any:
    """An ASGI receive that is never called."""
    raise AssertionError


async def _no_send(_message: Any) -> None:
    """An ASGI send that is never called."""
    raise AssertionError


def test_uploads_to_a_one_at_a_time_route_never_overlap() -> None:
    """Three PUTs run one after another; three GETs (no body) run together."""
    assert _most_at_once("PUT", 3, 0.02) == 1
    assert _most_at_once("GET", 3, 0.02) == 3


def test_an_upload_that_waits_too_long_is_a_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second upload that cannot start within UPLOAD_WAIT_S answers 503 (Retry-After)."""
    monkeypatch.setattr(body_limits, "UPLOAD_WAIT_S", 0.01)
    with pytest.raises(ExceptionGroup) as caught:
        _most_at_once("PUT", 2, 0.2)
    refused = caught.value.exceptions
    assert len(refused) == 1
    assert isinstance(refused[0], ServiceUnavailableError)
    assert refused[0].retry_after_s == 1
