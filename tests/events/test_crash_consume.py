"""Acceptance 1: ``promise consume`` SIGKILLed at random points while the stream fills.

The suite runs 4,000 events (and a 10 % of copies, shuffled) with 5 kills;
``PROMISE_ACCEPTANCE_EVENTS=50000`` runs the full-size acceptance of issue 11.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from promise.events.config import EventSettings
from promise.stock.sqlite import SqliteStockBackend
from tests.events.events_cases import (
    clean_apply,
    consume_command,
    event_env,
    event_state,
    generate_stream,
    publish_all,
    read_stream,
    wait_drained,
    wide_network,
)

EVENTS = int(os.environ.get("PROMISE_ACCEPTANCE_EVENTS", "4000"))
KILLS = 5
CHUNK = 250


class ConsumeProcess:
    """A ``promise consume`` child in a session of its own (so SIGKILL reaches all of it)."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        """Keep what starts it."""
        self._command = command
        self._env = env
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start (again)."""
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                self._command,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL it: no shutdown, no flush, no acknowledgement sent."""
        assert self._process is not None
        assert self._process.poll() is None, self._log.read_text()[-3000:]
        os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(15)

    def stop(self) -> None:
        """SIGTERM it and wait."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(30)


@pytest.mark.slow
def test_consumer_killed_five_times_ends_like_one_clean_in_order_apply(
    streams: EventSettings, tmp_path: Path
) -> None:
    """Final positions equal a clean in-order apply; the DLQ holds exactly the invalid ones."""
    snap = wide_network(4)
    snapshot_file = tmp_path / "network.json"
    snapshot_file.write_text(snap.model_dump_json())
    stream = generate_stream(snap, streams, EVENTS, seed=11, invalid=20)
    store = tmp_path / "stock.sqlite3"
    env = {
        **os.environ,
        **event_env(streams),
        "PROMISE_STOCK_PATH": str(store),
        "PROMISE_LOG_LEVEL": "WARNING",
        # A killed consumer's unacknowledged batch comes back to its successor this soon.
        "PROMISE_EVENTS_ACK_WAIT_S": "2",
    }
    consumer = ConsumeProcess(consume_command(snapshot_file), env, tmp_path / "consume.log")
    rng = random.Random(7)
    total = len(stream.messages)
    kill_points = sorted(rng.randrange(total // 10, total) for _ in range(KILLS))

    async def produce_and_kill() -> None:
        consumer.start()
        published = 0
        points = list(kill_points)
        for start in range(0, total, CHUNK):
            await publish_all(streams, stream.messages[start : start + CHUNK])
            published = start + CHUNK
            while points and published >= points[0]:
                points.pop(0)
                # A moment for the consumer to be in the middle of a batch.
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                consumer.kill()
                consumer.start()
            await asyncio.sleep(0.02)
        await wait_drained(streams, 300)

    try:
        asyncio.run(produce_and_kill())
    finally:
        consumer.stop()
    assert consumer.starts == KILLS + 1

    live = SqliteStockBackend(store)
    reference = clean_apply(snap, stream.valid, tmp_path / "reference.sqlite3")
    assert event_state(live) == event_state(reference)
    dead = asyncio.run(read_stream(streams, streams.events_dlq_stream))
    assert len(dead) == stream.invalid
    audit = live.audit_trail(principal=f"consumer:{streams.events_durable}", limit=10**7)
    outcomes: dict[str, int] = {}
    for entry in audit:
        for outcome, count in entry.detail["outcomes"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    # Each valid event recorded once; the copies and the redeliveries after kills read as
    # duplicates; the unknown-node events were rejected (and dead-lettered).
    assert outcomes.get("applied", 0) + outcomes.get("stale", 0) == len(stream.valid)
    redelivered = outcomes.get("duplicate", 0) - stream.duplicates
    assert redelivered >= 0
    print(
        f"events={len(stream.valid)} copies={stream.duplicates} kills={KILLS} {outcomes} "
        f"redelivered_after_kills={redelivered} dead={len(dead)}"
    )
    live.close()
    reference.close()
