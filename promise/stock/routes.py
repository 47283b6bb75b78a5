"""HTTP endpoints of live inventory and reservations: thin handlers over :class:`StockService`.

:func:`stock_router` carries the handlers and the ``stock`` dependency for the product app;
the app's one exception handler (``promise.problems``) answers this package's errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from litestar import MediaType, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, Parameter

from models import Problem
from promise.access.principal import Principal, Scope
from promise.access.rules import secured
from promise.errors import PROBLEM_MEDIA_TYPE
from promise.stock.schemas import (
    EventBatch,
    EventsAnswer,
    RecordedEvent,
    Reservation,
    ReservationRequest,
    StockPosition,
    StockProblem,
)
from promise.stock.service import StockService

__all__ = ["problem_responses", "stock_router"]

MIB = 1024 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Ids in paths and queries follow the domain's identifier rule (models.Identifier).
ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
ReservationId = Annotated[
    str,
    Parameter(
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="Id from POST /v1/reservations.",
    ),
]
QueryId = Annotated[str, Parameter(min_length=1, max_length=64, pattern=ID_PATTERN)]
_DESCRIPTIONS = {
    400: "Malformed JSON or an unreadable request.",
    401: "No credential, or one that does not authenticate.",
    403: "The caller lacks the role this route needs.",
    429: "The caller is over its request rate; retry after Retry-After seconds.",
    404: "No such reservation or event.",
    409: "The reservation's state does not allow this, stock is insufficient to hold, or "
    "the hold would exceed the caller's open-hold or held-unit limit.",
    413: "The body is larger than this service accepts.",
    415: "The body is not JSON (application/json or application/*+json).",
    422: "A field is invalid, or the request cannot be answered as asked (see errors).",
    503: "The stock database is busy or unreachable; retry after Retry-After seconds.",
}


def problem_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem documents a route may answer (401, 403, 429 always).

    404 and 409 are the stock errors' documents (``StockProblem``), the rest plain problems;
    ``descriptions`` replaces the default text of some statuses.
    """
    said = {**_DESCRIPTIONS, **(descriptions or {})}
    return {
        status: ResponseSpec(
            data_container=StockProblem if status in (404, 409) else Problem,
            media_type=PROBLEM_MEDIA_TYPE,
            description=said[status],
            generate_examples=False,
        )
        for status in (*statuses, 401, 403, 429)
    }


# --- handlers -------------------------------------------------------------------------------


@post(
    "/v1/inventory/events",
    status_code=200,
    summary="Record inventory events",
    description=(
        "Applies a batch of stock events exactly once each (by event_id). Duplicates are "
        "ignored; a count older than the last applied one, or a delta already in a newer "
        "count, is recorded but not applied; deltas apply in any order. Each event's outcome "
        "is in the answer, in order."
    ),
    tags=["inventory"],
    responses=problem_responses(400, 413, 415, 422, 503),
    **secured(Scope.INVENTORY),
)
async def post_events(
    data: JSONBody[EventBatch],
    stock: NamedDependency[StockService],
    principal: NamedDependency[Principal],
) -> EventsAnswer:
    """Apply a batch of inventory events (audited under the caller)."""
    return await stock.apply_events(data, principal)


@get(
    "/v1/inventory/events/{event_id:str}",
    summary="A recorded inventory event",
    tags=["inventory"],
    responses=problem_responses(404, 422, 503),
    **secured(Scope.INVENTORY),
)
async def get_event(
    event_id: Annotated[str, Parameter(min_length=1, max_length=64, pattern=ID_PATTERN)],
    stock: NamedDependency[StockService],
) -> RecordedEvent:
    """Show how an event was recorded."""
    return await stock.recorded_event(event_id)


@get(
    "/v1/inventory/positions",
    summary="Live tiers of one SKU at one node",
    description="On hand, reserved, holds and what the channel may still hold, from the ledger.",
    tags=["inventory"],
    responses=problem_responses(400, 422, 503),
    **secured(Scope.INVENTORY),
)
async def get_position(
    *,
    stock: NamedDependency[StockService],
    node_id: QueryId,
    sku: QueryId,
    channel: QueryId = "web",
) -> StockPosition:
    """Report one live position."""
    return await stock.position(node_id, sku, channel)


@post(
    "/v1/reservations",
    status_code=201,
    summary="Hold stock",
    description=(
        "Places a soft hold with a TTL on a promise option (promise_id and service_level) or "
        "on explicit lines, all lines or none, never beyond what the channel may promise. "
        "Requires an Idempotency-Key: a retry with the same key and body gets the same answer; "
        "the same key with another body is a 422."
    ),
    tags=["reservations"],
    responses={
        201: ResponseSpec(
            data_container=Reservation,
            description="The hold was placed.",
            generate_examples=False,
        ),
        **problem_responses(400, 409, 413, 415, 422, 503),
    },
    **secured(Scope.RESERVE),
)
async def create_reservation(
    data: JSONBody[ReservationRequest],
    stock: NamedDependency[StockService],
    principal: NamedDependency[Principal],
    idempotency_key: Annotated[
        str,
        HeaderParameter(
            name=IDEMPOTENCY_HEADER,
            min_length=1,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Unique per intended hold (printable ASCII); retries reuse it.",
        ),
    ],
) -> Response[bytes]:
    """Hold stock; the answer stored under the Idempotency-Key."""
    answer = await stock.reserve(data, idempotency_key, principal)
    created = answer.status_code == 201
    return Response(
        content=answer.body.encode(),
        status_code=answer.status_code,
        media_type=MediaType.JSON if created else PROBLEM_MEDIA_TYPE,
        headers={"Idempotent-Replayed": "true" if answer.replayed else "false"},
    )


@get(
    "/v1/reservations/{reservation_id:str}",
    summary="A reservation",
    tags=["reservations"],
    responses=problem_responses(404, 422, 503),
    **secured(Scope.RESERVE),
)
async def get_reservation(
    reservation_id: ReservationId,
    stock: NamedDependency[StockService],
    principal: NamedDependency[Principal],
) -> Reservation:
    """Show one of the caller's reservations (a lapsed hold reads as expired)."""
    return await stock.reservation(reservation_id, principal)


@post(
    "/v1/reservations/{reservation_id:str}/confirm",
    status_code=200,
    summary="Make a hold firm",
    description="A confirmed reservation holds until sale or shipment events consume it.",
    tags=["reservations"],
    responses=problem_responses(404, 409, 422, 503),
    **secured(Scope.RESERVE),
)
async def confirm_reservation(
    reservation_id: ReservationId,
    stock: NamedDependency[StockService],
    principal: NamedDependency[Principal],
) -> Reservation:
    """Confirm one of the caller's live holds."""
    return await stock.confirm(reservation_id, principal)


@post(
    "/v1/reservations/{reservation_id:str}/release",
    status_code=200,
    summary="Give a hold back",
    tags=["reservations"],
    responses=problem_responses(404, 409, 422, 503),
    **secured(Scope.RESERVE),
)
async def release_reservation(
    reservation_id: ReservationId,
    stock: NamedDependency[StockService],
    principal: NamedDependency[Principal],
) -> Reservation:
    """Release one of the caller's holds or firm reservations."""
    return await stock.release(reservation_id, principal)


ROUTE_HANDLERS = [
    post_events,
    get_event,
    get_position,
    create_reservation,
    get_reservation,
    confirm_reservation,
    release_reservation,
]


def stock_router(stock: StockService, *, max_body_bytes: int = 4 * MIB) -> Router:
    """The stock endpoints with their ``stock`` dependency, for ``Litestar(route_handlers=...)``."""
    return Router(
        path="/",
        route_handlers=ROUTE_HANDLERS,
        dependencies={"stock": Provide(lambda: stock, sync_to_thread=False)},
        request_max_body_size=max_body_bytes,
    )
