"""A small stock network, a settable clock, PostgreSQL schemas and service processes.

The network: a DC in Philadelphia and a store in Manhattan; SKU A at both, B at the DC only.
Channel ``web`` keeps 1 unit at stores, ``store_pickup`` keeps none; nothing is buffered at
DCs, so a DC row's web ATP is on hand − safety stock (+ 95 % of lots).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg

from models import Snapshot
from promise.stock.schemas import EventType, InventoryEvent
from promise.stock.snapshots import LiveSnapshot
from solver import prepare
from tests.launcher import ServerProcess
from tests.pg_schema import temporary_schema
from tests.services import unreachable
from tests.solver.network_cases import MONDAY_10AM, dc, lot, snapshot, stock, store

__all__ = [
    "DEFAULT_DSN",
    "REQUIRE_POSTGRES_ENV",
    "FakeClock",
    "RawResponse",
    "event",
    "network",
    "pg_schema",
    "postgres_dsn",
    "raw_request",
    "stock_server",
]

REQUIRE_POSTGRES_ENV = "PROMISE_REQUIRE_POSTGRES"
TEST_DSN_ENV = "PROMISE_TEST_DATABASE_URL"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
ETA = dt.date(2026, 12, 3)
ROOT = Path(__file__).resolve().parents[2]


def network(dc_a: int = 10, store_a: int = 5, dc_b: int = 8) -> Snapshot:
    """The stock test network with the given units on hand."""
    return snapshot(
        [dc("DC1"), store("S1")],
        [
            stock("DC1", "A", dc_a),
            stock("S1", "A", store_a, safety_stock=1, in_transit=(lot(4, ETA),)),
            stock("DC1", "B", dc_b),
        ],
    )


def event(
    event_id: str,
    kind: EventType,
    quantity: int,
    seq: int,
    *,
    node_id: str = "DC1",
    sku: str = "A",
    **fields: object,
) -> InventoryEvent:
    """An event of (node, SKU) at the network's reference instant."""
    return InventoryEvent.model_validate(
        {
            "event_id": event_id,
            "node_id": node_id,
            "sku": sku,
            "type": kind,
            "quantity": quantity,
            "seq": seq,
            "occurred_at": MONDAY_10AM,
            **fields,
        }
    )


class FakeClock:
    """A clock the test moves by hand (thread-safe)."""

    def __init__(self, start: dt.datetime = MONDAY_10AM) -> None:
        """Start at ``start``."""
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        """The current fake time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)

    def set(self, instant: dt.datetime) -> None:
        """Jump to ``instant``."""
        with self._lock:
            self._now = instant


def postgres_dsn() -> str:
    """The test server's DSN, or skip (fail when PostgreSQL is required) if unreachable."""
    dsn = os.environ.get(TEST_DSN_ENV, DEFAULT_DSN)
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        message = (
            f"PostgreSQL is unreachable at {dsn} ({exc}). Start a local server (trust auth, "
            f"database 'test') or point {TEST_DSN_ENV} at one to run these tests; "
            f"{REQUIRE_POSTGRES_ENV}=1 makes this a failure."
        )
        unreachable(message, REQUIRE_POSTGRES_ENV)
    return dsn


def pg_schema(dsn: str) -> contextlib.AbstractContextManager[str]:
    """A fresh schema for one test: the DSN that uses it, dropped afterwards."""
    return temporary_schema(dsn, prefix="stock_test")


@dataclasses.dataclass(frozen=True)
class RawResponse:
    """Status, lower-cased headers and body of one HTTP/1.1 answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


async def raw_request(
    server: ServerProcess,
    method: str,
    path: str,
    body: object = None,
    *,
    headers: dict[str, str] | None = None,
) -> RawResponse:
    """One request to ``server`` with its key, on its own new connection, on asyncio streams.

    The storm tests open a thousand connections at once; httpx's pool spends seconds setting
    up that many, which would make the test measure the client rather than the servers.
    """
    host = server.host
    headers = {**server.auth_headers, **(headers or {})}
    reader, writer = await asyncio.open_connection(host, server.port)
    try:
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
        found = {name.strip().lower(): value.strip() for name, value in fields.items()}
        content = await reader.readexactly(int(found.get("content-length", "0")))
        return RawResponse(int(head[0].split()[1]), found, content)
    finally:
        writer.close()


def stock_server(root: Path, snapshot_file: Path, env: dict[str, str]) -> ServerProcess:
    """``promise serve`` (one worker) on ``snapshot_file``, sharing the stock store of ``root``.

    Every server under ``root`` uses the SQLite file there (or what ``env`` names) and keeps
    its own data directory.
    """
    return ServerProcess(
        data_dir=root / f"server-{uuid.uuid4().hex[:8]}",
        workers=1,
        snapshot=snapshot_file,
        env={
            "PROMISE_STOCK_PATH": str(root / "stock.sqlite3"),
            "PROMISE_LOG_LEVEL": "WARNING",
            **env,
        },
    )


class FixedSnapshots:
    """The live snapshot of a stock service under test: one network at generation 0.

    Generation 0 is what a fresh store reports before any snapshot was made live, so holds
    and events judged under it pass the authority's check.
    """

    def __init__(self, snapshot: Snapshot, generation: int = 0) -> None:
        """Serve ``snapshot`` as generation ``generation``."""
        self.live = LiveSnapshot.of(prepare(snapshot), generation, "", dt.datetime.now(dt.UTC))

    def current(self) -> LiveSnapshot:
        """The one live snapshot."""
        return self.live

    async def sync(self, at_least: int | None = None) -> LiveSnapshot:
        """Nothing to catch up with."""
        return self.live
