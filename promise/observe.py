"""Request ids, access logs and request metrics for every HTTP request.

This wraps the whole Litestar app rather than running as a Litestar middleware, because
Litestar middleware only sees requests that matched a route, and 404s and 405s must be logged,
counted and carry a request id too.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import TYPE_CHECKING, Any, cast

from litestar import Litestar
from litestar.enums import ScopeType

from promise.logs import ACCESS_LOGGER
from promise.metrics import Metrics

if TYPE_CHECKING:
    from litestar.types import (
        HTTPResponseStartEvent,
        LifeSpanReceive,
        LifeSpanScope,
        LifeSpanSend,
        Message,
        Receive,
        Scope,
        Send,
    )

__all__ = [
    "REQUEST_ID_HEADER",
    "SNAPSHOT_VERSION_KEY",
    "SOLVE_STATUS_KEY",
    "WORKER_PID_HEADER",
    "ObservedLitestar",
    "arrival_of",
    "request_id_of",
]

REQUEST_ID_HEADER = "x-request-id"
WORKER_PID_HEADER = "x-worker-pid"
# Keys in the ASGI scope's state dict that handlers fill for the access log.
REQUEST_ID_KEY = "promise.request_id"
# When the request reached this worker (time.perf_counter()): time budgets run from it.
ARRIVED_KEY = "promise.arrived"
SOLVE_STATUS_KEY = "promise.solve_status"
SNAPSHOT_VERSION_KEY = "promise.snapshot_version"
# An incoming id is echoed only if it is short and printable, so it cannot forge log lines.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
UNMATCHED_ROUTE = "unmatched"

access_log = logging.getLogger(ACCESS_LOGGER)


def _incoming_request_id(headers: Any) -> str | None:
    """The caller's X-Request-ID, if it is acceptable."""
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _VALID_REQUEST_ID.match(text) else None
    return None


def arrival_of(scope: Scope) -> float | None:
    """When this request reached the worker (``time.perf_counter()``), if it was observed."""
    state: dict[str, Any] = scope.get("state", {})
    value = state.get(ARRIVED_KEY)
    return value if isinstance(value, float) else None


def request_id_of(scope: Scope) -> str | None:
    """The request id assigned to this request."""
    state: dict[str, Any] = scope.get("state", {})
    value = state.get(REQUEST_ID_KEY)
    return value if isinstance(value, str) else None


class ObservedLitestar(Litestar):
    """A Litestar app that times, logs and counts every HTTP request, routed or not."""

    metrics: Metrics

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        """Observe HTTP requests; pass lifespan and websocket traffic straight through."""
        if scope["type"] != ScopeType.HTTP:
            await super().__call__(scope, receive, send)
            return
        # Plain dict views of the HTTP scope and send (Litestar types them as TypedDict unions).
        http: dict[str, Any] = cast("dict[str, Any]", scope)
        http_send = cast("Send", send)
        started = time.perf_counter()
        request_id = _incoming_request_id(http["headers"]) or uuid.uuid4().hex
        state: dict[str, Any] = http.setdefault("state", {})
        state[REQUEST_ID_KEY] = request_id
        state[ARRIVED_KEY] = started
        extra_headers = [
            (REQUEST_ID_HEADER.encode(), request_id.encode()),
            (WORKER_PID_HEADER.encode(), str(os.getpid()).encode()),
        ]
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                start: HTTPResponseStartEvent = message
                status = start["status"]
                message = {**start, "headers": [*start.get("headers", ()), *extra_headers]}
            await http_send(message)

        try:
            await super().__call__(scope, receive, send_observed)
        finally:
            elapsed = time.perf_counter() - started
            # Litestar records the matched route's template in the scope; no match, no template.
            route = str(http.get("path_template") or UNMATCHED_ROUTE)
            method = str(http.get("method", ""))
            self.metrics.observe_request(route, method, status, elapsed)
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "path": http["path"],
                    "status": status,
                    "latency_ms": round(elapsed * 1000.0, 3),
                    "solve_status": state.get(SOLVE_STATUS_KEY),
                    "snapshot_version": state.get(SNAPSHOT_VERSION_KEY),
                },
            )
