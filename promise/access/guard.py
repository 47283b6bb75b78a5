"""Authentication, roles and request rate on every route, in one app-wide guard.

Each route handler declares who may call it (see ``promise.access.rules``). A route that
declares nothing is refused to everyone, so a new route cannot be exposed by forgetting. The
guard authenticates the ``Authorization: Bearer`` credential (an API key of the authority, or a
JWT of the configured issuer), checks the role, takes a token from the principal's rate bucket,
and leaves the principal in the request state for handlers.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import anyio
import anyio.to_thread
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from promise.access.keys import key_id_of, matches, principal_of
from promise.access.principal import Principal, Scope
from promise.access.ratelimit import RateLimiter
from promise.access.records import KeyRecord
from promise.access.rules import ACCESS_OPT, Access
from promise.access.tokens import TokenError, TokenVerifier
from solver.errors import ProblemError

__all__ = [
    "PRINCIPAL_STATE",
    "AccessDeniedError",
    "Authenticator",
    "NotAuthenticatedError",
    "RateLimitedError",
    "access_guard",
]

log = logging.getLogger(__name__)

PRINCIPAL_STATE = "principal"
# Keys looked up per worker; beyond this the cache starts afresh (a flood of random ids).
MAX_CACHED_KEYS = 10_000
_CHALLENGE = 'Bearer realm="promise-engine"'


class NotAuthenticatedError(ProblemError):
    """No credential, or one that does not authenticate: 401 with a Bearer challenge."""

    type = "urn:promise-engine:problem:unauthenticated"
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, *, invalid: bool = False) -> None:
        """Say why; an ``invalid`` credential (not a missing one) is flagged in the challenge."""
        super().__init__(detail)
        self.challenge = _CHALLENGE + (', error="invalid_token"' if invalid else "")

    @property
    def headers(self) -> Mapping[str, str]:
        """The challenge a client answers with a credential."""
        return {"WWW-Authenticate": self.challenge}


class AccessDeniedError(ProblemError):
    """An authenticated principal without the role a route or request needs: 403."""

    type = "urn:promise-engine:problem:forbidden"
    status = 403
    title = "Forbidden"


class RateLimitedError(ProblemError):
    """The principal is over its request rate: 429 with Retry-After."""

    type = "urn:promise-engine:problem:rate-limited"
    status = 429
    title = "Too Many Requests"


KeyLookup = Callable[[str], KeyRecord | None]


class Authenticator:
    """Turns an ``Authorization`` header into a principal, or a 401.

    API keys are looked up in the authority once per ``cache_s`` per worker (unknown ids too),
    so a revocation reaches every worker of every host within ``cache_s``.
    """

    def __init__(
        self,
        lookup: KeyLookup,
        *,
        cache_s: float,
        tokens: TokenVerifier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Look keys up with ``lookup`` (a blocking call, run in a thread)."""
        self._lookup = lookup
        self._cache_s = cache_s
        self._tokens = tokens
        self._clock = clock
        self._keys: dict[str, tuple[float, KeyRecord | None]] = {}
        self._pending: dict[str, anyio.Event] = {}

    async def _record(self, key_id: str) -> KeyRecord | None:
        """The stored key, from the cache while fresh; one lookup at a time per key id.

        When a burst of requests finds a key's entry missing or stale at once (a worker's first
        seconds, or every ``cache_s``), one of them asks the authority and the rest wait for
        its answer: a stampede of lookups would take every database connection from the
        requests that need one.
        """
        while True:
            cached = self._keys.get(key_id)
            if cached is not None and cached[0] > self._clock():
                return cached[1]
            pending = self._pending.get(key_id)
            if pending is None:
                break
            await pending.wait()  # then read its answer, or look up ourselves if it failed
        done = self._pending[key_id] = anyio.Event()
        try:
            record = await anyio.to_thread.run_sync(self._lookup, key_id)
            if len(self._keys) >= MAX_CACHED_KEYS:
                self._keys.clear()
            self._keys[key_id] = (self._clock() + self._cache_s, record)
            return record
        finally:
            del self._pending[key_id]
            done.set()

    async def principal(self, authorization: str | None) -> Principal:
        """The principal the header proves, or NotAuthenticatedError."""
        if not authorization:
            raise NotAuthenticatedError(
                "this route needs a credential: Authorization: Bearer <API key or token>"
            )
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise NotAuthenticatedError(
                "the Authorization header must be 'Bearer <API key or token>'", invalid=True
            )
        parts = key_id_of(credential)
        if parts is not None:
            key_id, secret = parts
            record = await self._record(key_id)
            if record is None or not matches(record, secret):
                raise NotAuthenticatedError("unknown API key", invalid=True)
            if record.revoked_at is not None:
                raise NotAuthenticatedError("the API key was revoked", invalid=True)
            return principal_of(record)
        if self._tokens is None:
            raise NotAuthenticatedError(
                "not an API key of this service (and no token issuer is configured)",
                invalid=True,
            )
        try:
            return self._tokens.verify(credential)
        except TokenError as exc:
            raise NotAuthenticatedError(f"token refused: {exc.reason}", invalid=True) from exc


@dataclasses.dataclass(frozen=True, slots=True)
class RateSettings:
    """The request rate every principal gets unless its key says otherwise."""

    rate_per_s: float
    burst: int


def _networks(cidrs: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parsed network ranges."""
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def access_guard(
    authenticator: Authenticator,
    limiter: RateLimiter,
    rate: RateSettings,
    *,
    open_networks: Iterable[str] = (),
    docs_path: str = "/schema",
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """The app-wide guard: authenticate, check the route's roles, take a rate token."""
    networks = _networks(open_networks)
    docs = Access(roles=frozenset(Scope), network_open=True)

    def from_open_network(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
        client = connection.client
        if not networks or client is None:
            return False
        try:
            address = ipaddress.ip_address(client.host)
        except ValueError:
            return False
        return any(address in network for network in networks)

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        rule: Access | None = handler.opt.get(ACCESS_OPT)
        if rule is None and connection.scope["path"].startswith(docs_path):
            rule = docs  # Litestar's own OpenAPI routes: any role, or an open network
        if rule is not None and rule.public:
            return
        if rule is not None and rule.network_open and from_open_network(connection):
            return
        principal = await authenticator.principal(connection.headers.get("authorization"))
        if rule is None:
            # Fail closed: a route nobody declared access for is nobody's.
            raise AccessDeniedError("this route declares no roles; nobody may call it")
        if rule.roles.isdisjoint(principal.scopes):
            needed = " or ".join(sorted(role.value for role in rule.roles))
            raise AccessDeniedError(f"this route needs the {needed} role")
        limits = principal.limits
        decision = await limiter.take(
            principal.id, limits.rate_per_s or rate.rate_per_s, limits.burst or rate.burst
        )
        if not decision.allowed:
            raise RateLimitedError(
                f"over this caller's request rate; retry in {decision.retry_after_s} s",
                retry_after_s=decision.retry_after_s,
            )
        connection.scope["state"][PRINCIPAL_STATE] = principal

    return guard
