"""Two hosts, one PostgreSQL authority: a price table written on one is charged on the other.

Each host's workers fence their price copy on the version the authority reports with the
stock version, so the next promise on the other host is charged the new table; the two hosts'
re-pricing jobs share one lease and write a due re-pricing once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.launcher import ServerProcess
from tests.promise.promise_helpers import metric_value
from tests.promise.test_prices_e2e import (
    JOB_DEADLINE_S,
    forecast_csv,
    promise_body,
    put_table,
    two_dcs,
    until,
)
from tests.stock.hosts import servers_on_hosts
from tests.stock.stock_cases import pg_schema

PROMISES_PER_HOST = 10
EVERY_ORDERS = 2


@pytest.fixture
def schema_dsn(pg_dsn: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test."""
    with pg_schema(pg_dsn) as dsn:
        yield dsn


def _client(server: ServerProcess) -> httpx.Client:
    """A client of ``server`` with every role."""
    return httpx.Client(base_url=server.base_url, headers=server.auth_headers, timeout=30.0)


def test_a_table_put_on_one_host_is_charged_on_the_other_and_repriced_once(
    tmp_path: Path, schema_dsn: str
) -> None:
    """PUT on A; B's next promises use it; two orders make exactly one job run on either host."""
    snapshot_file = tmp_path / "two-dcs.json"
    snapshot_file.write_text(two_dcs().model_dump_json())
    env = {
        "PROMISE_PRICING_EVERY_ORDERS": str(EVERY_ORDERS),
        "PROMISE_PRICING_FORECAST": str(forecast_csv(tmp_path / "forecast.csv")),
        "PROMISE_PRICING_CHECK_S": "0.1",
    }
    with (
        servers_on_hosts(tmp_path, schema_dsn, snapshot_file, env=env) as (servers, _),
        _client(servers[0]) as host_a,
        _client(servers[1]) as host_b,
    ):
        version = put_table(host_a, [("PHL", "A", 5)])
        for k in range(PROMISES_PER_HOST):
            answer = host_b.post("/v1/promise", json=promise_body(f"b-{k}"))
            assert answer.json()["solver"]["prices_version"] == version, answer.text

        def current() -> int:
            table: int = host_b.get("/v1/prices", params={"limit": 0}).json()["version"]
            return table

        def checks() -> float:
            return sum(
                metric_value(c.get("/metrics").text, "promise_pricing_checks_total")
                for c in (host_a, host_b)
            )

        for n, host in enumerate((host_a, host_b)):
            held = host.post("/v1/promise", json={**promise_body(f"order-{n}"), "reserve": True})
            assert held.json()["reservation"]["held"], held.text
        until(lambda: current() == version + 1, JOB_DEADLINE_S, "a re-pricing")
        seen = checks()
        until(lambda: checks() >= seen + 5, JOB_DEADLINE_S, "five more job checks")
        assert current() == version + 1
        writes = host_a.get("/v1/audit", params={"action": "prices.write"}).json()["entries"]
        assert [entry["principal"].split("@")[0] for entry in writes[1:]] == ["job:pricing"]
        answer = host_a.post("/v1/promise", json=promise_body("after-job")).json()
        assert answer["solver"]["prices_version"] == version + 1
