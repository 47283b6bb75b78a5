"""Rules every route shares: JSON-only bodies and a bounded JSON decoder.

The decoder refuses deep nesting, and bodies that could cost more memory than their route's
budget (:mod:`promise.body_limits`). They apply app-wide (a guard and the request class of
:func:`promise.app.create_app`), so a new route, including those of the stock router, cannot
forget them.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException, HTTPException
from litestar.handlers.base import BaseRouteHandler

from promise.body_limits import BODY_CHECK_OPT, refuse_costly

__all__ = ["ACCEPTED_MEDIA_TYPE", "JsonRequest", "json_bodies_only"]

ACCEPTED_MEDIA_TYPE = "application/json"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _is_json(content_type: str) -> bool:
    """Whether a Content-Type names JSON: application/json or application/*+json, any params."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == ACCEPTED_MEDIA_TYPE:
        return True
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and subtype.endswith("+json")


def _has_body(headers: Any) -> bool:
    """Whether the request announces a body (a non-zero length or a chunked transfer)."""
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "chunked" in headers.get("transfer-encoding", "").lower()


async def json_bodies_only(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """Guard: a state-changing request with a body must send it as JSON, else 415.

    A coroutine, though it awaits nothing: Litestar runs a plain function guard in a worker
    thread, a thread hop on every request for a header check.
    """
    headers = connection.headers
    # Bodiless POSTs (confirm, release) carry nothing to parse, whatever they declare.
    if connection.scope.get("method") not in _BODY_METHODS or not _has_body(headers):
        return
    content_type = headers.get("content-type")
    if content_type is None or not _is_json(content_type):
        given = content_type or "no Content-Type"
        raise HTTPException(
            status_code=415,
            detail=f"the body must be {ACCEPTED_MEDIA_TYPE}, not {given}",
            headers={"Accept": ACCEPTED_MEDIA_TYPE},
        )


class JsonRequest(Request[Any, Any, Any]):
    """A request whose JSON decoding is bounded: in memory before decoding, in depth during it.

    Every route that takes a JSON body decodes it here (Litestar's body extractor calls
    :meth:`json`), so the limits of :mod:`promise.body_limits` hold on every such route.
    """

    async def json(self) -> Any:
        """The decoded body, refused first when it could take more memory than its route allows.

        The pre-scan (a 413) runs on the raw bytes before anything is decoded; msgspec's
        RecursionError on deep nesting becomes a 400; a route's ``body_check`` opt then sees
        the decoded body before validation does.
        """
        opt = self.route_handler.opt
        refuse_costly(await self.body(), opt)
        try:
            data = await super().json()
        except RecursionError as exc:
            raise ClientException("the JSON body is nested too deeply") from exc
        check = opt.get(BODY_CHECK_OPT)
        if check is not None:
            check(data, self)
        return data
