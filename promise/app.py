"""The Litestar app: thin handlers over :class:`~promise.service.PromiseService`.

Each handler validates (Litestar parses the body into the pydantic types), calls the service
injected with ``Provide`` and returns its answer. Every error becomes an RFC 9457 problem
document through the app's one exception handler, :func:`promise.problems.problem_handler`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
from litestar import Litestar, MediaType, Request, Response, Router, get, post, put
from litestar.config.cors import CORSConfig
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import HeaderParameter, JSONBody, Parameter

from models import AvailabilityReport, Snapshot
from promise.access.guard import (
    PRINCIPAL_STATE,
    AccessDeniedError,
    Authenticator,
    RateSettings,
    access_guard,
)
from promise.access.principal import Principal, Scope
from promise.access.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from promise.access.routes import access_router
from promise.access.rules import SECURITY_SCHEME, public, secured
from promise.access.tokens import TokenSettings, TokenVerifier
from promise.body_limits import body_opt, one_body_at_a_time, promise_body_opt
from promise.events.backbone import Backbone
from promise.events.config import EventSettings
from promise.events.metrics import EventMetrics
from promise.http_rules import JsonRequest, json_bodies_only
from promise.metrics import MULTIPROC_ENV, Metrics
from promise.metrics_dir import hold as hold_metrics_dir
from promise.observe import (
    SNAPSHOT_VERSION_KEY,
    SOLVE_STATUS_KEY,
    ObservedLitestar,
    arrival_of,
    request_id_of,
)
from promise.openapi import ExactJsonRenderPlugin, ExactSwaggerRenderPlugin
from promise.pricing.config import PricingSettings
from promise.pricing.job import PricingJob
from promise.pricing.metrics import PricingMetrics
from promise.pricing.routes import prices_router
from promise.pricing.service import PriceService
from promise.problems import problem_handler
from promise.reoptimise import reoptimise_router
from promise.schemas import (
    ConsumerReport,
    Health,
    PromiseAnswer,
    PromiseBody,
    Readiness,
    SnapshotInfo,
    ValidationAnswer,
)
from promise.service import PromiseService, SolveFn
from promise.settings import Settings
from promise.stock import (
    StockService,
    StockSettings,
    open_backend,
    stock_router,
)
from promise.stock.routes import problem_responses
from promise.stock.snapshots import SnapshotStore

__all__ = ["create_app", "serve_app"]

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
# Listing pages ask for a page of SKUs at a time; more is a crawl, not a listing.
MAX_AVAILABILITY_SKUS = 200
AnyRequest = Request[Any, Any, Any]
# Where the promise routes' problems differ from the stock routes' wording.
_PROMISE_DESCRIPTIONS = {
    403: "The caller lacks the role this route or request needs.",
    503: "Not ready or overloaded; retry after the Retry-After header's seconds.",
}


def _problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem documents a promise route may answer."""
    return problem_responses(*statuses, descriptions=_PROMISE_DESCRIPTIONS)


def _annotate(request: AnyRequest, *, solve_status: str | None, snapshot_version: str) -> None:
    """Hand the solve status and snapshot version to the access log line."""
    state: dict[str, Any] = request.scope["state"]
    state[SOLVE_STATUS_KEY] = solve_status
    state[SNAPSHOT_VERSION_KEY] = snapshot_version


# --- handlers -------------------------------------------------------------------------------


@post(
    "/v1/promise",
    status_code=200,
    summary="Promise a cart",
    description=(
        "Sources the cart across nodes and carrier services and promises delivery dates, one "
        "option per service level. Uses the live snapshot unless the body carries one."
    ),
    tags=["promise"],
    responses=_problems(400, 413, 415, 422, 503),
    **secured(Scope.PROMISE, Scope.RESERVE),
)
async def promise_cart(
    data: JSONBody[PromiseBody],
    service: NamedDependency[PromiseService],
    principal: NamedDependency[Principal],
    request: AnyRequest,
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="With reserve: true, retries with this key hold only once.",
        ),
    ] = None,
) -> PromiseAnswer:
    """Answer a promise request (holding it too needs the reserve role)."""
    needed = Scope.RESERVE if data.reserve else Scope.PROMISE
    if not principal.may(needed):
        what = "a promise with reserve: true" if data.reserve else "a promise"
        raise AccessDeniedError(f"{what} needs the {needed.value} role")
    answer = await service.promise(
        data,
        idempotency_key=idempotency_key,
        principal=principal,
        arrived=arrival_of(request.scope),
    )
    for error in answer.solver.model_errors:
        # The answer stands (greedy fallback), but a refused model is a bug to fix.
        log.error(
            "solver model error",
            extra={"request_id": request_id_of(request.scope), "model_error": error},
        )
    _annotate(
        request, solve_status=answer.solver.status.value, snapshot_version=answer.snapshot_version
    )
    return answer


@post(
    "/v1/promise/validate",
    status_code=200,
    summary="Validate a promise request without solving",
    description="Parses and checks the same body as POST /v1/promise; the framework floor.",
    tags=["promise"],
    responses=_problems(400, 413, 415, 422),
    **secured(Scope.PROMISE),
)
async def validate_cart(
    data: JSONBody[PromiseBody],
    service: NamedDependency[PromiseService],
    principal: NamedDependency[Principal],
) -> ValidationAnswer:
    """Validate a promise request."""
    return service.validate(data, principal)


@get(
    "/v1/availability",
    summary="Tiered availability of SKUs",
    description="Stock tiers per node, per region and in total, for one channel.",
    tags=["availability"],
    responses=_problems(400, 422, 503),
    **secured(Scope.PROMISE),
)
async def availability(
    *,
    service: NamedDependency[PromiseService],
    request: AnyRequest,
    sku: Annotated[
        list[str],
        Parameter(
            description="SKU to report; repeat the parameter for several.",
            min_items=1,
            max_items=MAX_AVAILABILITY_SKUS,
        ),
    ],
    channel: Annotated[str, Parameter(min_length=1, max_length=64)] = "web",
    region: Annotated[str | None, Parameter(min_length=1, max_length=32)] = None,
    postal_code: Annotated[str | None, Parameter(min_length=3, max_length=10)] = None,
    country: Annotated[str, Parameter(min_length=2, max_length=2)] = "US",
) -> AvailabilityReport:
    """Report availability of the requested SKUs."""
    report = await service.availability(
        sku, channel, region=region, postal_code=postal_code, country=country
    )
    _annotate(request, solve_status=None, snapshot_version=report.snapshot_version)
    return report


@get(
    "/v1/snapshot",
    summary="Version and counts of the live snapshot",
    tags=["snapshot"],
    responses=_problems(503),
    **secured(Scope.PROMISE, Scope.ADMIN, Scope.ANALYST),
)
async def get_snapshot(service: NamedDependency[PromiseService]) -> SnapshotInfo:
    """Describe the live snapshot."""
    return await service.snapshot_info()


@put(
    "/v1/snapshot",
    status_code=200,
    summary="Replace the live snapshot",
    description=(
        "Validates the snapshot and makes it live on every worker atomically: a promise in "
        "flight finishes on the snapshot it started with; every promise that starts after this "
        "call returned sees the new one."
    ),
    tags=["snapshot"],
    responses=_problems(400, 413, 415, 422, 503),
    **secured(Scope.ADMIN),
)
async def put_snapshot(
    data: JSONBody[Snapshot],
    service: NamedDependency[PromiseService],
    principal: NamedDependency[Principal],
    request: AnyRequest,
) -> SnapshotInfo:
    """Swap the live snapshot (audited under the caller)."""
    # The body was read to parse it; writing those exact bytes spares a second serialisation.
    content = await request.body()
    return await service.replace_snapshot(data, content, principal)


@get("/healthz", summary="Liveness", tags=["operations"], **public())
async def healthz() -> Health:
    """Liveness: 200 with the worker's pid whenever the process answers HTTP at all.

    A served worker listens only once its start-up (solver warm, snapshot loaded) completed,
    so it answers nothing before; an in-process app that warms in the background answers here
    during warm-up too. Restart a process that stops answering.
    """
    return Health(pid=os.getpid())


@get(
    "/readyz",
    summary="Readiness",
    tags=["operations"],
    responses={503: _problems(503)[503]},
    **public(),
)
async def readyz(service: NamedDependency[PromiseService]) -> Readiness:
    """Readiness: 200 once warm, loaded and the stock store answers, else 503 not-ready.

    The 503 carries Retry-After and, after a failed start-up, its reason. A served worker
    starts listening only once warm and loaded (and exits if start-up fails), so only
    in-process apps built with ``warm_in_background`` answer the warming-up 503.
    """
    return await service.readiness()


@get(
    "/metrics",
    summary="Prometheus metrics",
    tags=["operations"],
    media_type=MediaType.TEXT,
    # A caller from an open network reads without a credential and without a rate limit;
    # any other caller is authenticated and rate limited like on every route.
    responses=_problems(),
    **secured(Scope.ADMIN, Scope.ANALYST, network_open=True),
)
async def metrics_text(metrics: NamedDependency[Metrics]) -> Response[bytes]:
    """Metrics of every worker in the Prometheus text format."""
    body, content_type = metrics.render()
    # Litestar appends the charset to text types itself.
    media_type = content_type.replace("; charset=utf-8", "")
    return Response(content=body, media_type=media_type)


# --- the app --------------------------------------------------------------------------------


def _default_snapshot(settings: Settings) -> Callable[[], Snapshot]:
    """Loader of the start-up snapshot: the file given, else the embedded demo network."""
    path = settings.snapshot_path
    if path is not None:
        return lambda: Snapshot.model_validate_json(path.read_bytes())

    def demo() -> Snapshot:
        import scenarios  # noqa: PLC0415 - the demo network is only built when it is served

        # Generated afresh rather than taken from the process-wide cache, so that it can be
        # freed once a swap replaces it.
        return scenarios.generate_network()

    return demo


def _principal(request: AnyRequest) -> Principal:
    """The principal the access guard authenticated for this request."""
    principal: Principal = request.scope["state"][PRINCIPAL_STATE]
    return principal


def _token_verifier(settings: Settings) -> TokenVerifier | None:
    """The bearer-token verifier the settings configure, if any."""
    if settings.jwt_public_key_file is None and settings.jwt_jwks_file is None:
        return None
    assert settings.jwt_audience is not None  # the settings validator ensures it
    return TokenVerifier(
        TokenSettings(
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            public_key_file=settings.jwt_public_key_file,
            jwks_file=settings.jwt_jwks_file,
        )
    )


def _rate_limiter(settings: Settings) -> RateLimiter:
    """Shared buckets in Redis when a URL is set, else this worker's own."""
    if settings.rate_limit_redis_url:
        return RedisRateLimiter(
            settings.rate_limit_redis_url, timeout_s=settings.rate_limit_redis_timeout_ms / 1000
        )
    return LocalRateLimiter()


def _consumer_report(backbone: Backbone) -> ConsumerReport:
    """The consumer's health as /readyz reports it."""
    health = backbone.health
    return ConsumerReport.model_validate(dataclasses.asdict(health))


def create_app(
    settings: Settings,
    *,
    initial_snapshot: Callable[[], Snapshot] | None = None,
    solve: SolveFn | None = None,
    stock_settings: StockSettings | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    warm_in_background: bool = False,
    event_settings: EventSettings | None = None,
    pricing_settings: PricingSettings | None = None,
) -> Litestar:
    """Build the app; the keyword arguments replace the defaults in tests.

    ``initial_snapshot`` loads the start-up network, ``solve`` stands in for the engine,
    ``stock_settings`` picks the stock store (default: from the environment) and ``clock``
    is the reservations' clock, ``event_settings`` the event backbone's (default: from the
    environment), ``pricing_settings`` the re-pricing job's (default: from the environment).
    The lifespan's start-up warms the solver and loads the
    snapshot before it completes (uvicorn listens only then), and fails if either fails;
    ``warm_in_background`` completes it at once instead, answering 503 until warm.
    """
    metrics = Metrics()
    service_kwargs: dict[str, Any] = {} if solve is None else {"solve": solve}
    clock_kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    stock_settings = stock_settings or StockSettings.from_env(data_dir=settings.data_dir)
    backend = open_backend(stock_settings)
    store = SnapshotStore(
        backend,
        initial=initial_snapshot or _default_snapshot(settings),
        # Late bound: the service (which warms with its own solve function) is built below.
        warm=lambda prepared: service.warm_snapshot(prepared),  # noqa: PLW0108
        retry_after_s=settings.retry_after_s,
        poll_interval_s=settings.snapshot_poll_ms / 1000,
        on_reload=lambda _live: metrics.snapshot_loads.labels("reload").inc(),
        **clock_kwargs,
    )
    events = event_settings or EventSettings.from_env()
    stock = StockService(
        backend, stock_settings, snapshots=store, outbox=events.events_publish, **clock_kwargs
    )
    service = PromiseService(settings, metrics, store=store, stock=stock, **service_kwargs)
    pricing = pricing_settings or PricingSettings.from_env()
    pricing_metrics = PricingMetrics(metrics.registry)
    stock.prices.on_load = lambda prices: pricing_metrics.version.set(prices.version)
    job = None
    if pricing.enabled:
        job = PricingJob(
            backend,
            pricing,
            data_dir=stock_settings.data_dir,
            metrics=pricing_metrics,
            **clock_kwargs,
        )
    backbone: Backbone | None = None
    if events.any:
        backbone = Backbone(events, stock, EventMetrics(metrics.registry))
        if events.events_consume:
            service.consumer_health = functools.partial(_consumer_report, backbone)
    authenticator = Authenticator(
        backend.key, cache_s=settings.auth_key_cache_s, tokens=_token_verifier(settings)
    )
    limiter = _rate_limiter(settings)
    guard = access_guard(
        authenticator,
        limiter,
        RateSettings(rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst),
        open_networks=settings.open_network_list(),
    )

    async def start(*, fatal: bool) -> None:
        """Warm and load; a failure ends the worker (``fatal``) or leaves the app unready."""
        try:
            await service.start()
        except Exception as exc:
            # Either way the log tells the operator; unready, /readyz also gives the reason.
            reason = f"{type(exc).__name__}: {exc}"
            message = (
                "start-up failed; the worker exits"
                if fatal
                else "start-up failed; the app stays unready"
            )
            log.exception(message, extra={"reason": reason})
            if fatal:
                raise

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        """Start the stock store, then warm up and load (see ``warm_in_background``)."""
        async with stock.running(), anyio.create_task_group() as tasks:
            tasks.start_soon(store.follow)
            if job is not None:
                tasks.start_soon(job.run)
            if backbone is not None:
                # Events wait (handed back, retried) until the snapshot is loaded.
                tasks.start_soon(backbone.run)
            try:
                if warm_in_background:
                    tasks.start_soon(functools.partial(start, fatal=False))
                else:
                    await start(fatal=True)
                yield
            finally:
                tasks.cancel_scope.cancel()
                service.close()
                await limiter.aclose()

    small_bodies = Router(
        path="/",
        route_handlers=[
            promise_cart,
            validate_cart,
            availability,
            healthz,
            readyz,
            metrics_text,
        ],
        request_max_body_size=settings.max_body_bytes,
        # Also refuses an inline snapshot that is off or too large before it is validated.
        opt=promise_body_opt(settings),
    )
    snapshot_bodies = Router(
        path="/",
        route_handlers=[get_snapshot, put_snapshot],
        request_max_body_size=settings.max_snapshot_bytes,
        opt=body_opt(settings.max_snapshot_memory_mib),
        # Concurrent uploads would each hold a network: one at a time (promise.body_limits).
        middleware=[one_body_at_a_time],
    )
    origins = settings.cors_allow_list()
    app = ObservedLitestar(
        route_handlers=[
            small_bodies,
            snapshot_bodies,
            stock_router(stock, max_body_bytes=settings.max_body_bytes),
            access_router(stock, max_body_bytes=settings.max_body_bytes),
            reoptimise_router(stock, max_body_bytes=settings.max_body_bytes),
            prices_router(PriceService(stock), max_body_bytes=settings.max_body_bytes),
        ],
        dependencies={
            "service": Provide(lambda: service, sync_to_thread=False),
            "metrics": Provide(lambda: metrics, sync_to_thread=False),
            "principal": Provide(_principal, sync_to_thread=False),
        },
        # One handler for every error: problems, Litestar's own errors and bugs alike.
        exception_handlers={Exception: problem_handler},
        lifespan=[lifespan],
        # Who first: an anonymous caller learns nothing, not even that its body is not JSON.
        guards=[guard, json_bodies_only],
        request_class=JsonRequest,
        # Every route's body memory budget unless its router sets another (promise.body_limits).
        opt=body_opt(settings.max_body_memory_mib),
        # Off unless origins are listed: browsers of other sites get no CORS grant by default.
        cors_config=CORSConfig(allow_origins=list(origins)) if origins else None,
        openapi_config=OpenAPIConfig(
            title="Promise engine",
            version=API_VERSION,
            description=(
                "Omnichannel promise engine: sources carts across DCs and stores and promises "
                "delivery dates. Errors are RFC 9457 problem documents."
            ),
            path="/schema",
            components=Components(
                security_schemes={
                    SECURITY_SCHEME: SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description=(
                            "An API key (pe_...) from `promise keys create`, or a JWT of the "
                            "configured issuer. Each operation lists the roles (scopes) any "
                            "one of which lets a caller in."
                        ),
                    )
                }
            ),
            render_plugins=[
                ScalarRenderPlugin(),
                ExactSwaggerRenderPlugin(),
                ExactJsonRenderPlugin(),
            ],
        ),
        debug=False,
        # Logging is configured once per process (JSON lines); Litestar must not replace it.
        logging_config=None,
    )
    app.metrics = metrics
    app.state.service = service
    return app


def serve_app() -> Litestar:
    """The app of one uvicorn worker, configured from ``PROMISE_*`` environment variables."""
    from promise.logs import configure_logging  # noqa: PLC0415
    from promise.stock.pg_pool import wait_for_database  # noqa: PLC0415

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    # The worker's event loop shares the GIL with its solve threads (promise.settings).
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    multiproc_dir = os.environ.get(MULTIPROC_ENV)
    if multiproc_dir:
        # Keeps this server's metrics directory alive even if the parent dies before us.
        hold_metrics_dir(Path(multiproc_dir))
    stock_settings = StockSettings.from_env(data_dir=settings.data_dir)
    problem = wait_for_database(stock_settings)
    if problem is not None:
        raise SystemExit(f"worker exits: {problem}")
    return create_app(settings, stock_settings=stock_settings)
