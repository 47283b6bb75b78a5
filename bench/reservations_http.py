"""Reservations over HTTP, and swap propagation between two hosts, against real servers.

- embedded: one ``promise serve`` (2 workers) on its SQLite store;
- postgres: two hosts sharing one PostgreSQL schema, 2 workers each — network namespaces
  joined by veth links where the machine allows it (root), else separate processes.

The load generator is a process of its own (asyncio + httpx, ``CONNECTIONS`` keep-alive
connections spread over the hosts), so its Python competes with the servers for the two
cores as an outside client would not: the holds/s here are a floor. Each attempt holds one to
three one-or-two-unit lines of the demo network's hot rows, as the direct benchmark does.
After the run, the units held beyond the web channel's ATP are read back from the store
(``oversold``: must be 0).

Propagation: swaps PUT on host A, then host B polled with ``GET /v1/snapshot`` until it names
the new version; the time from A's answer to B's.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import multiprocessing
import pathlib
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from bench._common import percentiles
from models import Snapshot
from promise.stock import StockSettings, open_backend
from promise.stock.holds import StockRules
from tests.launcher import ServerProcess
from tests.stock.hosts import servers_on_hosts

__all__ = ["measure_http", "propagation"]

CONNECTIONS = 32
Row = tuple[str, str]


# A server to load: its base URL and the headers (its key) to send it.
Target = tuple[str, dict[str, str]]


def _client(urls: list[Target], hot: list[Row], seconds: float, seed: int, queue: Any) -> None:
    """The load process: CONNECTIONS connections holding until the time is up."""

    async def run() -> tuple[list[float], dict[int, int]]:
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        clients = [
            httpx.AsyncClient(base_url=u, headers=h, timeout=30.0, limits=limits) for u, h in urls
        ]
        latencies: list[float] = []
        statuses: collections.Counter[int] = collections.Counter()
        stop = time.perf_counter() + seconds

        async def connection(i: int) -> None:
            client = clients[i % len(clients)]
            rng = random.Random(seed * 1000 + i)
            while time.perf_counter() < stop:
                picked = rng.sample(hot, rng.randint(1, 3))
                body = {
                    "lines": [
                        {"node_id": n, "sku": s, "quantity": rng.randint(1, 2)} for n, s in picked
                    ],
                    "channel": "web",
                }
                started = time.perf_counter()
                try:
                    response = await client.post(
                        "/v1/reservations", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
                    )
                    statuses[response.status_code] += 1
                except httpx.HTTPError:
                    statuses[0] += 1
                latencies.append((time.perf_counter() - started) * 1000.0)

        await asyncio.gather(*(connection(i) for i in range(CONNECTIONS)))
        for client in clients:
            await client.aclose()
        return latencies, dict(statuses)

    queue.put(asyncio.run(run()))


def _load(urls: list[Target], hot: list[Row], seconds: float) -> dict[str, Any]:
    """Run the load process against ``urls``; throughput, latency and status counts."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_client, args=(urls, hot, seconds, 1, queue))
    started = time.perf_counter()
    process.start()
    latencies, statuses = queue.get(timeout=seconds + 300)
    elapsed = time.perf_counter() - started
    process.join(60)
    attempts = sum(statuses.values())
    return {
        "holds_per_s": round(attempts / elapsed, 1),
        "granted_per_s": round(statuses.get(201, 0) / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "latency": percentiles(latencies),
        "connections": CONNECTIONS,
        "seconds": round(elapsed, 1),
    }


def _oversold(settings: StockSettings, snapshot: Snapshot, hot: list[Row]) -> tuple[int, int]:
    """Units held beyond web ATP over the hot rows, and units held, read from the store."""
    from bench.reservations import oversold  # noqa: PLC0415 - that module runs this one

    backend = open_backend(settings)
    try:
        return oversold(backend, StockRules(snapshot), hot)
    finally:
        backend.close()


@contextlib.contextmanager
def _embedded(root: pathlib.Path, snapshot_file: pathlib.Path) -> Iterator[list[ServerProcess]]:
    """One server with two workers on a SQLite store under ``root``."""
    server = ServerProcess(
        data_dir=root / "embedded",
        workers=2,
        snapshot=snapshot_file,
        env={"PROMISE_LOG_LEVEL": "WARNING"},
    )
    with server.start():
        yield [server]


def measure_http(
    root: pathlib.Path,
    snapshot: Snapshot,
    hot: list[Row],
    seconds: float,
    dsn: str | None,
) -> dict[str, Any]:
    """Holds over HTTP on the embedded store (``dsn`` None) or two hosts on PostgreSQL."""
    snapshot_file = root / "snapshot.json"
    snapshot_file.write_text(snapshot.model_dump_json())
    if dsn is None:
        with _embedded(root, snapshot_file) as servers:
            result = _load([(s.base_url, s.auth_headers) for s in servers], hot, seconds)
        settings = StockSettings(data_dir=root / "embedded")
        result["hosts"] = "one host, 2 workers"
    else:
        with servers_on_hosts(root, dsn, snapshot_file) as (servers, namespaces):
            result = _load([(s.base_url, s.auth_headers) for s in servers], hot, seconds)
        settings = StockSettings(database_url=dsn)
        kind = "network namespaces" if namespaces else "processes"
        result["hosts"] = f"two hosts ({kind}), 2 workers each"
    result["oversold"], result["units_held"] = _oversold(settings, snapshot, hot)
    return result


def propagation(
    root: pathlib.Path, dsn: str, snapshots: tuple[Snapshot, Snapshot], swaps: int
) -> dict[str, Any]:
    """Swaps on host A alternating two networks; how long until host B serves each."""
    snapshot_file = root / "first.json"
    snapshot_file.write_text(snapshots[0].model_dump_json())
    bodies = [s.model_dump_json() for s in snapshots]
    delays: list[float] = []
    with (
        servers_on_hosts(root, dsn, snapshot_file) as (servers, _namespaces),
        httpx.Client(timeout=60.0) as client,
    ):
        host_a, host_b = servers
        for n in range(1, swaps + 1):
            version = f"{snapshots[n % 2].version}#{n}"
            # Relabel the version in the JSON itself: the body stays the network's own.
            body = bodies[n % 2].replace(
                f'"version":"{snapshots[n % 2].version}"', f'"version":"{version}"', 1
            )
            put = client.put(
                host_a.base_url + "/v1/snapshot",
                content=body,
                headers={"content-type": "application/json", **host_a.auth_headers},
            )
            put.raise_for_status()
            swapped = time.perf_counter()
            url = host_b.base_url + "/v1/snapshot"
            while client.get(url, headers=host_b.auth_headers).json()["version"] != version:
                pass
            delays.append((time.perf_counter() - swapped) * 1000.0)
    return {
        "swaps": swaps,
        "nodes": len(snapshots[0].nodes),
        "inventory_rows": snapshots[0].row_count,
        **percentiles(delays),
        "max_ms": round(max(delays), 3),
    }
