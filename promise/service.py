"""The promise service: what the HTTP handlers call (no HTTP in here).

Solves run in worker threads (CP-SAT releases the GIL), at most ``max_concurrent_solves`` at a
time per worker, with at most ``max_queued_solves`` more waiting; beyond that the service
answers :class:`~promise.errors.OverloadedError` at once rather than queueing without bound.

A promise's time budget covers the request, not only its solve: it runs from the request's
arrival in the worker, the solve gets what is left of it when it starts, and a request that
waited for a solver thread past its whole budget is answered from the greedy fallback
(status ``fallback``, flagged) instead of being solved late or refused.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import anyio
import anyio.to_thread
from pydantic import ValidationError

import solver
from models import (
    NO_PRICES,
    AvailabilityReport,
    Cart,
    CartLine,
    Destination,
    PromiseRequest,
    PromiseResult,
    Snapshot,
    StockPrices,
)
from promise.access.principal import Principal, Scope
from promise.body_limits import check_inline_snapshot
from promise.capture import CaptureSink
from promise.errors import (
    InvalidDestinationError,
    NotReadyError,
    OverloadedError,
    RequestLimitError,
    SnapshotRejectedError,
)
from promise.metrics import Metrics
from promise.schemas import (
    ConsumerReport,
    PromiseAnswer,
    PromiseBody,
    Readiness,
    SnapshotInfo,
    ValidationAnswer,
)
from promise.settings import Settings
from promise.stock import StockService, StockUnavailableError
from promise.stock.snapshots import LiveSnapshot, SnapshotStore
from solver.errors import PromiseError, UnknownChannelError, UnknownPostalCodeError

__all__ = ["PromiseService", "SolveFn", "SolveGate", "warm_request"]

log = logging.getLogger(__name__)

T = TypeVar("T")
# Lines of the cart that warms the solver on a freshly loaded snapshot.
WARM_LINES = 3
_QUERY_FIELDS: dict[type[PromiseError], tuple[str | int, ...]] = {
    UnknownChannelError: ("channel",),
    UnknownPostalCodeError: ("postal_code",),
}


class SolveFn(Protocol):
    """Signature of ``solver.solve`` (injectable, so tests can hold a solve in flight)."""

    def __call__(
        self,
        request: PromiseRequest,
        network: solver.PreparedNetwork | Snapshot,
        *,
        params: solver.SolveParams | None = None,
        prices: StockPrices = NO_PRICES,
    ) -> PromiseResult:
        """Answer ``request`` on ``network``."""
        ...


class SolveGate:
    """Runs blocking calls in threads, a bounded number at a time, with a bounded queue."""

    def __init__(
        self,
        concurrent: int,
        queued: int,
        *,
        retry_after_s: int,
        on_reject: Callable[[], None] | None = None,
        on_depth: Callable[[float], None] | None = None,
    ) -> None:
        """Allow ``concurrent`` calls in flight and ``queued`` more waiting.

        ``on_depth`` hears +1 when a call is admitted and -1 when it leaves.
        """
        self._concurrent = concurrent
        self._capacity = concurrent + queued
        self._retry_after_s = retry_after_s
        self._on_reject = on_reject
        self._on_depth = on_depth
        self._admitted = 0
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def admitted(self) -> int:
        """Calls running or waiting now."""
        return self._admitted

    async def run(self, call: Callable[[], T]) -> T:
        """Run ``call`` in a thread, or raise OverloadedError when slots and queue are full."""
        if self._admitted >= self._capacity:
            if self._on_reject is not None:
                self._on_reject()
            raise OverloadedError(
                f"all {self._capacity} solve slots and queue places are taken",
                self._retry_after_s,
            )
        if self._limiter is None:
            # Created lazily: an anyio limiter belongs to the event loop that first uses it.
            self._limiter = anyio.CapacityLimiter(self._concurrent)
        self._admitted += 1
        if self._on_depth is not None:
            self._on_depth(1)
        try:
            return await anyio.to_thread.run_sync(call, limiter=self._limiter)
        finally:
            self._admitted -= 1
            if self._on_depth is not None:
                self._on_depth(-1)


def warm_request(snapshot: Snapshot) -> PromiseRequest | None:
    """A small cart of stocked SKUs shipped to the first node's location (None if no stock)."""
    skus: list[str] = []
    for row in snapshot.positions():
        if row.on_hand > row.reserved and row.sku not in skus:
            skus.append(row.sku)
            if len(skus) == WARM_LINES:
                break
    if not skus:
        return None
    node = snapshot.nodes[0]
    lines = tuple(CartLine(line_id=f"warm-{i}", sku=sku, quantity=1) for i, sku in enumerate(skus))
    return PromiseRequest(
        cart=Cart(cart_id="warm-up", channel=snapshot.policies[0].channel, lines=lines),
        destination=Destination(lat=node.location.lat, lon=node.location.lon),
    )


class PromiseService:
    """Promises, availability and snapshot swaps for one worker process."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        store: SnapshotStore,
        stock: StockService,
        solve: SolveFn = solver.solve,
    ) -> None:
        """Wire the settings, metrics, live snapshot store, live stock and solve function."""
        self._settings = settings
        self._metrics = metrics
        self._solve = solve
        self.stock = stock
        self.store = store
        self._params = solver.SolveParams(time_budget_ms=settings.default_time_budget_ms)
        self._gate = SolveGate(
            settings.max_concurrent_solves,
            settings.max_queued_solves,
            retry_after_s=settings.retry_after_s,
            on_reject=metrics.rejections.inc,
            on_depth=metrics.solve_queue.inc,
        )
        self._warmed = False
        self._heap_frozen = False
        self.startup_error: str | None = None
        # Opened in start(), inside the worker process: one capture file per worker.
        self._capture: CaptureSink | None = None
        # The inventory-event consumer's report for /readyz, when this worker runs one.
        self.consumer_health: Callable[[], ConsumerReport] | None = None

    def close(self) -> None:
        """Flush and close the capture sink, if any (at shutdown)."""
        if self._capture is not None:
            self._capture.close()
            log.info("capture closed", extra={"capture": dataclasses.asdict(self._capture.stats)})
            self._capture = None

    @property
    def ready(self) -> bool:
        """Whether the solver is warm and a snapshot is loaded."""
        return self._warmed and self.store.ready

    async def start(self) -> None:
        """Warm the solver and load the start-up snapshot; on failure record why and raise."""
        if self._settings.capture_path is not None:
            self._capture = CaptureSink(self._settings.capture_path)
        try:
            await anyio.to_thread.run_sync(solver.warm_up, abandon_on_cancel=True)
            self._warmed = True
            live = await self.store.start()
            await self._warm_live_view()
        except Exception as exc:
            # /readyz names the reason while an app that warms in the background stays up.
            self.startup_error = f"{type(exc).__name__}: {exc}"
            raise
        self._metrics.snapshot_loads.labels("start").inc()
        log.info("worker ready", extra={"snapshot_version": live.snapshot.version})

    async def _warm_live_view(self) -> None:
        """Build the live view (stock re-indexed into the network) and the price table now.

        Else the first promise of the worker builds them inside its own budget (a few hundred
        ms on the demo network) and answers from the greedy fallback. The authority may be
        down at start-up: then the first promise builds them, as before, or answers 503.
        """
        try:
            await self.stock.network()
            await self.stock.sync_prices()
        except Exception as exc:
            log.warning("live view not built at start-up", extra={"error": str(exc)})

    def warm_snapshot(self, network: solver.PreparedNetwork) -> None:
        """Solve one small cart on a prepared snapshot before it serves, then freeze the heap.

        Freezing moves the long-lived snapshot out of the cyclic garbage collector's view, so
        its full passes stay short instead of landing in the latency tail. Only the first
        freeze collects first (a full pass takes a few hundred ms); a snapshot replaced by a
        swap holds no reference cycles, so reference counting frees it even when frozen.
        """
        snapshot = network.snapshot
        request = warm_request(snapshot)
        if request is not None:
            try:
                self._solve(request, network, params=self._params)
            except PromiseError as exc:
                log.warning("warm-up solve was refused", extra={"reason": exc.message})
            except Exception as exc:
                # A snapshot the engine crashes on would fail every checkout: refuse it.
                log.exception("warm-up solve failed", extra={"snapshot_version": snapshot.version})
                raise SnapshotRejectedError(
                    f"the engine fails on this snapshot ({type(exc).__name__}); not made live"
                ) from exc
        if not self._heap_frozen:
            gc.collect()
            self._heap_frozen = True
        gc.freeze()

    async def readiness(self) -> Readiness:
        """Readiness of this worker, or NotReadyError (also while the stock store is down)."""
        live = self.store.live
        if not self._warmed or live is None:
            detail = self.startup_error or "the solver is warming up or the snapshot is loading"
            raise NotReadyError(detail, self._settings.retry_after_s)
        if self.stock is not None:
            try:
                await self.stock.ping()
            except StockUnavailableError as exc:
                # Every stock or promise request would answer 503 now: take this worker out.
                raise NotReadyError(exc.message, self._settings.retry_after_s) from exc
        report = None if self.consumer_health is None else self.consumer_health()
        return Readiness(
            pid=os.getpid(),
            snapshot_version=live.snapshot.version,
            snapshot_generation=live.generation,
            loaded_at=live.loaded_at,
            consumer=report,
        )

    def check_limits(self, body: PromiseBody, *, principal: Principal | None = None) -> None:
        """Reject requests bigger or slower than this service accepts.

        Inline snapshots are for admins, or for everyone when the setting turns them on.
        """
        limit = self._settings.max_cart_lines
        if len(body.cart.lines) > limit:
            raise RequestLimitError(
                f"the cart has {len(body.cart.lines)} lines; this service accepts at most {limit}",
                ("cart", "lines"),
            )
        budget = self._settings.max_time_budget_ms
        if body.time_budget_ms is not None and body.time_budget_ms > budget:
            raise RequestLimitError(
                f"time_budget_ms {body.time_budget_ms} exceeds the maximum of {budget}",
                ("time_budget_ms",),
            )
        if body.snapshot is not None:
            admin = principal is not None and principal.may(Scope.ADMIN)
            self._check_inline_snapshot(body.snapshot, allowed=admin)

    def _check_inline_snapshot(self, snapshot: Snapshot, *, allowed: bool) -> None:
        """Refuse an inline snapshot unless ``allowed`` or enabled, and within the limits."""
        # The request class ran the same check on the decoded body already (before validation);
        # this one guards callers of the service that bring a validated body of their own.
        settings = self._settings
        check_inline_snapshot(
            enabled=allowed or settings.inline_snapshots,
            max_nodes=settings.max_inline_snapshot_nodes,
            max_rows=settings.max_inline_snapshot_rows,
            nodes=len(snapshot.nodes),
            rows=snapshot.row_count,
        )

    def validate(self, body: PromiseBody, principal: Principal | None = None) -> ValidationAnswer:
        """The framework floor: the body is parsed already; apply the limits, solve nothing."""
        self.check_limits(body, principal=principal)
        return ValidationAnswer(
            cart_id=body.cart.cart_id,
            lines=len(body.cart.lines),
            inline_snapshot=body.snapshot is not None,
        )

    async def _solve_inline(
        self, request: PromiseRequest, snapshot: Snapshot, arrived: float
    ) -> PromiseAnswer:
        """Promise on a snapshot the request carries: its own stock, no holds, no capture."""
        # An inline snapshot is used once: solve() prepares it for this call and forgets it.
        params = dataclasses.replace(self._params, arrived=arrived)
        call = functools.partial(self._solve, request, snapshot, params=params)
        result = await self._gate.run(call)
        self._metrics.observe_solve(result)
        return PromiseAnswer.from_result(result, snapshot_version=snapshot.version)

    async def _solve_live(
        self,
        body: PromiseBody,
        request: PromiseRequest,
        live: LiveSnapshot,
        idempotency_key: str | None,
        *,
        check: bool,
        principal: Principal | None,
        arrived: float,
    ) -> PromiseAnswer:
        """Promise on the live network and live stock, holding the answer when asked to.

        ``check``: refuse (SnapshotMovedError) when ``live`` is no longer the authority's.
        """
        snapshot = live.snapshot
        # The live stock and price table the solve read, for the capture.
        used: list[tuple[solver.PreparedNetwork, StockPrices]] = []
        params = dataclasses.replace(self._params, arrived=arrived)

        def with_live(network: solver.PreparedNetwork, prices: StockPrices) -> PromiseResult:
            """Solve on the live stock and prices and remember which versions they were."""
            used.append((network, prices))
            return self._solve(request, network, params=params, prices=prices)

        result = await self._gate.run(self.stock.with_stock(live, with_live, check=check))
        self._metrics.observe_solve(result)
        if self._capture is not None:
            # Off the request path: a bounded queue that never blocks and never raises.
            network, prices = used[0]
            self._capture.submit(
                request, snapshot, result, inventory=network.inventory, prices=prices
            )
        answer = PromiseAnswer.from_result(result, snapshot_version=snapshot.version)
        if not body.reserve:
            await self.stock.remember_promise(answer.promise_id, result)
            return answer
        held = await self.stock.promise_and_hold(
            result,
            live=live,
            promise_id=answer.promise_id,
            service_level=body.reserve_service_level,
            idempotency_key=idempotency_key,
            principal=principal,
            request=request,
        )
        return answer.model_copy(update={"reservation": held})

    async def promise(
        self,
        body: PromiseBody,
        *,
        idempotency_key: str | None = None,
        principal: Principal | None = None,
        arrived: float | None = None,
    ) -> PromiseAnswer:
        """Source the cart and promise dates; the answer names the snapshot version used.

        On the live network the answer is solved, and held, under one snapshot generation;
        when another goes live meanwhile, the service catches up and solves again.
        The time budget runs from ``arrived`` (``time.perf_counter()``; default: now), so a
        request that waits for a solver thread past its budget gets the greedy fallback.
        """
        if arrived is None:
            arrived = time.perf_counter()
        self.check_limits(body, principal=principal)
        if body.reserve and body.snapshot is not None:
            raise RequestLimitError(
                "reserve holds live stock: omit the inline snapshot", ("reserve",)
            )
        request = body.to_request()
        if body.snapshot is not None:
            return await self._solve_inline(request, body.snapshot, arrived)
        if not self._warmed:
            raise NotReadyError("the solver is warming up", self._settings.retry_after_s)
        return await self.stock.judged(
            lambda live, first: self._solve_live(
                body,
                request,
                live,
                idempotency_key,
                check=first,
                principal=principal,
                arrived=arrived,
            )
        )

    async def availability(
        self,
        skus: Sequence[str],
        channel: str,
        *,
        region: str | None = None,
        postal_code: str | None = None,
        country: str = "US",
    ) -> AvailabilityReport:
        """Tiered availability of ``skus`` for ``channel`` on the live snapshot."""
        destination: Destination | None = None
        if postal_code is not None:
            try:
                destination = Destination(postal_code=postal_code, country=country)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise InvalidDestinationError(str(first["msg"])) from exc

        async def on(live: LiveSnapshot, first: bool) -> AvailabilityReport:
            def report(network: solver.PreparedNetwork) -> AvailabilityReport:
                return solver.availability(
                    network,
                    list(dict.fromkeys(skus)),
                    channel,
                    region=region,
                    destination=destination,
                )

            return await self._gate.run(self.stock.with_inventory(live, report, check=first))

        try:
            return await self.stock.judged(on)
        except PromiseError as exc:
            # The solver names request-body fields; here the same facts are query parameters.
            exc.located(_QUERY_FIELDS.get(type(exc), exc.field[-1:]), source="query")
            raise

    async def snapshot_info(self) -> SnapshotInfo:
        """Version and counts of the live snapshot."""
        return _info(await self.store.sync())

    async def replace_snapshot(
        self, snapshot: Snapshot, content: bytes | None, principal: Principal | None = None
    ) -> SnapshotInfo:
        """Make ``snapshot`` live on every worker; ``content`` is its validated JSON."""
        live = await self.store.replace(
            snapshot, content, actor=None if principal is None else principal.id
        )
        self._metrics.snapshot_loads.labels("swap").inc()
        return _info(live)


def _info(live: LiveSnapshot) -> SnapshotInfo:
    """Version and counts of a live snapshot."""
    snapshot = live.snapshot
    return SnapshotInfo(
        version=snapshot.version,
        as_of=snapshot.as_of,
        token=live.token,
        generation=live.generation,
        digest=live.digest,
        loaded_at=live.loaded_at,
        nodes=len(snapshot.nodes),
        services=len(snapshot.services),
        items=len(snapshot.items),
        inventory_rows=snapshot.row_count,
        policies=len(snapshot.policies),
        channels=tuple(policy.channel for policy in snapshot.policies),
    )
