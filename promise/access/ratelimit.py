"""Per-principal request rate limits: token buckets, in-process or shared through Redis.

A bucket holds at most ``burst`` tokens and gains ``rate_per_s`` tokens a second; a request
takes one token or is refused. ``LocalRateLimiter`` keeps the buckets in the worker's memory,
so with N workers a principal gets N times its limit; ``RedisRateLimiter`` keeps them in one
Redis server, shared by every worker on every host, and costs one round trip per request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import Final, Protocol

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

__all__ = ["LocalRateLimiter", "RateDecision", "RateLimiter", "RedisRateLimiter"]

log = logging.getLogger("promise.access.ratelimit")

# Failures are counted always but logged at most this often: when Redis is down every request
# fails, and a warning per request would flood the logs.
WARN_EVERY_S: Final = 10.0
# Connections a limiter may hold open; one take holds one for a single round trip, so a
# worker rarely needs more than a few, and a cap keeps a surge from opening thousands.
MAX_CONNECTIONS: Final = 64
# How often the local limiter drops buckets that have refilled (a full bucket is the same as
# no bucket), so that principals seen once do not stay in memory.
LOCAL_SWEEP_EVERY_S: Final = 60.0

# KEYS[1]: the principal's bucket (a hash of tokens and ts, the time in µs it was last
# brought up to date). ARGV: rate per second, burst.
# Returns {allowed (0/1), whole tokens remaining, ms until one token is available}.
# The time is the server's, so the hosts' clocks need not agree; the key expires once the
# bucket would be full again, when it is indistinguishable from a missing key (so the cap at
# burst matters only when a principal's burst is lowered, or to rounding). TIME in a
# script that writes needs effects replication: the default from Redis 5, the only mode from
# Redis 7; replicate_commands() asks for it on older servers and is a no-op on newer ones.
TAKE_SCRIPT: Final = """
redis.replicate_commands()
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
elseif now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
end
local allowed = 0
local retry_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) * 1000 / rate)))
return {allowed, math.floor(tokens), retry_ms}
"""


@dataclasses.dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether one request may proceed, and what the principal has left."""

    allowed: bool
    retry_after_s: int  # whole seconds until one token is available; >= 1 when refused
    remaining: int  # whole tokens left after this request


class RateLimiter(Protocol):
    """Takes one token from a principal's bucket per request."""

    async def take(self, principal_id: str, rate_per_s: float, burst: int) -> RateDecision:
        """Take a token for one request of ``principal_id``, or refuse it."""
        ...

    async def aclose(self) -> None:
        """Release what the limiter holds (connections); it is not used afterwards."""
        ...


def _check(rate_per_s: float, burst: int) -> None:
    """Refuse limits a bucket cannot have (a zero rate would never refill)."""
    if not (rate_per_s > 0 and math.isfinite(rate_per_s)) or burst < 1:
        raise ValueError(f"need a finite rate_per_s > 0 and burst >= 1, got {rate_per_s}, {burst}")


_ALLOWED: Final = RateDecision(allowed=True, retry_after_s=0, remaining=0)
_REFUSED: Final = RateDecision(allowed=False, retry_after_s=1, remaining=0)


class LocalRateLimiter:
    """Token buckets in this process's memory: per worker, not shared between workers."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        """Buckets timed by ``clock`` (seconds, monotonic)."""
        self._clock = clock
        # principal id -> [tokens, time last brought up to date, time it is full again]
        self._buckets: dict[str, list[float]] = {}
        self._next_sweep = clock() + LOCAL_SWEEP_EVERY_S

    async def take(self, principal_id: str, rate_per_s: float, burst: int) -> RateDecision:
        """Take a token for one request of ``principal_id``, or refuse it."""
        return self.take_now(principal_id, rate_per_s, burst)

    def take_now(self, principal_id: str, rate_per_s: float, burst: int) -> RateDecision:
        """``take`` for callers outside an event loop (it never waits)."""
        _check(rate_per_s, burst)
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        bucket = self._buckets.get(principal_id)
        if bucket is None:
            tokens = float(burst)
            bucket = self._buckets[principal_id] = [tokens, now, now]
        else:
            tokens = min(float(burst), bucket[0] + max(0.0, now - bucket[1]) * rate_per_s)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        bucket[0] = tokens
        bucket[1] = now
        # Judged by this principal's own limits, so the sweep never drops a bucket early.
        bucket[2] = now + (burst - tokens) / rate_per_s
        if allowed:
            return RateDecision(allowed=True, retry_after_s=0, remaining=math.floor(tokens))
        return RateDecision(
            allowed=False,
            retry_after_s=max(1, math.ceil((1.0 - tokens) / rate_per_s)),
            remaining=0,
        )

    def _sweep(self, now: float) -> None:
        """Drop the buckets that are full again by ``now``: a full bucket is as good as none."""
        self._next_sweep = now + LOCAL_SWEEP_EVERY_S
        full = [key for key, bucket in self._buckets.items() if bucket[2] <= now]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        """How many principals have a bucket in memory."""
        return len(self._buckets)

    async def aclose(self) -> None:
        """Forget every bucket."""
        self._buckets.clear()


class RedisRateLimiter:
    """Token buckets in Redis, shared by every worker and host using the same server and prefix.

    The client is made on first use, inside the running event loop (a uvicorn worker makes its
    loop after importing the app), and is bound to that loop: a limiter serves one loop.
    When Redis is unreachable or slower than ``timeout_s``, a fail-open limiter allows the
    request (remaining 0: not known), a fail-closed one refuses it for a second; either way
    it counts the take in ``failures``.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "promise:rate:",
        timeout_s: float = 0.05,
        fail_open: bool = True,
    ) -> None:
        """A limiter on the Redis server at ``url``, its keys named ``prefix`` + principal id."""
        if not timeout_s > 0:
            raise ValueError(f"need timeout_s > 0, got {timeout_s}")
        # A malformed URL is a configuration error: raise it at start-up, not per request.
        redis.asyncio.connection.parse_url(url)
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.fail_open = fail_open
        self.failures = 0  # takes Redis did not answer (unreachable, slow or erring)
        # The client and its registered script, made on first use.
        self._link: tuple[redis.asyncio.Redis, AsyncScript] | None = None
        self._warned_at = -math.inf
        self._failures_warned = 0

    def _connect(self) -> tuple[redis.asyncio.Redis, AsyncScript]:
        """Make the client and its pool (no connection is opened until the first command)."""
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            self.url,
            max_connections=MAX_CONNECTIONS,
            timeout=self.timeout_s,  # waiting for a free connection counts against the budget
            socket_connect_timeout=self.timeout_s,
            # One immediate retry on a connection error: a pooled connection the server closed
            # (a restart) is only found dead when used, and would otherwise cost a failed take.
            # timeout_s, enforced around the whole call, bounds the retry too. A reply lost
            # after the script ran would take a second token; that is rare and errs strict.
            retry=Retry(NoBackoff(), 1),
        )
        client = redis.asyncio.Redis.from_pool(pool)
        self._link = (client, client.register_script(TAKE_SCRIPT))
        return self._link

    async def take(self, principal_id: str, rate_per_s: float, burst: int) -> RateDecision:
        """Take a token for one request of ``principal_id``, or refuse it."""
        _check(rate_per_s, burst)
        client, script = self._link or self._connect()
        key = self.prefix + principal_id
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    # EVALSHA straight away: calling the script object costs some µs more.
                    reply = await client.evalsha(script.sha, 1, key, rate_per_s, burst)
                except redis.exceptions.NoScriptError:
                    # The server lost its script cache (a restart, first use): the script
                    # object loads the script and runs it.
                    reply = await script(keys=[key], args=[rate_per_s, burst])
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            # A command cut off by the timeout leaves its connection closed (redis-py drops a
            # connection interrupted mid-reply), so the pool never hands out a half-read one.
            return self._failed(exc)
        allowed, remaining, retry_ms = reply
        if allowed:
            return RateDecision(allowed=True, retry_after_s=0, remaining=remaining)
        return RateDecision(
            allowed=False, retry_after_s=max(1, math.ceil(retry_ms / 1000)), remaining=0
        )

    def _failed(self, exc: BaseException) -> RateDecision:
        """Count a failed take, warn now and then, and decide by ``fail_open``."""
        self.failures += 1
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            log.warning(
                "rate limit store unavailable; %s requests",
                "allowing" if self.fail_open else "refusing",
                extra={
                    "error": f"{type(exc).__name__}: {exc}",
                    "failures_since_last_warning": self.failures - self._failures_warned,
                    "failures": self.failures,
                },
            )
            self._warned_at = now
            self._failures_warned = self.failures
        return _ALLOWED if self.fail_open else _REFUSED

    async def aclose(self) -> None:
        """Close the pool's connections; a later take would open new ones."""
        link, self._link = self._link, None
        if link is not None:
            await link[0].aclose()
