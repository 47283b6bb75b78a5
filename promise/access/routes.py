"""HTTP endpoints of API keys (admin) and the audit trail (admin or analyst)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import anyio.to_thread
from litestar import Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter, QueryParameter

from promise.access.keys import make_key
from promise.access.principal import Limits, Principal, Scope
from promise.access.rules import secured
from promise.access.schemas import (
    AuditPage,
    CreatedKey,
    KeyRequest,
    KeyView,
    audit_view,
    key_view,
)
from promise.stock.backend import to_us
from promise.stock.errors import StockHTTPError
from promise.stock.routes import problem_responses
from promise.stock.service import StockService
from promise.stock.sql import StockBackend
from solver.errors import PromiseError

__all__ = ["InvalidInstantError", "KeyNotFoundError", "access_router"]

MAX_AUDIT_PAGE = 1000


class KeyNotFoundError(StockHTTPError):
    """No API key has this id."""

    type = "urn:promise-engine:problem:key-not-found"
    status = 404
    title = "API key not found"

    def __init__(self, key_id: str) -> None:
        """Name the id that was not found."""
        super().__init__(f"no API key {key_id!r}")


class InvalidInstantError(PromiseError):
    """The since query parameter is not an ISO 8601 instant."""

    type = "urn:promise-engine:problem:invalid-instant"
    status = 422
    title = "Invalid instant"
    field = ("since",)
    source = "query"


KeyId = Annotated[str, Parameter(min_length=16, max_length=16, pattern=r"^[0-9a-f]{16}$")]
_KEY_NOT_FOUND = {404: "No API key has this id."}


@get(
    "/v1/keys",
    summary="API keys",
    tags=["access"],
    responses=problem_responses(503),
    **secured(Scope.ADMIN),
)
async def list_keys(stock: NamedDependency[StockService]) -> list[KeyView]:
    """Every API key, oldest first (never a secret)."""
    records = await anyio.to_thread.run_sync(stock.backend.keys)
    return [KeyView.model_validate(key_view(record)) for record in records]


@post(
    "/v1/keys",
    status_code=201,
    summary="Make an API key",
    description="The answer is the only place the key's plaintext ever appears.",
    tags=["access"],
    responses=problem_responses(400, 413, 415, 422, 503),
    **secured(Scope.ADMIN),
)
async def create_key(
    data: JSONBody[KeyRequest],
    stock: NamedDependency[StockService],
    principal: NamedDependency[Principal],
) -> CreatedKey:
    """Make a key with the roles and limits asked for (audited under the caller)."""
    made = make_key(
        data.name,
        data.scopes,
        created_by=principal.id,
        limits=Limits.of(data),
    )
    backend: StockBackend = stock.backend
    stored = await anyio.to_thread.run_sync(backend.create_key, made.record, stock.clock)
    return CreatedKey.model_validate({**key_view(stored), "key": made.plaintext})


@post(
    "/v1/keys/{key_id:str}/revoke",
    status_code=200,
    summary="Revoke an API key",
    description="Every worker of every host refuses it within PROMISE_AUTH_KEY_CACHE_S.",
    tags=["access"],
    responses=problem_responses(404, 422, 503, descriptions=_KEY_NOT_FOUND),
    **secured(Scope.ADMIN),
)
async def revoke_key(
    key_id: KeyId,
    stock: NamedDependency[StockService],
    principal: NamedDependency[Principal],
) -> KeyView:
    """Revoke a key (audited under the caller); a revoked one stays as it was."""
    record = await anyio.to_thread.run_sync(
        stock.backend.revoke_key, key_id, principal.id, stock.clock
    )
    if record is None:
        raise KeyNotFoundError(key_id)
    return KeyView.model_validate(key_view(record))


@get(
    "/v1/audit",
    summary="The audit trail",
    description="Who swapped snapshots, applied events, made keys and made or changed holds.",
    tags=["access"],
    responses=problem_responses(422, 503),
    **secured(Scope.ADMIN, Scope.ANALYST),
)
async def audit_trail(
    *,
    stock: NamedDependency[StockService],
    # Text parsed here: Litestar's own datetime parameters also take numbers ("-98") as Unix
    # times, which the documented date-time format does not allow.
    since: Annotated[
        str | None,
        QueryParameter(
            description="From this instant (RFC 3339, e.g. 2026-11-30T15:00:00Z; UTC if it has "
            "no offset).",
            format="date-time",
            min_length=1,
            max_length=64,
        ),
    ] = None,
    # Named apart from the caller's own principal (a dependency), but queried as ?principal=.
    of_principal: Annotated[
        str | None, QueryParameter(name="principal", min_length=1, max_length=80)
    ] = None,
    action: Annotated[str | None, Parameter(min_length=1, max_length=40)] = None,
    limit: Annotated[int, Parameter(ge=1, le=MAX_AUDIT_PAGE)] = 100,
) -> AuditPage:
    """Audit entries from ``since``, oldest first, by principal and action prefix."""
    since_us = None if since is None else to_us(_instant(since))
    entries = await anyio.to_thread.run_sync(
        lambda: stock.backend.audit_trail(
            since=since_us,
            principal=of_principal,
            action=action,
            limit=limit,
        )
    )
    return AuditPage(entries=tuple(audit_view(entry) for entry in entries))


def _instant(text: str) -> dt.datetime:
    """An ISO 8601 instant (RFC 3339's lower-case t and z too), UTC without an offset."""
    try:
        moment = dt.datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise InvalidInstantError(
            f"since must be an instant such as 2026-11-30T15:00:00Z, not {text!r}"
        ) from exc
    return moment.replace(tzinfo=moment.tzinfo or dt.UTC)


def access_router(stock: StockService, *, max_body_bytes: int) -> Router:
    """The key and audit endpoints with their ``stock`` dependency."""
    return Router(
        path="/",
        route_handlers=[list_keys, create_key, revoke_key, audit_trail],
        dependencies={"stock": Provide(lambda: stock, sync_to_thread=False)},
        request_max_body_size=max_body_bytes,
    )
