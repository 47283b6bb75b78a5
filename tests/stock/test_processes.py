"""Acceptance over real processes: two servers share one store; a killed server loses nothing.

Each kind of store (embedded SQLite file, PostgreSQL schema) is shared by two ``promise serve``
processes; requests go over HTTP from this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.launcher import ServerProcess
from tests.stock.stock_cases import RawResponse, network, pg_schema, raw_request, stock_server

HOLD_ATTEMPTS = 1000
IDEMPOTENT_RETRIES = 100
TIMEOUT = httpx.Timeout(60.0)


@contextlib.contextmanager
def store_env(kind: str, root: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Environment selecting a fresh store of ``kind`` for server processes."""
    if kind == "sqlite":
        yield {"PROMISE_STOCK_PATH": str(root / "stock.sqlite3")}
        return
    dsn: str = request.getfixturevalue("pg_dsn")
    with pg_schema(dsn) as schema_dsn:
        yield {"PROMISE_DATABASE_URL": schema_dsn}


def start_all(servers: list[ServerProcess]) -> None:
    """Start servers in parallel (each waits for its own /healthz)."""
    errors: list[BaseException] = []

    def run(server: ServerProcess) -> None:
        try:
            server.start()
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServerProcess]]:
    """Two server processes sharing one store of each kind."""
    root = tmp_path_factory.mktemp(f"pair-{request.param}")
    snapshot_file = root / "snapshot.json"
    snapshot_file.write_text(network(dc_a=10, dc_b=50).model_dump_json())
    with store_env(request.param, root, request) as env:
        servers = [stock_server(root, snapshot_file, env) for _ in range(2)]
        try:
            start_all(servers)
            yield servers
        finally:
            for server in servers:
                server.stop()


def body(sku: str, quantity: int = 1) -> dict[str, Any]:
    """A one-line web hold at DC1."""
    return {"lines": [{"node_id": "DC1", "sku": sku, "quantity": quantity}], "channel": "web"}


async def position(client: httpx.AsyncClient, sku: str) -> dict[str, Any]:
    """The live position of DC1/sku for web."""
    response = await client.get("/v1/inventory/positions", params={"node_id": "DC1", "sku": sku})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_a_thousand_concurrent_holds_grant_exactly_the_ten_units(pair: list[ServerProcess]) -> None:
    """Acceptance 1: 1,000 one-unit holds at once over two processes against 10 units."""

    async def scenario() -> tuple[list[int], list[dict[str, Any]], dict[str, Any]]:
        samples: list[dict[str, Any]] = []
        done = asyncio.Event()
        where = "/v1/inventory/positions?node_id=DC1&sku=A"

        async def watch() -> None:
            # Sample the authority while the storm runs: holds never pass the 10 units.
            while not done.is_set():
                answer = await raw_request(pair[len(samples) % 2], "GET", where)
                samples.append(answer.json())
                await asyncio.sleep(0.005)

        async def attempt(i: int) -> int:
            answer = await raw_request(
                pair[i % 2],
                "POST",
                "/v1/reservations",
                body("A"),
                headers={"Idempotency-Key": f"storm-{i}"},
            )
            return answer.status

        watcher = asyncio.create_task(watch())
        codes = await asyncio.gather(*(attempt(i) for i in range(HOLD_ATTEMPTS)))
        done.set()
        await watcher
        final = (await raw_request(pair[0], "GET", where)).json()
        return list(codes), samples, final

    codes, samples, final = asyncio.run(asyncio.wait_for(scenario(), timeout=120))
    assert codes.count(201) == 10
    assert codes.count(409) == HOLD_ATTEMPTS - 10
    assert samples
    assert all(0 <= s["held"] <= 10 and s["available"] == 10 - s["held"] for s in samples)
    assert (final["on_hand"], final["held"], final["available"]) == (10, 10, 0)


def test_one_key_retried_a_hundred_times_holds_once(pair: list[ServerProcess]) -> None:
    """Acceptance 2: 100 concurrent retries of one Idempotency-Key: one hold, one answer."""

    async def scenario() -> tuple[list[RawResponse], dict[str, Any]]:
        answers = await asyncio.gather(
            *(
                raw_request(
                    pair[i % 2],
                    "POST",
                    "/v1/reservations",
                    body("B", 3),
                    # One caller retrying on both servers (a key is the caller's own).
                    headers={"Idempotency-Key": "once", **pair[0].auth_headers},
                )
                for i in range(IDEMPOTENT_RETRIES)
            )
        )
        where = "/v1/inventory/positions?node_id=DC1&sku=B"
        return list(answers), (await raw_request(pair[1], "GET", where)).json()

    answers, final = asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    assert {a.status for a in answers} == {201}
    assert len({a.body for a in answers}) == 1
    assert [a.headers["idempotent-replayed"] for a in answers].count("false") == 1
    assert final["held"] == 3


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_sigkill_keeps_every_acknowledged_event_and_hold_and_nothing_else(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Acceptance 4: kill -9 under mixed load; after a restart the store is what was answered."""
    snapshot_file = tmp_path / "snapshot.json"
    snapshot_file.write_text(network(dc_a=10_000, dc_b=0).model_dump_json())
    with store_env(kind, tmp_path, request) as env:
        server = stock_server(tmp_path, snapshot_file, env).start()
        try:
            sent, acked, holds_sent, holds_acked = asyncio.run(_load_until_killed(server))
            restarted = stock_server(tmp_path, snapshot_file, env)
            # The same caller retries after the crash: its Idempotency-Keys are its own.
            restarted.api_key = server.api_key
            with restarted.start():
                asyncio.run(_check_after_restart(restarted, sent, acked, holds_sent, holds_acked))
        finally:
            server.kill()


async def _load_until_killed(
    server: ServerProcess,
) -> tuple[list[str], set[str], dict[str, dict[str, Any]], dict[str, str]]:
    """Events (receipts of B) and holds (of A) from 8 tasks; SIGKILL once enough were answered.

    Returns every event id sent, the acknowledged ones, every hold key sent with its body, and
    acknowledged hold keys with their reservation ids.
    """
    counter = itertools.count()
    sent: list[str] = []
    acked: set[str] = set()
    holds_sent: dict[str, dict[str, Any]] = {}
    holds_acked: dict[str, str] = {}
    killed = asyncio.Event()

    async def events(client: httpx.AsyncClient) -> None:
        while not killed.is_set():
            ids = [f"ev-{next(counter)}" for _ in range(5)]
            batch = [
                {
                    "event_id": event_id,
                    "node_id": "DC1",
                    "sku": "B",
                    "type": "receipt",
                    "quantity": 1,
                    "seq": int(event_id.split("-")[1]),
                    "occurred_at": "2026-11-30T15:00:00Z",
                }
                for event_id in ids
            ]
            sent.extend(ids)
            try:
                response = await client.post("/v1/inventory/events", json={"events": batch})
            except httpx.HTTPError:
                return
            assert response.status_code == 200, response.text
            acked.update(ids)

    async def holds(client: httpx.AsyncClient) -> None:
        while not killed.is_set():
            key = f"hold-{next(counter)}"
            holds_sent[key] = body("A")
            try:
                response = await client.post(
                    "/v1/reservations", json=body("A"), headers={"Idempotency-Key": key}
                )
            except httpx.HTTPError:
                return
            assert response.status_code == 201, response.text
            holds_acked[key] = response.json()["reservation_id"]

    async def killer() -> None:
        while len(acked) < 300 or len(holds_acked) < 60:
            await asyncio.sleep(0.002)
        server.kill()
        killed.set()

    async with httpx.AsyncClient(
        base_url=server.base_url, headers=server.auth_headers, timeout=TIMEOUT
    ) as client:
        await asyncio.wait_for(
            asyncio.gather(
                killer(), *(events(client) for _ in range(4)), *(holds(client) for _ in range(4))
            ),
            timeout=60,
        )
    return sent, acked, holds_sent, holds_acked


async def _check_after_restart(
    server: ServerProcess,
    sent: list[str],
    acked: set[str],
    holds_sent: dict[str, dict[str, Any]],
    holds_acked: dict[str, str],
) -> None:
    """Every acknowledged event and hold is there; state equals exactly what was recorded."""
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=server.auth_headers, timeout=TIMEOUT
    ) as client:
        recorded = set()
        for event_id in sent:
            response = await client.get(f"/v1/inventory/events/{event_id}")
            assert response.status_code in (200, 404)
            if response.status_code == 200:
                recorded.add(event_id)
        assert acked <= recorded
        assert recorded <= set(sent)
        assert (await position(client, "B"))["on_hand"] == len(recorded)
        held_before = (await position(client, "A"))["held"]
        for reservation_id in holds_acked.values():
            response = await client.get(f"/v1/reservations/{reservation_id}")
            assert response.status_code == 200
            assert response.json()["status"] == "held"
        committed = 0
        for key, hold_body in holds_sent.items():
            response = await client.post(
                "/v1/reservations", json=hold_body, headers={"Idempotency-Key": key}
            )
            assert response.status_code == 201
            replayed = response.headers["idempotent-replayed"] == "true"
            if key in holds_acked:
                assert replayed
                assert response.json()["reservation_id"] == holds_acked[key]
            committed += replayed
        assert held_before == committed
