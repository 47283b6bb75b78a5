"""End-to-end snapshot swaps on a real two-worker server: atomic, and seen by every worker."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.launcher import ServerProcess
from tests.promise.promise_helpers import (
    TINY_STOCK,
    metric_value,
    shipping_nodes,
    tiny_body,
    tiny_snapshot,
)

CLIENT_THREADS = 4
PROMISES_PER_THREAD = 20
# The swapping loop stops after this many swaps even if the clients never finish.
MAX_SWAPS = 500
VERSIONS = ("tiny-v1", "tiny-v2")
MAX_CONNECTIONS_TO_REACH_BOTH = 200


def _put(client: httpx.Client, version: str) -> httpx.Response:
    """PUT the tiny snapshot of ``version``."""
    return client.put(
        "/v1/snapshot",
        content=tiny_snapshot(version).model_dump_json(),
        headers={"content-type": "application/json"},
    )


def _promises(server: ServerProcess, thread: int) -> list[dict[str, Any]]:
    """Send a fixed number of promises, each on a new connection."""
    answers: list[dict[str, Any]] = []
    for i in range(PROMISES_PER_THREAD):
        with httpx.Client(
            base_url=server.base_url, headers=server.auth_headers, timeout=10.0
        ) as client:
            response = client.post("/v1/promise", json=tiny_body(cart_id=f"swap-{thread}-{i}"))
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def _version_on_both_workers(server: ServerProcess) -> dict[str, str]:
    """Worker pid -> snapshot version of a promise it answered, for two distinct workers."""
    seen: dict[str, str] = {}
    for i in range(MAX_CONNECTIONS_TO_REACH_BOTH):
        with httpx.Client(
            base_url=server.base_url, headers=server.auth_headers, timeout=10.0
        ) as client:
            response = client.post("/v1/promise", json=tiny_body(cart_id=f"after-{i}"))
        assert response.status_code == 200, response.text
        seen[response.headers["x-worker-pid"]] = response.json()["snapshot_version"]
        if len(seen) == 2:
            break
    return seen


def test_swap_under_concurrent_promises_never_mixes(
    tiny_server: ServerProcess, tiny_client: httpx.Client
) -> None:
    """Promises racing back-to-back swaps each see one whole version; then every worker agrees."""
    before = tiny_client.get("/metrics").text
    swaps = 0
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        futures = [pool.submit(_promises, tiny_server, t) for t in range(CLIENT_THREADS)]
        while not all(f.done() for f in futures) and swaps < MAX_SWAPS:
            version = VERSIONS[swaps % 2]
            response = _put(tiny_client, version)
            assert response.status_code == 200, response.text
            assert response.json()["version"] == version
            swaps += 1
        answers = [answer for future in futures for answer in future.result()]
    assert _put(tiny_client, "tiny-v2").status_code == 200

    assert swaps >= 2
    assert {answer["snapshot_version"] for answer in answers} == set(VERSIONS)
    for answer in answers:
        # The shipping node tells which snapshot the solve really used.
        assert shipping_nodes(answer) == {TINY_STOCK[answer["snapshot_version"]]}

    seen = _version_on_both_workers(tiny_server)
    assert len(seen) == 2
    assert set(seen.values()) == {"tiny-v2"}

    # Each swap makes the other worker reload at most once, and the swapping worker never.
    after = tiny_client.get("/metrics").text
    loads = {
        how: metric_value(after, "promise_snapshot_loads_total", how=how)
        - metric_value(before, "promise_snapshot_loads_total", how=how)
        for how in ("swap", "reload")
    }
    assert loads["swap"] == swaps + 1
    assert 1 <= loads["reload"] <= loads["swap"]


def test_snapshot_get_agrees_on_every_worker_after_a_swap(
    tiny_server: ServerProcess, tiny_client: httpx.Client
) -> None:
    """After a swap returns, GET /v1/snapshot on fresh connections always names the new one."""
    swapped = _put(tiny_client, "tiny-v1")
    assert swapped.status_code == 200
    token = swapped.json()["token"]
    pids: set[str] = set()
    for _ in range(MAX_CONNECTIONS_TO_REACH_BOTH):
        with httpx.Client(
            base_url=tiny_server.base_url, headers=tiny_server.auth_headers, timeout=10.0
        ) as client:
            response = client.get("/v1/snapshot")
        assert response.json()["version"] == "tiny-v1"
        assert response.json()["token"] == token
        pids.add(response.headers["x-worker-pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2


def test_invalid_snapshot_is_refused_and_the_live_one_stays(
    tiny_client: httpx.Client,
) -> None:
    """A snapshot with inventory at an unknown node is a 422; malformed JSON a 400."""
    assert _put(tiny_client, "tiny-v2").status_code == 200
    broken = tiny_snapshot("tiny-v1").model_dump(mode="json")
    broken["version"] = "tiny-broken"
    broken["inventory"][0]["node_id"] = "NOWHERE"
    refused = tiny_client.put("/v1/snapshot", json=broken)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    malformed = tiny_client.put(
        "/v1/snapshot", content=b"{", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert tiny_client.get("/v1/snapshot").json()["version"] == "tiny-v2"
