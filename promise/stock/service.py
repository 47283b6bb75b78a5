"""Live inventory and reservations as the HTTP handlers and the promise service call them.

Backend calls block (SQLite, psycopg), so each runs in a worker thread, a bounded number at a
time per process. The snapshot in force comes from the app's :class:`SnapshotSource` (the live
snapshot store), so events and holds are judged on the network the promises are made on; the
authority refuses a write judged under a snapshot that is no longer live, and the service then
catches up and judges again (:meth:`StockService.judged`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from models import ChannelPolicy, PromiseRequest, PromiseResult, ServiceLevel, StockPrices
from promise.access.principal import Principal, Scope
from promise.errors import NotReadyError
from promise.stock._plans import (
    MICROS,
    RESERVATION_KEYS,
    channel_policy,
    hold_limits,
    hold_ttl_us,
    lines_plan,
    memo_plan,
    promise_memo,
    promise_plan,
    request_digest,
    scoped_key,
)
from promise.stock._resourcing_queries import ResourcingQueries
from promise.stock.backend import (
    Clock,
    HoldPlan,
    HoldRecord,
    Key,
    RowOverlay,
    StoredAnswer,
    to_us,
    utc_now,
)
from promise.stock.config import StockSettings
from promise.stock.errors import (
    EventNotFoundError,
    HoldLimitError,
    InsufficientStockError,
    ReservationNotFoundError,
    SnapshotMovedError,
    StockRequestError,
    StockUnavailableError,
    UnknownPromiseError,
    UnknownRowError,
)
from promise.stock.holds import StockRules, shortfalls
from promise.stock.live import LiveInventory
from promise.stock.live_prices import LivePrices
from promise.stock.outbox import OutboxQueries
from promise.stock.schemas import (
    EventBatch,
    EventOutcome,
    EventsAnswer,
    LotView,
    PromiseHold,
    RecordedEvent,
    Reservation,
    ReservationRequest,
    Shortfall,
    StockPosition,
    StockProblem,
)
from promise.stock.snapshots import LiveSnapshot
from promise.stock.sql import StockBackend
from solver import PreparedNetwork
from solver.errors import UnknownChannelError

__all__ = ["SnapshotSource", "StockService"]

log = logging.getLogger(__name__)

T = TypeVar("T")
CREATED = 201
CONFLICT = 409
# Backend calls in flight per worker on the embedded store.
SQLITE_THREADS = 8
# Judgements of one request: a swap landing between them means the snapshot keeps moving.
JUDGE_ATTEMPTS = 3
# A readiness probe answers within this even when the database stays silent (its own
# connect timeout is at least 2 s); a refused or dropped connection fails sooner.
PING_TIMEOUT_S = 1.0
PING_RETRY_AFTER_S = 1


class SnapshotSource(Protocol):
    """The live snapshot of this worker and how to catch up with the authority's pointer."""

    def current(self) -> LiveSnapshot:
        """The snapshot this worker serves now."""
        ...

    async def sync(self, at_least: int | None = None) -> LiveSnapshot:
        """The live snapshot after catching up (to at least generation ``at_least``)."""
        ...


def _owner(principal: Principal | None) -> str | None:
    """Whose holds a caller may see and change: its own, or every one for admins and internals."""
    if principal is None or principal.may(Scope.ADMIN):
        return None
    return principal.id


def _insufficient(short: Sequence[Shortfall]) -> str:
    """The stored problem document of a refused hold (no request id: it is replayed)."""
    return InsufficientStockError(short).document().model_dump_json()


class StockService:
    """Events, holds and the live inventory of one worker process."""

    def __init__(
        self,
        backend: StockBackend,
        settings: StockSettings,
        *,
        snapshots: SnapshotSource,
        clock: Clock = utc_now,
        concurrency: int | None = None,
        outbox: bool = False,
    ) -> None:
        """Serve from ``backend``; ``snapshots`` gives the snapshot in force.

        With ``outbox`` every change is also written to the authority's outbox, with the new
        tiers and ATP per channel of the rows it touched, for a publisher to drain.
        """
        self.backend = backend
        self.settings = settings
        self.snapshots = snapshots
        self._clock = clock
        self.live = LiveInventory(backend, clock, max_staleness_ms=settings.live_max_staleness_ms)
        # The opportunity-cost price table, fenced on its version like the live view.
        self.prices = LivePrices(backend)
        # With PostgreSQL, no more threads than pooled connections: a request waiting on a hot
        # row's lock holds its connection, and threads beyond the pool would time out on it
        # (503) instead of queueing here. SQLite opens one connection per thread.
        if concurrency is None:
            concurrency = settings.pool_size if settings.database_url else SQLITE_THREADS
        self._concurrency = concurrency
        self._limiter: anyio.CapacityLimiter | None = None
        if outbox:
            if not isinstance(backend, OutboxQueries):
                raise TypeError(f"{type(backend).__name__} keeps no outbox")
            backend.outbox_rows = self.row_state

    def row_state(self, key: Key, overlay: RowOverlay, now: int) -> dict[str, Any] | None:
        """A row's published state: tiers and what each channel may still hold (None: unknown).

        Judged on the snapshot this worker serves; called inside the write transaction.
        """
        try:
            rules = self.rules(self.snapshots.current())
        except NotReadyError:
            return None
        if rules.unknown(*key) is not None:
            return None
        tiers = rules.tiers(key, overlay, now)
        return {
            "on_hand": tiers.on_hand,
            "held": tiers.held,
            "in_transit": tiers.in_transit,
            "atp": {
                channel: rules.available(policy, tiers)
                for channel, policy in sorted(rules.policies.items())
            },
        }

    @property
    def clock(self) -> Clock:
        """The clock holds and audit entries are stamped with."""
        return self._clock

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking backend call in a worker thread."""
        if self._limiter is None:
            # Created lazily: an anyio limiter belongs to the event loop that first uses it.
            self._limiter = anyio.CapacityLimiter(self._concurrency)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self._limiter)

    async def state_version(self) -> int:
        """The stock state version (grows with every change a promise could see)."""
        return await self._call(self.backend.state_version)

    async def ping(self, timeout_s: float = PING_TIMEOUT_S) -> None:
        """StockUnavailableError unless the stock store answers a trivial query in ``timeout_s``."""
        # Not on the request limiter: readiness must answer even when every request thread
        # is busy, and a ping stuck on a silent network is abandoned rather than awaited.
        with anyio.move_on_after(timeout_s):
            await anyio.to_thread.run_sync(self.backend.ping, abandon_on_cancel=True)
            return
        raise StockUnavailableError(
            f"the stock database did not answer within {timeout_s} s", PING_RETRY_AFTER_S
        )

    def rules(self, live: LiveSnapshot) -> StockRules:
        """The stock rules of a live snapshot (built when it was loaded)."""
        return live.rules

    async def judged(self, attempt: Callable[[LiveSnapshot, bool], Awaitable[T]]) -> T:
        """Run ``attempt(live, first)``, judging again after the authority moved on.

        ``first`` is true on the first attempt only. A read (a promise, availability) should
        check the generation then; on a later attempt the snapshot caught up to was live when
        the request began, so a swap landing since need not be chased. Writes are checked by
        the authority on every attempt.
        """
        live = self.snapshots.current()
        for attempt_no in range(JUDGE_ATTEMPTS):
            try:
                return await attempt(live, attempt_no == 0)
            except SnapshotMovedError as moved:
                if attempt_no == JUDGE_ATTEMPTS - 1:
                    raise
                live = await self.snapshots.sync(moved.live)
        raise AssertionError("unreachable")

    # --- live inventory for the solver ----------------------------------------------------

    def with_inventory(
        self, live: LiveSnapshot, fn: Callable[[PreparedNetwork], T], *, check: bool = True
    ) -> Callable[[], T]:
        """A call that passes ``live``'s network with live stock to ``fn``, in one thread hop.

        With ``check`` it raises SnapshotMovedError when ``live`` is no longer the authority's
        live snapshot.
        """
        generation = live.generation if check else None
        return lambda: fn(self.live.current(live, generation))

    def with_stock(
        self,
        live: LiveSnapshot,
        fn: Callable[[PreparedNetwork, StockPrices], T],
        *,
        check: bool = True,
    ) -> Callable[[], T]:
        """:meth:`with_inventory`, also passing the price table as new as the stock read.

        The versions that fence the live view fence the price table too: a table written
        before this call is the one ``fn`` gets.
        """
        generation = live.generation if check else None

        def call() -> T:
            network, versions = self.live.read(live, generation)
            prices = self.prices.current(None if versions is None else versions.prices)
            return fn(network, prices)

        return call

    async def network(self) -> PreparedNetwork:
        """The prepared network of the snapshot in force, with live stock."""
        live = self.snapshots.current()
        return await self._call(self.live.current, live, live.generation)

    # --- events ---------------------------------------------------------------------------

    async def apply_events(
        self, batch: EventBatch, principal: Principal | None = None, *, actor: str | None = None
    ) -> EventsAnswer:
        """Record and apply a batch of events; each event's outcome.

        The batch is audited under ``principal`` (an HTTP caller) or ``actor`` (an internal
        one, such as a stream consumer).
        """
        limit = self.settings.max_event_batch
        if len(batch.events) > limit:
            raise StockRequestError(
                f"the batch has {len(batch.events)} events; this service takes at most {limit}",
                ("events",),
            )

        async def attempt(live: LiveSnapshot, _first: bool) -> tuple[tuple[Any, ...], int]:
            rules = self.rules(live)
            return await self._call(
                self.backend.apply_events,
                batch.events,
                rules.unknown,
                self._clock,
                live.generation,
                actor if principal is None else principal.id,
            )

        results, version = await self.judged(attempt)
        counts = dict.fromkeys(EventOutcome, 0)
        for result in results:
            counts[result.outcome] += 1
        return EventsAnswer(
            results=results,
            applied=counts[EventOutcome.APPLIED],
            duplicate=counts[EventOutcome.DUPLICATE],
            stale=counts[EventOutcome.STALE],
            rejected=counts[EventOutcome.REJECTED],
            state_version=version,
        )

    async def recorded_event(self, event_id: str) -> RecordedEvent:
        """An event as the journal recorded it, or EventNotFoundError."""
        found = await self._call(self.backend.recorded_event, event_id)
        if found is None:
            raise EventNotFoundError(event_id)
        return found

    # --- reservations ---------------------------------------------------------------------

    async def _plan(
        self,
        request: ReservationRequest,
        live: LiveSnapshot,
        key: str,
        digest: str,
        principal: Principal | None,
    ) -> tuple[HoldPlan, ChannelPolicy]:
        """The hold a reservation request asks for, validated against the snapshot."""
        rules = self.rules(live)
        fields = {
            "ttl_us": hold_ttl_us(self.settings, request.ttl_s, ("ttl_s",)),
            "idempotency_key": key,
            "request_digest": digest,
            "snapshot_generation": live.generation,
            **hold_limits(self.settings, principal),
        }
        if request.promise_id is None:
            return lines_plan(rules, request, fields)
        promise_id = str(request.promise_id)
        memo = await self._call(self.backend.recall_promise, promise_id, to_us(self._clock()))
        if memo is None:
            raise UnknownPromiseError(
                f"promise {promise_id} is unknown here or older than "
                f"{self.settings.promise_ttl_s} s; promise again",
            )
        return memo_plan(rules, promise_id, json.loads(memo), request.service_level, fields)

    async def _hold(self, plan: HoldPlan, policy: ChannelPolicy, rules: StockRules) -> StoredAnswer:
        """Place a hold under the rows' locks; the stored answer (201 or 409)."""

        def check(overlays: Any, now: int) -> list[Shortfall]:
            return shortfalls(rules, policy, plan.lines, overlays, now)

        def render(
            record: HoldRecord | None, short: Sequence[Shortfall], now: int
        ) -> tuple[int, str]:
            if record is None:
                return CONFLICT, _insufficient(short)
            return CREATED, record.to_reservation(now).model_dump_json()

        return await self._call(self.backend.create_hold, plan, check, render, self._clock)

    async def reserve(
        self,
        request: ReservationRequest,
        idempotency_key: str,
        principal: Principal | None = None,
    ) -> StoredAnswer:
        """Hold a promise option or explicit lines; the answer stored under the key.

        A 201 answer's body is the :class:`Reservation`; a 409's is a :class:`StockProblem`
        listing the shortfalls. The same key with the same body answers the same every time;
        with another body it is a 422. Keys are the principal's own: another caller's key
        neither replays nor blocks its hold.
        """
        key = RESERVATION_KEYS + scoped_key(principal, idempotency_key)
        digest = request_digest(request.model_dump_json())

        async def attempt(live: LiveSnapshot, _first: bool) -> StoredAnswer:
            try:
                plan, policy = await self._plan(request, live, key, digest, principal)
            except StockRequestError:
                # A retry whose request can no longer be planned (the promise it names expired,
                # the network changed) still gets the answer stored under its key; a plannable
                # one is replayed by the hold's own claim of the key.
                stored = await self._call(self.backend.stored_answer, key, digest)
                if stored is None:
                    raise
                return stored
            return await self._hold(plan, policy, self.rules(live))

        return await self.judged(attempt)

    async def reservation(
        self, reservation_id: str, principal: Principal | None = None
    ) -> Reservation:
        """A reservation by id (expiry applied at read time); another caller's is a 404."""
        record = await self._call(self.backend.get_hold, reservation_id)
        owner = _owner(principal)
        if record is None or (owner is not None and record.principal != owner):
            raise ReservationNotFoundError(reservation_id)
        return record.to_reservation(to_us(self._clock()))

    async def confirm(self, reservation_id: str, principal: Principal | None = None) -> Reservation:
        """Make a soft hold firm: 404 unknown, 409 when released, expired or consumed."""
        return await self._transition(self.backend.confirm, reservation_id, principal)

    async def release(self, reservation_id: str, principal: Principal | None = None) -> Reservation:
        """Give a hold or firm reservation back: 404 unknown, 409 when expired or consumed."""
        return await self._transition(self.backend.release, reservation_id, principal)

    async def _transition(
        self,
        move: Callable[..., HoldRecord | None],
        reservation_id: str,
        principal: Principal | None,
    ) -> Reservation:
        """Apply ``move`` (the backend's confirm or release) as ``principal``; 404 when unknown."""
        transition = functools.partial(
            move, actor=None if principal is None else principal.id, owner=_owner(principal)
        )
        record = await self._call(transition, reservation_id, self._clock)
        if record is None:
            raise ReservationNotFoundError(reservation_id)
        return record.to_reservation(to_us(self._clock()))

    async def position(self, node_id: str, sku: str, channel: str) -> StockPosition:
        """Live tiers of one row and what ``channel`` may still hold there (authoritative)."""
        rules = self.rules(await self.snapshots.sync())
        reason = rules.unknown(node_id, sku)
        if reason is not None:
            field = "node_id" if reason.startswith("unknown node") else "sku"
            raise UnknownRowError(reason, (field,))
        policy = rules.policies.get(channel)
        if policy is None:
            raise UnknownChannelError(channel).located(("channel",), source="query")
        key = (node_id, sku)
        changes = await self._call(self.backend.overlays, [key])
        overlay: RowOverlay = changes.rows[key]
        tiers = rules.tiers(key, overlay, to_us(self._clock()))
        return StockPosition(
            node_id=node_id,
            sku=sku,
            channel=channel,
            on_hand=tiers.on_hand,
            reserved=tiers.reserved,
            safety_stock=tiers.safety_stock,
            buffer=rules.buffer(policy, tiers),
            in_transit=tuple(
                LotView(quantity=q, eta=dt.date.fromordinal(eta)) for q, eta in tiers.lots
            ),
            held=tiers.held,
            available=rules.available(policy, tiers),
            state_version=changes.version,
        )

    # --- promises -------------------------------------------------------------------------

    async def remember_promise(self, promise_id: uuid.UUID | str, result: PromiseResult) -> None:
        """Keep a promise answer's allocations so any worker can hold them by promise_id."""
        memo = json.dumps(promise_memo(result), separators=(",", ":"))
        expires_at = to_us(self._clock()) + self.settings.promise_ttl_s * MICROS
        await self._call(self.backend.remember_promise, str(promise_id), memo, expires_at)

    async def promise_and_hold(
        self,
        result: PromiseResult,
        *,
        live: LiveSnapshot,
        promise_id: uuid.UUID | str,
        service_level: ServiceLevel | None = None,
        ttl_s: int | None = None,
        idempotency_key: str | None = None,
        principal: Principal | None = None,
        request: PromiseRequest | None = None,
    ) -> PromiseHold:
        """Hold exactly the allocation of one option of a fresh promise answer.

        The option is ``service_level`` or else the recommended one. The hold is all lines or
        none; when it cannot be placed the answer says which lines fell short (stock taken by
        another checkout since the solve), that the caller's hold limits were reached, or why
        there was nothing to hold. ``live`` is the snapshot the answer was solved on: when
        another has gone live since, the authority refuses the hold with SnapshotMovedError and
        the caller solves again. With ``request`` (the cart the answer is for) the hold keeps
        its order, so that it can be re-sourced later.
        """
        await self.remember_promise(promise_id, result)
        level = service_level or result.recommended
        memo = promise_memo(result)
        lines = None if level is None else memo["options"].get(level.value)
        if level is None or not lines:
            what = f"the {level.value} option" if level else "the answer"
            return PromiseHold(
                held=False, service_level=level, detail=f"nothing to hold: {what} has no shipments"
            )
        rules = self.rules(live)
        policy = channel_policy(rules, result.channel, ("cart", "channel"))
        plan = promise_plan(
            self.settings,
            lines,
            result.channel,
            level,
            promise_id=str(promise_id),
            explicit_level=service_level is not None,
            ttl_s=ttl_s,
            idempotency_key=idempotency_key,
            principal=principal,
            generation=live.generation,
        )
        try:
            answer = await self._hold(plan, policy, rules)
        except HoldLimitError as exc:
            # The promise stands; only the hold is refused, and the answer says why.
            return PromiseHold(held=False, service_level=level, detail=exc.message)
        if answer.status_code == CREATED:
            reservation = Reservation.model_validate_json(answer.body)
            if request is not None and not answer.replayed:
                await self._keep_order(reservation.reservation_id, request, result, level)
            return PromiseHold(held=True, service_level=level, reservation=reservation)
        problem = StockProblem.model_validate_json(answer.body)
        return PromiseHold(
            held=False,
            service_level=level,
            shortfalls=problem.shortfalls,
            detail="stock was taken by another checkout since the promise; nothing was held",
        )

    async def _keep_order(
        self, hold_id: str, request: PromiseRequest, result: PromiseResult, level: ServiceLevel
    ) -> None:
        """Keep the order behind a new hold: the request at its instant and the option held."""
        if not isinstance(self.backend, ResourcingQueries):
            return
        option = next(o for o in result.options if o.service_level is level)
        pinned = request.model_copy(update={"requested_at": result.requested_at})
        await self._call(
            self.backend.record_order,
            hold_id,
            pinned.model_dump_json(),
            option.model_dump_json(),
            self._clock,
        )

    # --- upkeep ---------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Expire lapsed holds and drop stale memos; the number of holds expired."""
        ttl_us = self.settings.idempotency_ttl_s * MICROS
        return await self._call(self.backend.sweep, self._clock, ttl_us)

    async def _sweeper(self) -> None:
        """Sweep every ``sweep_interval_s`` (reads stay right without it: expiry is lazy)."""
        while True:
            await anyio.sleep(self.settings.sweep_interval_s)
            try:
                expired = await self.sweep()
            except Exception:
                log.exception("stock sweep failed; retrying at the next interval")
                continue
            if expired:
                log.info("holds expired", extra={"expired": expired})

    async def sync_prices(self) -> StockPrices:
        """The price table after catching up with the authority's version."""

        def catch_up() -> StockPrices:
            return self.prices.current(self.backend.versions().prices)

        return await self._call(catch_up)

    async def _price_poller(self) -> None:
        """Load new price tables ahead of traffic, every ``prices_poll_ms``."""
        while True:
            await anyio.sleep(self.settings.prices_poll_ms / 1000)
            try:
                await self.sync_prices()
            except Exception as exc:
                # The authority may be down: promises say so with 503s; this only retries.
                log.debug("price table poll failed", extra={"error": str(exc)})

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[StockService]:
        """Run the sweeper and the price poller for the life of the app, then close the backend."""
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._sweeper)
                tasks.start_soon(self._price_poller)
                try:
                    yield self
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            self.backend.close()
