"""One principal's request rate is one budget across every worker of every host (Redis)."""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path

from tests.stock.hosts import servers_on_hosts
from tests.stock.stock_cases import RawResponse, network, pg_schema, raw_request

RATE_PER_S = 5.0
BURST = 10
SECONDS = 2.0
CONNECTIONS = 8
REDIS = ("127.0.0.1", 6379)
VALIDATE_BODY = {
    "cart": {
        "cart_id": "rate",
        "channel": "web",
        "lines": [{"line_id": "l1", "sku": "A", "quantity": 1}],
    },
    "destination": {"postal_code": "10001"},
}


def test_a_principal_over_its_rate_gets_429_from_every_host(tmp_path: Path, pg_dsn: str) -> None:
    """Two hosts × two workers admit about burst + rate × t in all, and all of them say 429."""
    snapshot_file = tmp_path / "snapshot.json"
    snapshot_file.write_text(network().model_dump_json())
    with (
        pg_schema(pg_dsn) as schema_dsn,
        servers_on_hosts(tmp_path, schema_dsn, snapshot_file, redis=REDIS) as (servers, _),
    ):
        key = servers[0].make_key("promise", name="rated", rate=RATE_PER_S, burst=BURST)
        auth = {"Authorization": f"Bearer {key}"}

        async def storm() -> tuple[list[tuple[int, RawResponse]], float]:
            answers: list[tuple[int, RawResponse]] = []
            stop = time.perf_counter() + SECONDS

            async def connection(i: int) -> None:
                n = 0
                while time.perf_counter() < stop:
                    host = (i + n) % len(servers)
                    n += 1
                    answer = await raw_request(
                        servers[host], "POST", "/v1/promise/validate", VALIDATE_BODY, headers=auth
                    )
                    answers.append((host, answer))

            started = time.perf_counter()
            await asyncio.gather(*(connection(i) for i in range(CONNECTIONS)))
            return answers, time.perf_counter() - started

        answers, elapsed = asyncio.run(storm())
    statuses = collections.Counter(answer.status for _, answer in answers)
    assert set(statuses) <= {200, 429}, statuses
    admitted = statuses[200]
    ceiling = BURST + RATE_PER_S * elapsed
    # One shared bucket: about its burst plus the refill, not four workers' worth of it.
    assert BURST <= admitted <= ceiling + 2, (admitted, ceiling, statuses)
    refused_by = {host for host, answer in answers if answer.status == 429}
    assert refused_by == set(range(len(servers)))
    for _, answer in answers:
        if answer.status == 429:
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["type"].endswith(":rate-limited")
    # Every worker of every host took part (the kernel spreads new connections).
    workers = {answer.headers.get("x-worker-pid") for _, answer in answers}
    assert len(workers) >= 3, workers
