"""HTTP endpoints of live inventory and reservations: thin handlers over :class:`StockService`.

:func:`stock_router` carries the handlers and the ``stock`` dependency for the product app;
``STOCK_EXCEPTION_HANDLERS`` maps this package's errors to problem documents.
:func:`create_stock_app` serves these endpoints alone (tests, benchmarks, a stock-only
deployment) on the snapshot ``promise.settings.Settings`` names.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any, Literal

import pydantic
from litestar import Litestar, MediaType, Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, Parameter
from litestar.types import ExceptionHandlersMap

from models import Snapshot
from promise.errors import (
    PROBLEM_MEDIA_TYPE,
    PROBLEM_TYPE_PREFIX,
    FieldError,
    Problem,
    QueryParameterError,
    ServiceUnavailableError,
    field_error,
    field_errors_from_pydantic,
    problem_kind,
    problem_response,
)
from promise.observe import request_id_of
from promise.settings import Settings
from promise.stock.backend import Clock, utc_now
from promise.stock.config import StockSettings
from promise.stock.errors import IdempotencyKeyReusedError, StockHTTPError
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
from solver.errors import PromiseError

__all__ = [
    "STOCK_EXCEPTION_HANDLERS",
    "create_stock_app",
    "stock_problem",
    "stock_request_problem",
    "stock_router",
]

log = logging.getLogger(__name__)

AnyRequest = Request[Any, Any, Any]
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
    404: "No such reservation or event.",
    409: "The reservation's state does not allow this, or stock is insufficient to hold.",
    413: "The body is larger than this service accepts.",
    422: "A field is invalid, or the request cannot be answered as asked (see errors).",
    503: "The stock database is busy or unreachable; retry after Retry-After seconds.",
}


def _problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem documents a route may answer."""
    return {
        status: ResponseSpec(
            data_container=StockProblem if status in (404, 409) else Problem,
            media_type=PROBLEM_MEDIA_TYPE,
            description=_DESCRIPTIONS[status],
            generate_examples=False,
        )
        for status in statuses
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
    responses=_problems(400, 413, 422, 503),
)
async def post_events(
    data: JSONBody[EventBatch], stock: NamedDependency[StockService]
) -> EventsAnswer:
    """Apply a batch of inventory events."""
    return await stock.apply_events(data)


@get(
    "/v1/inventory/events/{event_id:str}",
    summary="A recorded inventory event",
    tags=["inventory"],
    responses=_problems(404, 503),
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
    responses=_problems(400, 422, 503),
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
        **_problems(400, 409, 413, 422, 503),
    },
)
async def create_reservation(
    data: JSONBody[ReservationRequest],
    stock: NamedDependency[StockService],
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
    answer = await stock.reserve(data, idempotency_key)
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
    responses=_problems(404, 503),
)
async def get_reservation(
    reservation_id: ReservationId, stock: NamedDependency[StockService]
) -> Reservation:
    """Show a reservation (a lapsed hold reads as expired)."""
    return await stock.reservation(reservation_id)


@post(
    "/v1/reservations/{reservation_id:str}/confirm",
    status_code=200,
    summary="Make a hold firm",
    description="A confirmed reservation holds until sale or shipment events consume it.",
    tags=["reservations"],
    responses=_problems(404, 409, 503),
)
async def confirm_reservation(
    reservation_id: ReservationId, stock: NamedDependency[StockService]
) -> Reservation:
    """Confirm a live hold."""
    return await stock.confirm(reservation_id)


@post(
    "/v1/reservations/{reservation_id:str}/release",
    status_code=200,
    summary="Give a hold back",
    tags=["reservations"],
    responses=_problems(404, 409, 503),
)
async def release_reservation(
    reservation_id: ReservationId, stock: NamedDependency[StockService]
) -> Reservation:
    """Release a hold or firm reservation."""
    return await stock.release(reservation_id)


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


# --- errors ---------------------------------------------------------------------------------


def stock_problem(request: AnyRequest, exc: StockHTTPError) -> Response[bytes]:
    """404 and 409 of the stock endpoints as problem documents."""
    problem = StockProblem(
        type=PROBLEM_TYPE_PREFIX + exc.kind,
        title=exc.title,
        status=exc.status_code,
        detail=exc.message,
        shortfalls=getattr(exc, "shortfalls", ()),
        request_id=request_id_of(request.scope),
    )
    return Response(
        content=problem.model_dump_json().encode(),
        status_code=exc.status_code,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def stock_request_problem(request: AnyRequest, exc: PromiseError) -> Response[bytes]:
    """A 422 naming the field at fault, and where it came from (body, query or header)."""
    source: Literal["body", "query", "header"] = "body"
    if isinstance(exc, IdempotencyKeyReusedError):
        source = "header"
    elif isinstance(exc, QueryParameterError):
        source = "query"
    kind = problem_kind(exc)
    errors = [field_error(exc.field, exc.message, kind.replace("-", "_"), source)]
    return problem_response(
        status=422,
        title=kind.replace("-", " ").capitalize(),
        detail=exc.message,
        kind=kind,
        errors=errors if exc.field else [],
        request_id=request_id_of(request.scope),
    )


STOCK_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    StockHTTPError: stock_problem,
    IdempotencyKeyReusedError: stock_request_problem,
}


# --- a stock-only app -----------------------------------------------------------------------


_SOURCES: dict[str, Literal["body", "query", "header", "path"]] = {
    "query": "query",
    "header": "header",
    "path": "path",
}


def _validation_problem(request: AnyRequest, exc: ValidationException) -> Response[bytes]:
    """Invalid fields: 422 with every offending field path."""
    cause: BaseException | None = exc.__cause__
    while cause is not None and not isinstance(cause, pydantic.ValidationError):
        cause = cause.__cause__
    errors: list[FieldError] = []
    if isinstance(cause, pydantic.ValidationError):
        errors = list(field_errors_from_pydantic(cause.errors()))
    for entry in exc.extra if isinstance(exc.extra, list) and not errors else []:
        if isinstance(entry, dict):
            key = str(entry.get("key", ""))
            loc = tuple(int(p) if p.isdigit() else p for p in key.split(".")) if key else ()
            source = _SOURCES.get(str(entry.get("source", "")), "body")
            errors.append(field_error(loc, str(entry.get("message", "")), "invalid", source))
    if not errors:
        errors = [field_error((), exc.detail, "invalid", "body")]
    return problem_response(
        status=422,
        title="Request validation failed",
        detail=f"{len(errors)} invalid field(s): {errors[0].field or 'body'}: {errors[0].message}",
        kind="validation-failed",
        errors=errors,
        request_id=request_id_of(request.scope),
    )


def _unavailable_problem(request: AnyRequest, exc: ServiceUnavailableError) -> Response[bytes]:
    """Busy or unreachable database: 503 with Retry-After."""
    return problem_response(
        status=503,
        title="Service unavailable",
        detail=exc.message,
        kind=problem_kind(exc),
        request_id=request_id_of(request.scope),
        headers={"Retry-After": str(exc.retry_after_s)},
    )


def _http_problem(request: AnyRequest, exc: HTTPException) -> Response[bytes]:
    """Litestar's own HTTP errors (400, 404, 405, 413, ...) as problem documents."""
    status = exc.status_code
    if status >= 500:
        log.error("server error", exc_info=exc)
    return problem_response(
        status=status,
        title=HTTPStatus(status).phrase,
        detail=exc.detail if status < 500 else "an unexpected error occurred",
        request_id=request_id_of(request.scope),
        headers=exc.headers,
    )


def _internal_problem(request: AnyRequest, exc: Exception) -> Response[bytes]:
    """A bug: log it and answer a problem 500 without internals."""
    log.error("unhandled error", exc_info=exc)
    return problem_response(
        status=500,
        title="Internal Server Error",
        detail="an unexpected error occurred",
        kind="internal",
        request_id=request_id_of(request.scope),
    )


@get("/healthz", summary="Liveness", tags=["operations"])
async def stock_healthz(stock: NamedDependency[StockService]) -> dict[str, int]:
    """The process serves HTTP and reads the stock state version."""
    return {"pid": os.getpid(), "state_version": await stock.state_version()}


def create_stock_app(
    settings: Settings,
    stock_settings: StockSettings,
    *,
    initial_snapshot: Callable[[], Snapshot] | None = None,
    clock: Clock = utc_now,
) -> Litestar:
    """An app serving only the stock endpoints on one fixed snapshot."""
    loader = initial_snapshot or _snapshot_loader(settings)
    loaded: list[Snapshot] = []

    async def current() -> Snapshot:
        if not loaded:
            loaded.append(loader())
        return loaded[0]

    stock = StockService.open(stock_settings, snapshot=current, clock=clock)

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        """Load the snapshot before serving; sweep while serving; close at the end."""
        await current()
        async with stock.running():
            yield

    router = stock_router(stock, max_body_bytes=settings.max_body_bytes)
    app = Litestar(
        route_handlers=[router, stock_healthz],
        dependencies={"stock": Provide(lambda: stock, sync_to_thread=False)},
        exception_handlers={
            **STOCK_EXCEPTION_HANDLERS,
            PromiseError: stock_request_problem,
            ServiceUnavailableError: _unavailable_problem,
            ValidationException: _validation_problem,
            HTTPException: _http_problem,
            Exception: _internal_problem,
        },
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="Promise engine: stock", version="1.0.0", path="/schema"
        ),
        debug=False,
        logging_config=None,
    )
    app.state.stock = stock
    return app


def _snapshot_loader(settings: Settings) -> Callable[[], Snapshot]:
    """The snapshot file the settings name, else the embedded demo network."""
    path = settings.snapshot_path
    if path is not None:
        return lambda: Snapshot.model_validate_json(path.read_bytes())

    def demo() -> Snapshot:
        import scenarios  # noqa: PLC0415 - the demo network is only built when it is served

        return scenarios.demo_snapshot()

    return demo
