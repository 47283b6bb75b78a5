"""Token-bucket rate limits: in-process, and shared through a real Redis server.

The Redis tests use the local server (``PROMISE_TEST_REDIS_URL``, by default
redis://127.0.0.1:6379/0) and fail, rather than skip, when it is unreachable: CI runs Redis.
Each test names its keys with a prefix of its own, so tests never share a bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from typing import Any, cast

import pytest
import redis

from promise.access.ratelimit import (
    LocalRateLimiter,
    RateDecision,
    RedisRateLimiter,
)

REDIS_URL_ENV = "PROMISE_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
UNREACHABLE_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
# Generous: a loaded CI machine must not turn the tests' takes into fail-open allowances.
TEST_TIMEOUT_S = 2.0

# The cross-process test: two processes, each with a few concurrent tasks, one principal.
HAMMER_PROCESSES = 2
HAMMER_TASKS = 4
HAMMER_S = 1.0
HAMMER_RATE = 20.0
HAMMER_BURST = 10
HAMMER_TOLERANCE = 3


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis server's URL; fails the test with instructions when it is unreachable."""
    url = os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)
    problem = None
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3) as client:
            client.ping()
    except redis.RedisError as exc:
        problem = str(exc)
    if problem is not None:  # failed outside the except block, so without the chained trace
        pytest.fail(
            f"Redis is unreachable at {url} ({problem}). Start a local redis-server or point "
            f"{REDIS_URL_ENV} at one; the shared rate limit cannot be tested without it.",
            pytrace=False,
        )
    return url


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test:rate:{uuid.uuid4().hex}:"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)


def pttl_ms(url: str, key: str) -> int:
    """The key's remaining time to live in ms (-2 when it does not exist, -1 when it never ends)."""
    with redis.Redis.from_url(url) as client:
        return cast(int, client.pttl(key))


async def take_n(limiter: RedisRateLimiter, n: int) -> list[RateDecision]:
    """``n`` sequential takes for principal "p", burst 3, at a rate too slow to refill meanwhile."""
    return [await limiter.take("p", 0.001, 3) for _ in range(n)]


class FakeClock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        """Start at 1,000 s."""
        self.now = 1000.0

    def __call__(self) -> float:
        """The current time."""
        return self.now


# --- Redis: one bucket --------------------------------------------------------------------


def test_burst_then_refusal_with_retry_after(redis_url: str, prefix: str) -> None:
    """A full bucket allows ``burst`` requests, then refuses until one token has refilled."""
    # Made outside any event loop, as an app is at import; the client comes on first use.
    limiter = RedisRateLimiter(redis_url, prefix=prefix, timeout_s=TEST_TIMEOUT_S)

    async def scenario() -> list[RateDecision]:
        try:
            return [await limiter.take("alice", 0.25, 3) for _ in range(5)]
        finally:
            await limiter.aclose()

    decisions = asyncio.run(scenario())
    assert decisions[:3] == [
        RateDecision(allowed=True, retry_after_s=0, remaining=2),
        RateDecision(allowed=True, retry_after_s=0, remaining=1),
        RateDecision(allowed=True, retry_after_s=0, remaining=0),
    ]
    # One token at 0.25/s takes 4 s (a few ms of refill since do not round it down).
    assert decisions[3:] == [RateDecision(allowed=False, retry_after_s=4, remaining=0)] * 2
    assert limiter.failures == 0


def test_principals_have_separate_buckets(redis_url: str, prefix: str) -> None:
    """Emptying one principal's bucket leaves another's full."""

    async def scenario() -> tuple[RateDecision, RateDecision]:
        limiter = RedisRateLimiter(redis_url, prefix=prefix, timeout_s=TEST_TIMEOUT_S)
        try:
            await limiter.take("a", 1.0, 1)
            return await limiter.take("a", 1.0, 1), await limiter.take("b", 1.0, 1)
        finally:
            await limiter.aclose()

    a_again, b_first = asyncio.run(scenario())
    assert not a_again.allowed
    assert b_first == RateDecision(allowed=True, retry_after_s=0, remaining=0)


def test_lowered_burst_applies_at_once(redis_url: str, prefix: str) -> None:
    """A principal whose burst is lowered keeps no more than the new burst's tokens."""

    async def scenario() -> tuple[RateDecision, RateDecision]:
        limiter = RedisRateLimiter(redis_url, prefix=prefix, timeout_s=TEST_TIMEOUT_S)
        try:
            return await limiter.take("p", 1.0, 10), await limiter.take("p", 1.0, 3)
        finally:
            await limiter.aclose()

    before, after = asyncio.run(scenario())
    assert before.remaining == 9
    assert after == RateDecision(True, 0, 2)  # capped at 3, less this request's token


def test_refill_after_waiting(redis_url: str, prefix: str) -> None:
    """An empty bucket refills at the rate, in part after a short wait and to burst, not past it."""

    async def drain(limiter: RedisRateLimiter) -> int:
        allowed = 0
        while (await limiter.take("p", 20.0, 5)).allowed:
            allowed += 1
        return allowed

    async def scenario() -> tuple[int, int, int]:
        limiter = RedisRateLimiter(redis_url, prefix=prefix, timeout_s=TEST_TIMEOUT_S)
        try:
            first = await drain(limiter)
            await asyncio.sleep(0.06)  # 1.2 tokens at 20/s
            partial = await drain(limiter)
            await asyncio.sleep(0.4)  # 8 tokens' worth, capped at the burst of 5
            full = await drain(limiter)
            return first, partial, full
        finally:
            await limiter.aclose()

    first, partial, full = asyncio.run(scenario())
    assert first == 5
    # At least one token is back; a late wake-up may add some, but 0.2 s would be needed to
    # refill the whole bucket.
    assert 1 <= partial <= 4
    assert full == 5


def test_idle_bucket_expires_once_refilled(redis_url: str, prefix: str) -> None:
    """The key's PTTL is the time to refill fully; after it the key is gone and the bucket full."""

    async def scenario() -> None:
        limiter = RedisRateLimiter(redis_url, prefix=prefix, timeout_s=TEST_TIMEOUT_S)
        try:
            await limiter.take("one", 5.0, 10)
            # One token missing at 5/s: full again in 200 ms.
            assert 100 < pttl_ms(redis_url, prefix + "one") <= 200
            for _ in range(10):
                await limiter.take("idle", 50.0, 10)
            # Ten missing at 50/s: 200 ms (less the little refill since the first take).
            assert 120 < pttl_ms(redis_url, prefix + "idle") <= 200
            await asyncio.sleep(0.3)
            assert pttl_ms(redis_url, prefix + "idle") == -2
            assert await limiter.take("idle", 50.0, 10) == RateDecision(True, 0, 9)
        finally:
            await limiter.aclose()

    asyncio.run(scenario())


def test_limits_are_checked(redis_url: str, prefix: str) -> None:
    """A zero rate (never refills), an empty burst, no timeout or a bad URL is refused."""

    async def scenario() -> None:
        limiter = RedisRateLimiter(redis_url, prefix=prefix)
        try:
            with pytest.raises(ValueError, match="rate_per_s"):
                await limiter.take("p", 0.0, 5)
            with pytest.raises(ValueError, match="burst"):
                await limiter.take("p", 1.0, 0)
        finally:
            await limiter.aclose()

    asyncio.run(scenario())
    with pytest.raises(ValueError, match="timeout_s"):
        RedisRateLimiter(redis_url, timeout_s=0)
    with pytest.raises(ValueError, match="scheme"):
        RedisRateLimiter("http://127.0.0.1:6379/0")


def test_reopens_after_aclose(redis_url: str, prefix: str) -> None:
    """A closed limiter opens a new pool on its next take, and the bucket is where it was."""

    async def scenario() -> tuple[list[RateDecision], list[RateDecision]]:
        limiter = RedisRateLimiter(redis_url, prefix=prefix, timeout_s=TEST_TIMEOUT_S)
        before = await take_n(limiter, 2)
        await limiter.aclose()
        try:
            return before, await take_n(limiter, 2)
        finally:
            await limiter.aclose()

    before, after = asyncio.run(scenario())
    assert [d.remaining for d in before] == [2, 1]
    assert after[0] == RateDecision(True, 0, 0)
    assert not after[1].allowed


def test_runs_after_the_server_lost_its_scripts(redis_url: str, prefix: str) -> None:
    """A NOSCRIPT answer (a restarted server's empty script cache) loads the script again."""

    async def scenario() -> tuple[list[RateDecision], int]:
        limiter = RedisRateLimiter(redis_url, prefix=prefix, timeout_s=TEST_TIMEOUT_S)
        try:
            decisions = [await limiter.take("p", 0.001, 3)]
            # A digest the server has never seen stands in for a restart: SCRIPT FLUSH would
            # empty the cache of every other client of the shared test server too.
            assert limiter._link is not None
            limiter._link[1].sha = "0" * 40
            decisions += [await limiter.take("p", 0.001, 3) for _ in range(2)]
            return decisions, limiter.failures
        finally:
            await limiter.aclose()

    decisions, failures = asyncio.run(scenario())
    assert failures == 0
    assert [d.remaining for d in decisions] == [2, 1, 0]


# --- Redis: shared between processes ------------------------------------------------------


def _hammer(url: str, prefix: str, barrier: Barrier, results: Any) -> None:
    """One load process: HAMMER_TASKS tasks take for one principal during HAMMER_S seconds."""

    async def run() -> dict[str, float]:
        limiter = RedisRateLimiter(url, prefix=prefix, timeout_s=TEST_TIMEOUT_S, fail_open=False)
        # Open the connection and load the script before the start, on another principal.
        await limiter.take("warm-up", 1000.0, 1000)
        counts = {"allowed": 0, "refused": 0}

        async def task(stop: float) -> None:
            while time.monotonic() < stop:
                decision = await limiter.take("shared", HAMMER_RATE, HAMMER_BURST)
                counts["allowed" if decision.allowed else "refused"] += 1

        barrier.wait(30)  # both processes start together (nothing else runs on this loop yet)
        # CLOCK_MONOTONIC is system-wide on Linux, so the processes' times compare.
        first = time.monotonic()
        await asyncio.gather(*(task(first + HAMMER_S) for _ in range(HAMMER_TASKS)))
        last = time.monotonic()
        await limiter.aclose()
        return {**counts, "failures": limiter.failures, "first": first, "last": last}

    results.put(asyncio.run(run()))


def test_limit_is_shared_across_processes(redis_url: str, prefix: str) -> None:
    """Two processes hammering one principal are allowed burst + rate × elapsed between them."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(HAMMER_PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_hammer, args=(redis_url, prefix, barrier, results))
        for _ in range(HAMMER_PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        outcomes: list[dict[str, float]] = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()
    assert all(process.exitcode == 0 for process in processes)
    assert [o["failures"] for o in outcomes] == [0] * HAMMER_PROCESSES
    elapsed = max(o["last"] for o in outcomes) - min(o["first"] for o in outcomes)
    expected = HAMMER_BURST + HAMMER_RATE * elapsed
    allowed = sum(o["allowed"] for o in outcomes)
    assert abs(allowed - expected) <= HAMMER_TOLERANCE, (allowed, expected, outcomes)
    # Each process saw the other's takes: it was refused, and it got a share, not the whole.
    for outcome in outcomes:
        assert outcome["refused"] > 0, outcomes
        assert 0 < outcome["allowed"] < allowed, outcomes


# --- Redis unreachable or slow --------------------------------------------------------------


def test_fail_open_allows_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    """With Redis unreachable a fail-open limiter allows, counts each failure, warns once."""
    limiter = RedisRateLimiter(UNREACHABLE_URL, fail_open=True)

    async def scenario() -> list[RateDecision]:
        try:
            return [await limiter.take("p", 1.0, 1) for _ in range(5)]
        finally:
            await limiter.aclose()

    with caplog.at_level(logging.WARNING, logger="promise.access.ratelimit"):
        decisions = asyncio.run(scenario())
    assert all(d.allowed for d in decisions)
    assert limiter.failures == 5
    warnings = [r for r in caplog.records if r.name == "promise.access.ratelimit"]
    assert len(warnings) == 1  # at most one per WARN_EVERY_S, however many requests fail


def test_fail_closed_refuses() -> None:
    """With Redis unreachable a fail-closed limiter refuses for a second, and counts it."""
    limiter = RedisRateLimiter(UNREACHABLE_URL, fail_open=False)

    async def scenario() -> list[RateDecision]:
        try:
            return [await limiter.take("p", 100.0, 100) for _ in range(2)]
        finally:
            await limiter.aclose()

    assert (
        asyncio.run(scenario()) == [RateDecision(allowed=False, retry_after_s=1, remaining=0)] * 2
    )
    assert limiter.failures == 2


class SlowLink:
    """A TCP forwarder to Redis that holds each reply back by ``delay_s`` (the test sets it)."""

    def __init__(self, url: str) -> None:
        """Forward to the Redis server of ``url``; listen on a free local port when entered."""
        parsed = urllib.parse.urlsplit(url)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 6379)
        self.db = parsed.path.lstrip("/") or "0"
        self.delay_s = 0.0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        """The URL that reaches Redis through this link."""
        return f"redis://127.0.0.1:{self.port}/{self.db}"

    async def __aenter__(self) -> SlowLink:
        """Start listening."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop listening and close every link."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for writer in self._writers:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await self._server.wait_closed()

    async def cut(self) -> None:
        """Close every open link, as a restarting server does; new ones are still accepted."""
        writers, self._writers = self._writers, []
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Pump one client's bytes to Redis and, late by ``delay_s``, Redis's back."""
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers += [writer, up_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, slow: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    if slow and self.delay_s:
                        await asyncio.sleep(self.delay_s)
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, True))


def test_slow_redis_fails_open_then_answers_true(redis_url: str, prefix: str) -> None:
    """A reply later than timeout_s is a fail-open allowance; the late reply is never misread."""

    async def scenario() -> tuple[list[RateDecision], float]:
        async with SlowLink(redis_url) as link:
            limiter = RedisRateLimiter(link.url, prefix=prefix, timeout_s=0.05)
            try:
                decisions = [await limiter.take("p", 0.001, 3)]
                link.delay_s = 0.3
                started = time.monotonic()
                decisions.append(await limiter.take("p", 0.001, 3))
                waited = time.monotonic() - started
                assert limiter.failures == 1
                link.delay_s = 0.0
                decisions += [await limiter.take("p", 0.001, 3) for _ in range(2)]
                return decisions, waited
            finally:
                await limiter.aclose()

    decisions, waited = asyncio.run(scenario())
    assert waited < 0.25  # the timeout, not the reply, ended the wait
    # The slow take reached Redis and used a token; the interrupted connection was dropped,
    # so the next take reads its own reply (remaining 0), not the late one (remaining 1).
    assert decisions[:3] == [
        RateDecision(True, 0, 2),
        RateDecision(True, 0, 0),  # the fail-open allowance
        RateDecision(True, 0, 0),
    ]
    assert not decisions[3].allowed
    assert decisions[3].retry_after_s == math.ceil(1 / 0.001)


def test_connections_closed_by_the_server_cost_no_failure(redis_url: str, prefix: str) -> None:
    """After Redis drops every pooled connection (a restart), takes reconnect and succeed."""

    async def scenario() -> tuple[list[RateDecision], list[RateDecision], int]:
        async with SlowLink(redis_url) as link:
            limiter = RedisRateLimiter(link.url, prefix=prefix, timeout_s=TEST_TIMEOUT_S)
            try:
                # Concurrent takes, so the pool holds several connections.
                before = await asyncio.gather(*(limiter.take("p", 0.001, 100) for _ in range(4)))
                await link.cut()
                await asyncio.sleep(0.02)  # let the closes reach the client's sockets
                after = await asyncio.gather(*(limiter.take("p", 0.001, 100) for _ in range(4)))
                return before, after, limiter.failures
            finally:
                await limiter.aclose()

    before, after, failures = asyncio.run(scenario())
    assert failures == 0
    assert sorted(d.remaining for d in before) == [96, 97, 98, 99]
    assert sorted(d.remaining for d in after) == [92, 93, 94, 95]


# --- in-process buckets ---------------------------------------------------------------------


def test_local_burst_refusal_and_refill() -> None:
    """The local limiter has the same bucket: burst, refusal with retry-after, refill to burst."""
    clock = FakeClock()
    limiter = LocalRateLimiter(clock=clock)

    async def take() -> RateDecision:
        return await limiter.take("p", 2.0, 3)

    async def scenario() -> list[RateDecision]:
        decisions = [await take() for _ in range(4)]
        clock.now += 0.5  # one token at 2/s
        decisions += [await take(), await take()]
        clock.now += 10.0  # 20 tokens at 2/s, capped at 3 (and well before a sweep)
        decisions += [await take() for _ in range(4)]
        return decisions

    allowed = [RateDecision(True, 0, n) for n in (2, 1, 0)]
    refused = RateDecision(allowed=False, retry_after_s=1, remaining=0)
    assert asyncio.run(scenario()) == [
        *allowed,
        refused,
        RateDecision(True, 0, 0),
        refused,
        *allowed,
        refused,
    ]


def test_local_retry_after_rounds_up() -> None:
    """Retry-after is the whole seconds until a token, rounded up: 0.4 tokens short at 0.25/s."""
    clock = FakeClock()
    limiter = LocalRateLimiter(clock=clock)
    assert limiter.take_now("p", 0.25, 1).allowed
    clock.now += 2.4  # 0.6 of a token back
    assert limiter.take_now("p", 0.25, 1) == RateDecision(False, 2, 0)  # 1.6 s, rounded up


def test_local_forgets_refilled_buckets() -> None:
    """A sweep drops buckets full again by their own limits and keeps those still refilling."""
    clock = FakeClock()
    limiter = LocalRateLimiter(clock=clock)
    limiter.take_now("once", 1.0, 100)
    for _ in range(100):
        limiter.take_now("drained", 1.0, 100)
    assert len(limiter) == 2
    clock.now += 61.0  # past the sweep interval: "once" is full, "drained" has 61 of 100
    # The sweep runs in this take; its far faster limit must not make "drained" look full.
    limiter.take_now("new", 1000.0, 1)
    assert len(limiter) == 2
    assert limiter.take_now("drained", 1.0, 100).remaining == 60


def test_local_limits_are_checked() -> None:
    """The local limiter refuses the same impossible limits as the shared one."""
    limiter = LocalRateLimiter()
    with pytest.raises(ValueError, match="rate_per_s"):
        limiter.take_now("p", -1.0, 5)
    with pytest.raises(ValueError, match="rate_per_s"):
        limiter.take_now("p", math.inf, 5)
    with pytest.raises(ValueError, match="burst"):
        limiter.take_now("p", 1.0, 0)
