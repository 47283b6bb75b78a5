"""Acceptance 3: two service instances consume one stream into PostgreSQL, sharing the work."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from promise.events.config import EventSettings
from promise.stock.postgres import PostgresStockBackend
from tests.events.events_cases import (
    clean_apply,
    event_env,
    event_state,
    generate_stream,
    publish_all,
    read_stream,
    server,
    wait_drained,
    wide_network,
)
from tests.launcher import ServerProcess
from tests.stock.stock_cases import pg_schema

EVENTS = 3000
COUNTER = re.compile(r'^promise_events_consumed_total\{outcome="(\w+)"\} ([0-9.e+]+)$', re.M)


def _consumed(instance: ServerProcess) -> dict[str, float]:
    """The instance's consumed-event counters by outcome, from /metrics."""
    status, body = instance.fetch("/metrics")
    assert status == 200
    return {outcome: float(value) for outcome, value in COUNTER.findall(body.decode())}


@pytest.mark.slow
def test_two_instances_share_the_stream_and_apply_each_event_once(
    streams: EventSettings, pg_dsn: str, tmp_path: Path
) -> None:
    """No event applied twice, none lost; both instances did part of the work; DLQ = the bad."""
    snap = wide_network(4)
    snapshot_file = tmp_path / "network.json"
    snapshot_file.write_text(snap.model_dump_json())
    stream = generate_stream(snap, streams, EVENTS, seed=21, invalid=6)
    settings = streams.model_copy(update={"events_consume": True, "events_batch": 100})
    with pg_schema(pg_dsn) as dsn:
        env = {**event_env(settings), "PROMISE_DATABASE_URL": dsn}
        first = server(tmp_path, snapshot_file, env)
        second = server(tmp_path, snapshot_file, env)
        with first, second:

            async def produce() -> None:
                # Trickled, so that both instances are pulling while the stream fills.
                for start in range(0, len(stream.messages), 200):
                    await publish_all(settings, stream.messages[start : start + 200])
                    await asyncio.sleep(0.05)
                await wait_drained(settings, 180)

            asyncio.run(produce())
            counts = [_consumed(first), _consumed(second)]
            status, ready = first.get_json("/readyz")
            assert status == 200
            assert ready["consumer"]["state"] == "running"  # type: ignore[index]
        recorded = [c.get("applied", 0) + c.get("stale", 0) for c in counts]
        assert all(share > 0 for share in recorded), counts
        assert sum(recorded) == len(stream.valid)  # each event recorded once, by one of them
        live = PostgresStockBackend(dsn)
        reference = clean_apply(snap, stream.valid, tmp_path / "reference.sqlite3")
        assert event_state(live) == event_state(reference)
        live.close()
        reference.close()
    dead = asyncio.run(read_stream(settings, settings.events_dlq_stream))
    assert len(dead) == stream.invalid
