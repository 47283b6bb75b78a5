"""Dependencies fail fast and visibly: PostgreSQL lost under a running server, and a wrong DSN.

A real ``promise serve`` reaches PostgreSQL through a TCP proxy this test controls
(:mod:`tests.stock.tcp_proxy`): cutting it drops every connection and refuses new ones, as a
database server that went away; restoring it accepts connections again on the same port.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg.conninfo
import pytest

from promise.stock import StockSettings
from promise.stock.pg_pool import wait_for_database
from tests.launcher import ServerProcess, free_port, serve_command
from tests.stock.stock_cases import ROOT, RawResponse, network, pg_schema, raw_request, stock_server
from tests.stock.tcp_proxy import TcpProxy

OUTAGE_REQUESTS = 40
STREAMS = 4
P99_LIMIT_S = 1.0
READYZ_LIMIT_S = 2.0
RECOVERY_LIMIT_S = 1.0
EXIT_LIMIT_S = 10.0
POLL_S = 0.02
PROBLEM = "application/problem+json"
PROMISE_BODY = {
    "cart": {
        "cart_id": "outage",
        "channel": "web",
        "lines": [{"line_id": "l1", "sku": "A", "quantity": 1, "unit_price": 1999}],
    },
    "destination": {"postal_code": "10001"},
    "requested_at": "2026-11-30T15:00:00Z",
}


def hold_body() -> dict[str, Any]:
    """A one-unit web hold of A at DC1."""
    return {"lines": [{"node_id": "DC1", "sku": "A", "quantity": 1}], "channel": "web"}


async def hold(server: ServerProcess, key: str) -> RawResponse:
    """POST one hold under ``key``."""
    return await raw_request(
        server, "POST", "/v1/reservations", hold_body(), headers={"Idempotency-Key": key}
    )


async def promise(server: ServerProcess) -> RawResponse:
    """POST one promise of the outage cart."""
    return await raw_request(server, "POST", "/v1/promise", PROMISE_BODY)


@pytest.fixture
def proxied(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, TcpProxy]]:
    """One server whose stock database (a fresh schema) is reached through a proxy."""
    snapshot_file = tmp_path / "snapshot.json"
    snapshot_file.write_text(network(dc_a=1000).model_dump_json())
    with pg_schema(pg_dsn) as schema_dsn, TcpProxy.to_server_of(schema_dsn) as proxy:
        env = {"PROMISE_DATABASE_URL": proxy.dsn(schema_dsn)}
        with stock_server(tmp_path, snapshot_file, env) as server:
            yield server, proxy


async def until(
    server: ServerProcess, path: str, status: int, limit_s: float
) -> tuple[RawResponse, float]:
    """GET ``path`` every few ms until it answers ``status``: the answer and seconds taken."""
    started = time.perf_counter()
    while True:
        answer = await raw_request(server, "GET", path)
        elapsed = time.perf_counter() - started
        if answer.status == status or elapsed > limit_s:
            return answer, elapsed
        await asyncio.sleep(POLL_S)


async def during_outage(server: ServerProcess) -> list[tuple[RawResponse, float]]:
    """Holds and promises from a few concurrent clients: each answer and its latency."""
    answers: list[tuple[RawResponse, float]] = []

    async def client(stream: int) -> None:
        for i in range(stream, OUTAGE_REQUESTS, STREAMS):
            started = time.perf_counter()
            answer = await (hold(server, f"outage-{i}") if i % 2 else promise(server))
            answers.append((answer, time.perf_counter() - started))

    await asyncio.gather(*(client(stream) for stream in range(STREAMS)))
    return answers


def assert_unavailable(answer: RawResponse, kind: str) -> None:
    """A 503 problem document of ``kind`` that tells the client when to retry."""
    assert answer.status == 503, answer.body
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.json()["type"].endswith(":" + kind), answer.body


def test_a_lost_database_answers_503_at_once_and_the_first_hold_after_it_succeeds(
    proxied: tuple[ServerProcess, TcpProxy],
) -> None:
    """Cut: 503s with Retry-After, p99 ≤ 1 s, /readyz 503 within 2 s; restored: 201 within 1 s."""
    server, proxy = proxied

    async def scenario() -> dict[str, float]:
        # Warm every path first, so the pool holds connections the cut then kills.
        assert (await hold(server, "before")).status == 201
        assert (await promise(server)).status == 200
        assert (await raw_request(server, "GET", "/readyz")).status == 200

        proxy.cut()
        unready, readyz_s = await until(server, "/readyz", 503, READYZ_LIMIT_S)
        assert_unavailable(unready, "not-ready")
        assert "stock database" in unready.json()["detail"]
        answers = await during_outage(server)
        for answer, _ in answers:
            assert_unavailable(answer, "stock-unavailable")
        latencies = sorted(latency for _, latency in answers)

        proxy.restore()
        restored = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            answer = await hold(server, f"after-{attempt}")
            recovery_s = time.perf_counter() - restored
            if answer.status == 201 or recovery_s > RECOVERY_LIMIT_S:
                break
            await asyncio.sleep(POLL_S)
        assert answer.status == 201, answer.body
        ready, ready_again_s = await until(server, "/readyz", 200, RECOVERY_LIMIT_S)
        assert ready.status == 200, ready.body
        return {
            "p50_s": statistics.median(latencies),
            "p99_s": latencies[math.ceil(0.99 * len(latencies)) - 1],
            "readyz_503_s": readyz_s,
            "first_hold_201_s": recovery_s,
            "readyz_200_s": ready_again_s,
        }

    measured = asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    print("outage:", json.dumps({k: round(v, 4) for k, v in measured.items()}))
    assert measured["p99_s"] <= P99_LIMIT_S
    assert measured["readyz_503_s"] <= READYZ_LIMIT_S
    assert measured["first_hold_201_s"] <= RECOVERY_LIMIT_S


@pytest.mark.parametrize("wrong", ["refused-port", "missing-database"])
def test_serve_with_a_wrong_database_url_exits_quickly_naming_the_reason(
    wrong: str, pg_dsn: str, tmp_path: Path
) -> None:
    """``promise serve`` on a DSN it cannot use exits non-zero within 10 s with one ERROR line."""
    if wrong == "refused-port":
        dsn = psycopg.conninfo.make_conninfo(pg_dsn, host="127.0.0.1", port=free_port())
        reason = "Connection refused"
    else:
        name = f"no_such_db_{uuid.uuid4().hex[:8]}"
        dsn = psycopg.conninfo.make_conninfo(pg_dsn, dbname=name)
        reason = f'database "{name}" does not exist'
    command = serve_command(tmp_path / "data", "--port", str(free_port()))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMISE_DATABASE_URL": dsn}
    started = time.perf_counter()
    # A session of its own, so that a server that did start its workers can be killed whole.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=EXIT_LIMIT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    elapsed = time.perf_counter() - started
    print(f"{wrong}: exit {process.returncode} after {elapsed:.2f} s")
    assert process.returncode != 0
    assert elapsed <= EXIT_LIMIT_S
    lines = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    errors = [line["msg"] for line in lines if line["level"] in ("ERROR", "CRITICAL")]
    assert len(errors) == 1, output.decode()
    assert errors[0].startswith("stock database unreachable")
    assert reason in errors[0]
    assert not any(line.get("msg") == "serving" for line in lines)


def test_a_starting_worker_waits_for_a_database_that_comes_back(pg_dsn: str) -> None:
    """Away at a worker's start and back within the wait: the worker goes on; else it gives up."""
    waits: list[float] = []
    with TcpProxy.to_server_of(pg_dsn) as proxy:
        settings = StockSettings(database_url=proxy.dsn(pg_dsn), database_start_wait_s=20)
        proxy.cut()

        def sleep_then_restore(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(seconds)
            if sum(waits) >= 1.0:
                proxy.restore()

        assert wait_for_database(settings, sleep=sleep_then_restore) is None
        # Retries back off from 0.25 s, never past 2 s.
        assert waits[:3] == [0.25, 0.5, 1.0]
        assert max(waits) <= 2.0
        gone = StockSettings(
            database_url=psycopg.conninfo.make_conninfo(pg_dsn, host="127.0.0.1", port=free_port()),
            database_start_wait_s=1.0,
        )
        started = time.perf_counter()
        problem = wait_for_database(gone)
        elapsed = time.perf_counter() - started
    assert problem is not None
    assert "Connection refused" in problem
    assert 1.0 <= elapsed < 1.0 + EXIT_LIMIT_S
