"""What a request body may cost a worker, judged from its raw bytes before it is decoded.

A JSON body is decoded into Python objects and then validated into models, and both can take
far more memory than the body's bytes: three bytes ``{},`` decode to a 64-byte dict and, in a
list of models, validate into a model instance of about a kilobyte. Before decoding, the request
class (:class:`promise.http_rules.JsonRequest`) counts the body's ``{``, ``[`` and ``,`` bytes
(``bytes.count``, C speed: under 0.1 s for 64 MiB) and refuses with 413 a body whose decoded
and validated objects could take more than its route's memory budget. Every value and every key
of a JSON document but the first follows one of those three bytes, so the counts bound what the
decoder can build; bytes inside strings are counted too, which only over-estimates.

The weights are upper bounds measured on the models of this service (``python -m
bench.hostile`` re-measures them): the most any byte pattern cost per counted byte, with
validation errors bounded (``models.Many``, ``Frozen`` refusing objects with more keys than
fields). docs/limits.md states the resulting memory ceiling of a worker and how it is derived.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import anyio
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.types import ASGIApp, Receive, Send
from litestar.types import Scope as ASGIScope

from promise.access.guard import PRINCIPAL_STATE
from promise.access.principal import Principal, Scope
from promise.errors import RequestLimitError, ServiceUnavailableError
from promise.settings import DEFAULT_BODY_MEMORY_MIB, Settings

__all__ = [
    "ARRAY_BYTES",
    "BODY_CHECK_OPT",
    "BYTE_BYTES",
    "ERRORS_MIB",
    "ITEM_BYTES",
    "MEMORY_OPT",
    "OBJECT_BYTES",
    "UPLOAD_WAIT_S",
    "BodyCost",
    "BodyTooCostlyError",
    "body_opt",
    "check_inline_snapshot",
    "inline_snapshot_precheck",
    "one_body_at_a_time",
    "promise_body_opt",
    "refuse_costly",
    "worker_ceiling_mib",
]

MIB = 1024 * 1024
# A ``{``: the decoded dict and, in a list of models, the model instance it validates into
# (its field dict and its set of fields set): 920 bytes at most measured (an inventory row).
OBJECT_BYTES = 1024
# A ``[``: the decoded list and the tuple it validates into (56 + 64 bytes when empty).
ARRAY_BYTES = 128
# A ``,``: one more item or key: its slots in the decoded list or dict and in the validated
# tuple, and a number or string object decoded and then copied by validation (136 bytes at most
# measured, a dict entry with its key, with the string contents counted below).
ITEM_BYTES = 128
# Each byte of the body: the body as received and as joined (2), the decoder's scratch copy of
# a string's bytes (1), and string contents decoded and then copied by validation, at up to 4
# bytes per character each (8: one character beyond U+FFFF makes a whole string 4 bytes per
# character); 11 measured, rounded up.
BYTE_BYTES = 12
# Field errors are not in the bound: the collection bounds cap their number instead (a list
# stops at its first invalid item, an object reports one bad entry, and no more unknown keys
# than its model has fields). A snapshot can hold about 41,000 at once (two node-keyed objects
# of 20,000 bad entries, about 1.2 KiB each while their object is checked), another body about
# 4,000 (a 500-line cart, about 2 KiB each once rendered): at most this much over a budget.
ERRORS_MIB = 64
# How long a request waits for a route that takes one body at a time before it answers 503.
UPLOAD_WAIT_S = 30.0
# Route ``opt`` keys: the memory budget in bytes, and a check of the decoded body run before
# validation (both resolved like any ``opt``: the handler's over its router's over the app's).
MEMORY_OPT = "body_memory_bytes"
BODY_CHECK_OPT = "body_check"

# A check of a decoded body, given the request (its caller is in the scope's state).
BodyCheck = Callable[[Any, "ASGIConnection[Any, Any, Any, Any]"], None]


@dataclasses.dataclass(frozen=True, slots=True)
class BodyCost:
    """The pre-scan of a body: its size, its structural byte counts and the bound they give."""

    size: int
    objects: int
    arrays: int
    items: int

    @classmethod
    def of(cls, body: bytes) -> BodyCost:
        """Count a body's ``{``, ``[`` and ``,`` bytes."""
        return cls(len(body), body.count(b"{"), body.count(b"["), body.count(b","))

    @property
    def bound(self) -> int:
        """Bytes that decoding and validating the body can take at most."""
        return (
            self.objects * OBJECT_BYTES
            + self.arrays * ARRAY_BYTES
            + self.items * ITEM_BYTES
            + self.size * BYTE_BYTES
        )


class BodyTooCostlyError(ClientException):
    """A body whose decoded and validated objects could exceed its route's memory budget."""

    status_code = 413


def body_opt(memory_mib: int, *, check: BodyCheck | None = None) -> dict[str, Any]:
    """Route ``opt`` entries: a memory budget of ``memory_mib`` MiB, and a decoded-body check."""
    opt: dict[str, Any] = {MEMORY_OPT: memory_mib * MIB}
    if check is not None:
        opt[BODY_CHECK_OPT] = check
    return opt


def promise_body_opt(settings: Settings) -> dict[str, Any]:
    """Route ``opt`` of the promise routes: the body budget and the inline snapshot precheck."""
    return body_opt(
        settings.max_body_memory_mib,
        check=inline_snapshot_precheck(
            enabled=settings.inline_snapshots,
            max_nodes=settings.max_inline_snapshot_nodes,
            max_rows=settings.max_inline_snapshot_rows,
        ),
    )


def refuse_costly(body: bytes, opt: Mapping[str, Any]) -> None:
    """Raise BodyTooCostlyError when ``body`` could take more than the route's budget."""
    budget = opt.get(MEMORY_OPT, DEFAULT_BODY_MEMORY_MIB * MIB)
    cost = BodyCost.of(body)
    if cost.bound > budget:
        raise BodyTooCostlyError(
            f"the body's JSON ({cost.objects:,} objects, {cost.arrays:,} arrays, "
            f"{cost.items:,} further items in {cost.size:,} bytes) could take "
            f"{cost.bound / MIB:,.0f} MiB to decode and validate; this route accepts "
            f"{budget / MIB:,.0f} MiB"
        )


def check_inline_snapshot(
    *, enabled: bool, max_nodes: int, max_rows: int, nodes: int, rows: int
) -> None:
    """Refuse an inline snapshot unless allowed and within the node and row limits (422)."""
    if not enabled:
        raise RequestLimitError(
            "inline snapshots are for the admin role on this service "
            "(or for every caller with PROMISE_INLINE_SNAPSHOTS)",
            ("snapshot",),
        )
    if nodes > max_nodes:
        raise RequestLimitError(
            f"the inline snapshot has {nodes} nodes; this service accepts at most {max_nodes}",
            ("snapshot", "nodes"),
        )
    if rows > max_rows:
        raise RequestLimitError(
            f"the inline snapshot has {rows} inventory rows; this service accepts at most "
            f"{max_rows}",
            ("snapshot",),
        )


def _length(value: object) -> int:
    """Items of a decoded JSON array (0 for anything else: validation names the type error)."""
    return len(value) if isinstance(value, list) else 0


def inline_snapshot_precheck(*, enabled: bool, max_nodes: int, max_rows: int) -> BodyCheck:
    """A check of a decoded promise body: its inline snapshot is refused before validation.

    An inline snapshot is for the admin role, or for every caller when ``enabled``; the same
    limits apply again to the validated snapshot (``PromiseService.check_limits``). Here one
    that is not allowed or too large costs neither its validation (up to a few hundred
    milliseconds and 100 MiB for a 4 MiB body) nor a solve slot.
    """

    def check(data: Any, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Refuse the body's inline snapshot when not allowed or beyond the limits."""
        if not isinstance(data, dict) or data.get("snapshot") is None:
            return
        snapshot = data["snapshot"]
        nodes = rows = 0
        if isinstance(snapshot, dict):
            nodes = _length(snapshot.get("nodes"))
            table = snapshot.get("inventory_table")
            table_rows = _length(table.get("node_id")) if isinstance(table, dict) else 0
            rows = max(_length(snapshot.get("inventory")), table_rows)
        # The access guard, which runs before the body is read, left the caller here.
        principal = connection.scope["state"].get(PRINCIPAL_STATE)
        admin = isinstance(principal, Principal) and principal.may(Scope.ADMIN)
        check_inline_snapshot(
            enabled=enabled or admin,
            max_nodes=max_nodes,
            max_rows=max_rows,
            nodes=nodes,
            rows=rows,
        )

    return check


def worker_ceiling_mib(settings: Settings, rest_mib: float) -> float:
    """The resident memory a worker stays under, given its resident memory at rest.

    A worker decodes and validates one body at a time (both run on its event loop), so the
    largest route budget and the error allowance add to what it holds at rest (docs/limits.md).
    """
    budget = max(settings.max_body_memory_mib, settings.max_snapshot_memory_mib)
    return rest_mib + budget + ERRORS_MIB


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def one_body_at_a_time(app: ASGIApp) -> ASGIApp:
    """Route middleware: the route's requests with a body run one at a time in a worker.

    A body is held while it is received, and a valid snapshot then waits for the store's lock
    holding its validated network, so concurrent uploads would each add theirs to the ceiling.
    A waiting request holds only what uvicorn reads ahead of the app (64 KiB); one that cannot
    start within ``UPLOAD_WAIT_S`` answers 503 with Retry-After.
    """
    lock: anyio.Lock | None = None

    async def middleware(scope: ASGIScope, receive: Receive, send: Send) -> None:
        """Run the request once no other request with a body runs on this route."""
        nonlocal lock
        if scope["type"] != ScopeType.HTTP or scope.get("method") not in _BODY_METHODS:
            await app(scope, receive, send)
            return
        if lock is None:
            # Created lazily: an anyio lock belongs to the event loop that first uses it.
            lock = anyio.Lock()
        acquired = False
        with anyio.move_on_after(UPLOAD_WAIT_S):
            await lock.acquire()
            acquired = True
        if not acquired:
            raise ServiceUnavailableError("another upload to this route is in progress", 1)
        try:
            await app(scope, receive, send)
        finally:
            lock.release()

    return middleware
