"""The time budget covers the request: a promise that waited past it is the greedy fallback.

Over a real server with one worker and one solve slot: a what-if promise on a large inline
network holds the slot for its whole (long) budget, and checkout promises queue behind it.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import scenarios
from models import PromiseRequest, Snapshot
from solver.checker import check
from tests.launcher import ServerProcess
from tests.promise.promise_helpers import metric_value, result_of
from tests.solver.wide_network import wide_request, wide_snapshot

# The blocker's budget: long enough that the promises sent behind it surely queue.
BLOCKER_BUDGET_MS = 1_500
# A budget that outlasts the wait behind the blocker.
AMPLE_BUDGET_MS = 8_000
WAIT_S = 30.0
POLL_S = 0.02


@pytest.fixture(scope="module")
def one_slot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`promise serve --workers 1` on the demo network: one solve slot for every request."""
    env = {
        "PROMISE_MAX_CONCURRENT_SOLVES": "1",
        "PROMISE_MAX_TIME_BUDGET_MS": str(AMPLE_BUDGET_MS),
        "PROMISE_MAX_INLINE_SNAPSHOT_NODES": "1000",
        "PROMISE_MAX_BODY_BYTES": str(8 * 1024 * 1024),
    }
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("one-slot"), workers=1, env=env)
    with server.start():
        yield server


def _blocker() -> dict[str, Any]:
    """A what-if promise on 1,000 nodes where none can ship: greedy passes use the budget."""
    snapshot = wide_snapshot(copies=1, skus=5)
    request = wide_request(snapshot, lines=5, time_budget_ms=BLOCKER_BUDGET_MS)
    body: dict[str, Any] = request.model_dump(mode="json", exclude_none=True)
    body["snapshot"] = snapshot.model_dump(mode="json", exclude_none=True)
    return body


def _post(server: ServerProcess, body: dict[str, Any]) -> httpx.Response:
    """POST a promise on a connection of its own."""
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers, timeout=60) as c:
        return c.post("/v1/promise", json=body)


def _wait_for_a_queued_solve(server: ServerProcess) -> None:
    """Poll the worker's solve-queue gauge until the blocker holds the slot."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        status, text = server.fetch("/metrics")
        if status == 200 and metric_value(text.decode(), "promise_solve_queue") >= 1:
            return
        time.sleep(POLL_S)
    raise AssertionError("the blocking promise never reached the solver")


def test_promises_that_waited_past_their_budget_are_the_flagged_greedy_fallback(
    one_slot_server: ServerProcess,
) -> None:
    """Queued behind a 1.5 s solve, 50 ms promises answer the checked fallback; 8 s ones solve."""
    snapshot: Snapshot = scenarios.demo_snapshot()
    carts = [c for c in scenarios.generate_carts(snapshot, count=30, seed=3) if c.cart.lines]
    late = [c.model_dump(mode="json", exclude_none=True) for c in carts[:3]]
    ample = carts[3].model_copy(update={"time_budget_ms": AMPLE_BUDGET_MS})
    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
        blocker = pool.submit(_post, one_slot_server, _blocker())
        _wait_for_a_queued_solve(one_slot_server)
        queued = [pool.submit(_post, one_slot_server, body) for body in late]
        patient = pool.submit(
            _post, one_slot_server, ample.model_dump(mode="json", exclude_none=True)
        )
        assert blocker.result().status_code == 200, blocker.result().text
        for body, future in zip(late, queued, strict=True):
            response = future.result()
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["solver"]["status"] == "fallback"
            assert answer["solver"]["fallback"]
            assert answer["solver"]["variables"] == 0  # no model: the budget was spent
            assert all(option["fallback"] for option in answer["options"])
            request = PromiseRequest.model_validate(body)
            report = check(result_of(answer), request, snapshot)
            assert report.ok, report.violations
        solved = patient.result()
        assert solved.status_code == 200, solved.text
        assert not solved.json()["solver"]["fallback"]
