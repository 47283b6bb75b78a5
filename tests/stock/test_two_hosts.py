"""Two hosts, one PostgreSQL authority: swaps propagate, holds never oversell, no ack is lost.

Each server runs in a network namespace of its own (a host: own loopback, own data directory,
reaching PostgreSQL over a veth link through a forwarder), or, where this machine does not
allow namespaces, as a separate process on 127.0.0.1 with its own data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from models import CatalogItem, Snapshot
from tests.launcher import ServerProcess
from tests.solver.network_cases import dc, snapshot, stock
from tests.stock.hosts import servers_on_hosts
from tests.stock.stock_cases import RawResponse, pg_schema, raw_request

SWAPS = 50
PROPAGATION_LIMIT_S = 1.0
HOLD_SKUS = [f"H{i:02d}" for i in range(20)]
HOLDS = 1000
IN_FLIGHT = HOLDS  # all at once
SWAP_AFTER = 300  # responses before the swap lands
KILL_AFTER = 600  # responses before host A is killed


def atp(second: bool, sku: str) -> int:
    """Web ATP of a hold SKU at DC1 in each version (no safety stock or DC buffer)."""
    if not second:
        return 10
    return 6 if HOLD_SKUS.index(sku) < len(HOLD_SKUS) // 2 else 14


def network(version: str, *, second: bool) -> Snapshot:
    """The two-DC network: hold SKUs at DC1 (10 each, or 6/14 in the second version).

    SKU M sits at DC1 in the first version and at DC2 in the second, so the shipping node of a
    promise for M tells which version its solve used.
    """
    rows = [stock("DC1", sku, atp(second, sku)) for sku in HOLD_SKUS]
    rows.append(stock("DC2" if second else "DC1", "M", 1000))
    base = snapshot([dc("DC1"), dc("DC2")], [])
    items = tuple(CatalogItem(sku=sku, weight_g=700, list_price=2500) for sku in (*HOLD_SKUS, "M"))
    return Snapshot(
        version=version,
        as_of=base.as_of,
        nodes=base.nodes,
        services=base.services,
        items=items,
        inventory=tuple(rows),
        policies=base.policies,
    )


@contextlib.contextmanager
def two_hosts(tmp_path: Path, dsn: str) -> Iterator[list[ServerProcess]]:
    """Servers A and B (two workers each) on two hosts sharing the PostgreSQL schema ``dsn``."""
    first = tmp_path / "v1.json"
    first.write_text(network("v1-0", second=False).model_dump_json())
    with servers_on_hosts(tmp_path, dsn, first) as (servers, in_namespaces):
        print(f"hosts: {'network namespaces' if in_namespaces else 'processes on 127.0.0.1'}")
        yield servers


@pytest.fixture
def schema_dsn(pg_dsn: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test."""
    with pg_schema(pg_dsn) as dsn:
        yield dsn


def promise_m(client: httpx.Client) -> dict[str, Any]:
    """Promise one unit of M; the answer."""
    body = {
        "cart": {
            "cart_id": "m",
            "channel": "web",
            "lines": [{"line_id": "1", "sku": "M", "quantity": 1}],
        },
        "destination": {"lat": 40.0, "lon": -75.2},
    }
    response = client.post("/v1/promise", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def shipping_node(answer: dict[str, Any]) -> str | None:
    """The node the recommended option ships M from."""
    for option in answer["options"]:
        if option["service_level"] == answer["recommended"]:
            nodes = {shipment["node_id"] for shipment in option["shipments"]}
            assert len(nodes) <= 1
            return next(iter(nodes), None)
    return None


def test_a_swap_on_one_host_is_served_by_the_other_within_a_second(
    tmp_path: Path, schema_dsn: str
) -> None:
    """Acceptance 1: 50 swaps on A; B answers with each one well within 1 s; never a mix."""
    mixed: list[str] = []
    answers = 0
    stop = threading.Event()
    with two_hosts(tmp_path, schema_dsn) as (host_a, host_b):

        def promise_loop() -> None:
            nonlocal answers
            with httpx.Client(
                base_url=host_b.base_url, headers=host_b.auth_headers, timeout=10.0
            ) as client:
                while not stop.is_set():
                    answer = promise_m(client)
                    second = answer["snapshot_version"].startswith("v2")
                    if shipping_node(answer) != ("DC2" if second else "DC1"):
                        mixed.append(answer["snapshot_version"])
                    answers += 1

        checker = threading.Thread(target=promise_loop)
        checker.start()
        delays: list[float] = []
        try:
            with httpx.Client(timeout=30.0, headers=host_a.auth_headers) as client:
                for n in range(1, SWAPS + 1):
                    version = f"v{1 + n % 2}-{n}"
                    body = network(version, second=n % 2 == 1).model_dump_json()
                    put = client.put(
                        host_a.base_url + "/v1/snapshot",
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    assert put.status_code == 200, put.text
                    assert put.json()["generation"] == n + 1
                    swapped = time.perf_counter()
                    while True:
                        seen = client.get(host_b.base_url + "/v1/snapshot").json()
                        if seen["version"] == version:
                            break
                        assert time.perf_counter() - swapped < 5 * PROPAGATION_LIMIT_S
                    delays.append(time.perf_counter() - swapped)
                    # Let B answer at least one promise on each version before the next swap.
                    seen, waited = answers, time.perf_counter()
                    while answers == seen and time.perf_counter() - waited < 5:
                        time.sleep(0.001)
        finally:
            stop.set()
            checker.join()
    delays.sort()
    p50 = statistics.median(delays)
    p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))]
    print(f"propagation over {SWAPS} swaps: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    assert max(delays) <= PROPAGATION_LIMIT_S
    assert answers >= SWAPS
    assert mixed == []


async def _storm(
    host_a: ServerProcess, host_b: ServerProcess
) -> tuple[list[tuple[str, RawResponse | None]], dict[str, int]]:
    """1,000 one-unit holds over A and B; a swap to v2 lands mid-run, then A is killed."""
    rng = random.Random(7)
    gate = asyncio.Semaphore(IN_FLIGHT)
    done = 0
    generations: dict[str, int] = {}
    swap_due, kill_due = asyncio.Event(), asyncio.Event()
    results: list[tuple[str, RawResponse | None]] = []

    async def one(i: int) -> None:
        nonlocal done
        server = host_a if i % 2 == 0 else host_b
        sku = rng.choice(HOLD_SKUS)
        body = {"lines": [{"node_id": "DC1", "sku": sku, "quantity": 1}], "channel": "web"}
        async with gate:
            try:
                response: RawResponse | None = await raw_request(
                    server,
                    "POST",
                    "/v1/reservations",
                    body,
                    headers={"Idempotency-Key": f"storm-{i}"},
                )
            except (OSError, asyncio.IncompleteReadError):
                response = None  # A was killed with this request in flight or unsent
        results.append((sku, response))
        done += 1
        if done == SWAP_AFTER:
            swap_due.set()
        if done == KILL_AFTER:
            kill_due.set()

    async def swap() -> None:
        await swap_due.wait()
        response = await raw_request(
            host_b,
            "PUT",
            "/v1/snapshot",
            network("v2-storm", second=True).model_dump(mode="json"),
        )
        assert response.status == 200, response.body
        generations["v2"] = int(response.json()["generation"])

    async def kill() -> None:
        await kill_due.wait()
        await asyncio.to_thread(host_a.kill)

    await asyncio.gather(swap(), kill(), *(one(i) for i in range(HOLDS)))
    return results, generations


def test_holds_across_two_hosts_never_oversell_through_a_swap_and_a_crash(
    tmp_path: Path, schema_dsn: str
) -> None:
    """Acceptance 2: judged under v1, at most v1's ATP; once v2 is live, at most v2's; none lost."""
    with two_hosts(tmp_path, schema_dsn) as (host_a, host_b):
        with httpx.Client(timeout=10.0, headers=host_b.auth_headers) as client:
            v1 = client.get(host_b.base_url + "/v1/snapshot").json()["generation"]
        results, generations = asyncio.run(_storm(host_a, host_b))
        acknowledged = {
            response.json()["reservation_id"]: sku
            for sku, response in results
            if response is not None and response.status == 201
        }
        statuses = [response.status for _, response in results if response is not None]
        lost = sum(1 for _, response in results if response is None)
        with httpx.Client(
            base_url=host_b.base_url, headers=host_b.auth_headers, timeout=10.0
        ) as client:
            for reservation_id, sku in acknowledged.items():
                found = client.get(f"/v1/reservations/{reservation_id}")
                assert found.status_code == 200, found.text
                assert found.json()["lines"][0]["sku"] == sku
            # B carries on: top every SKU up until B refuses, so each ends at its final limit.
            topped = 0
            for sku in HOLD_SKUS:
                for n in range(2 * max(atp(True, s) for s in HOLD_SKUS)):
                    after = client.post(
                        "/v1/reservations",
                        json={
                            "lines": [{"node_id": "DC1", "sku": sku, "quantity": 1}],
                            "channel": "web",
                        },
                        headers={"Idempotency-Key": f"top-up-{sku}-{n}"},
                    )
                    assert after.status_code in (201, 409), after.text
                    if after.status_code == 409:
                        break
                    topped += 1
    assert set(statuses) <= {201, 409}, statuses
    print(
        f"holds: {len(acknowledged)} granted, {statuses.count(409)} refused, "
        f"{lost} unanswered (A killed), {topped} topped up on B after, "
        f"generations v1={v1} v2={generations['v2']}"
    )
    with psycopg.connect(schema_dsn) as conn:
        rows = conn.execute(
            "SELECT h.hold_id, h.created_at, h.snapshot_generation, l.sku, l.quantity "
            "FROM stock_holds h JOIN stock_hold_lines l ON l.hold_id = h.hold_id "
            "ORDER BY l.sku, h.created_at"
        ).fetchall()
    stored = {row[0] for row in rows}
    assert set(acknowledged) <= stored  # nothing acknowledged is lost
    by_generation = {v1: False, generations["v2"]: True}
    held: dict[str, int] = {}
    under_v1: dict[str, int] = {}
    for _hold_id, _created, generation, sku, quantity in rows:
        held[sku] = held.get(sku, 0) + quantity
        assert generation in by_generation, generation
        # Units held when this hold was granted, this one included, never beyond the ATP of
        # the version it was judged under.
        assert held[sku] <= atp(by_generation[generation], sku), (sku, generation)
        if not by_generation[generation]:
            under_v1[sku] = under_v1.get(sku, 0) + quantity
    # After the top-up every SKU is held exactly up to what the live version allows, or more
    # only where v1 had granted more before the swap.
    assert held == {sku: max(under_v1.get(sku, 0), atp(True, sku)) for sku in HOLD_SKUS}
