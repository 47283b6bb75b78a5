"""Errors the service adds to the solver's, and their RFC 9457 problem documents.

Hierarchy (the solver's domain errors are 422s; the service's own conditions are 503s)::

    solver.errors.PromiseError        the request cannot be answered as asked (422)
    ├── RequestLimitError             the request exceeds a limit of this service (422)
    ├── QueryParameterError           a domain error about a query parameter (422)
    └── SnapshotRejectedError         a valid snapshot the engine fails to solve on (422)
    ServiceUnavailableError           the service cannot take the request now (503 + Retry-After)
    ├── NotReadyError                 the snapshot is not loaded or the solver not warmed yet
    └── OverloadedError               every solve slot and queue place is taken

The mapping from exceptions to HTTP lives in one table in ``promise.app.create_app``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from litestar import Response
from pydantic import Field

from models import Frozen
from solver.errors import PromiseError

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "FieldError",
    "NotReadyError",
    "OverloadedError",
    "Problem",
    "QueryParameterError",
    "RequestLimitError",
    "ServiceUnavailableError",
    "SnapshotRejectedError",
    "field_error",
    "field_errors_from_pydantic",
    "problem_kind",
    "problem_response",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Problem types are URNs: stable identifiers that do not pretend to be dereferenceable pages.
PROBLEM_TYPE_PREFIX = "urn:promise-engine:problem:"

Location = tuple[str | int, ...]
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class RequestLimitError(PromiseError):
    """The request is valid but larger or slower than this service accepts."""


class SnapshotRejectedError(PromiseError):
    """A snapshot that validates but on which the warm-up solve fails: never made live."""


class QueryParameterError(PromiseError):
    """A domain error about a query parameter; ``kind`` keeps the original error's kind."""

    def __init__(self, message: str, field: Location, *, kind: str) -> None:
        """Keep the message, the parameter's path and the kind of the original error."""
        super().__init__(message, field)
        self.kind = kind


def problem_kind(exc: Exception) -> str:
    """Kebab-case kind of an error: 'UnknownPostalCodeError' -> 'unknown-postal-code'."""
    kind = getattr(exc, "kind", None)
    if isinstance(kind, str):
        return kind
    return _CAMEL.sub("-", type(exc).__name__.removesuffix("Error")).lower()


class ServiceUnavailableError(Exception):
    """The service cannot take the request now; the client may retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        """Keep the message and the advised retry delay."""
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class NotReadyError(ServiceUnavailableError):
    """The snapshot is still loading or the solver is not warm yet."""


class OverloadedError(ServiceUnavailableError):
    """All solve slots and queue places of this worker are taken."""


class FieldError(Frozen):
    """One offending field: where it is and what is wrong with it."""

    loc: tuple[str | int, ...] = Field(
        description="Path to the field, e.g. ['cart', 'lines', 0, 'quantity']."
    )
    field: str = Field(description="The same path, dotted: 'cart.lines.0.quantity'.")
    message: str
    type: str = Field(description="Machine-readable error kind, e.g. 'greater_than'.")
    source: Literal["body", "query", "header", "path"] = "body"


class Problem(Frozen):
    """An RFC 9457 problem document: every error answer has this shape."""

    type: str = Field(description="Problem kind (a URN), or about:blank for a plain HTTP error.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = ""
    errors: tuple[FieldError, ...] = ()
    errors_total: int | None = Field(
        default=None,
        description="How many field errors there were in all; errors lists the first 50.",
    )
    request_id: str | None = None


def field_error(
    loc: Location, message: str, kind: str, source: Literal["body", "query", "header", "path"]
) -> FieldError:
    """A field error with both the list and the dotted form of its path."""
    return FieldError(
        loc=loc,
        field=".".join(str(part) for part in loc),
        message=message,
        type=kind,
        source=source,
    )


def field_errors_from_pydantic(
    errors: Iterable[Mapping[str, Any]], *, prefix: Location = ()
) -> tuple[FieldError, ...]:
    """Field errors from pydantic's ``ValidationError.errors()`` (never echoing the input)."""
    out: list[FieldError] = []
    for error in errors:
        loc = prefix + tuple(error.get("loc", ()))
        out.append(field_error(loc, str(error.get("msg", "")), str(error.get("type", "")), "body"))
    return tuple(out)


def problem_response(
    *,
    status: int,
    title: str,
    detail: str = "",
    kind: str | None = None,
    errors: Sequence[FieldError] = (),
    errors_total: int | None = None,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[bytes]:
    """A ``application/problem+json`` response; ``kind`` None means a plain HTTP error."""
    problem = Problem(
        type=PROBLEM_TYPE_PREFIX + kind if kind else "about:blank",
        title=title,
        status=status,
        detail=detail,
        errors=tuple(errors),
        errors_total=errors_total,
        request_id=request_id,
    )
    return Response(
        content=problem.model_dump_json().encode(),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )
