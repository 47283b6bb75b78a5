"""The app's one exception handler: every error of every route as an RFC 9457 problem document.

A :class:`~solver.errors.ProblemError` answers with its own document, status and headers
(docs/problems.md lists every kind). What Litestar raises itself is mapped into the same shape:

* a validation failure becomes ``validation-failed``, listing the fields at fault from the
  validation errors themselves: pydantic's locations for a body, Litestar's keys for
  parameters, and the handler's declared parameters for those missing from the request. No
  message is parsed, so a change of Litestar's wording changes no field path;
* any other HTTP error keeps its status as an ``about:blank`` problem;
* anything else is a bug: logged with its traceback, answered ``internal``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import pydantic
from litestar import Request, Response
from litestar.enums import ParamType
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import ParameterKwarg

from models import FieldError, FieldPath, FieldSource, Problem
from promise.errors import PROBLEM_MEDIA_TYPE, InternalError, ValidationFailedError
from promise.observe import request_id_of
from solver.errors import ProblemError

__all__ = ["MAX_LISTED_ERRORS", "problem_handler"]

log = logging.getLogger(__name__)

AnyRequest = Request[Any, Any, Any]
# A 422 lists this many field errors at most (and counts them all in errors_total).
MAX_LISTED_ERRORS = 50
_SOURCES: dict[str, FieldSource] = {
    ParamType.QUERY.value: "query",
    ParamType.HEADER.value: "header",
    ParamType.PATH.value: "path",
}


def problem_handler(request: AnyRequest, exc: Exception) -> Response[bytes]:
    """Answer any error with its problem document (the app's one exception handler)."""
    request_id = request_id_of(request.scope)
    if isinstance(exc, ValidationException):
        exc = _validation_failed(request, exc)
    headers: Mapping[str, str] = {}
    if isinstance(exc, ProblemError):
        problem, headers = exc.document(request_id), exc.headers
    elif isinstance(exc, HTTPException):
        problem, headers = _http_problem(request, exc, request_id), exc.headers or {}
    else:
        problem = InternalError().document(request_id)
    if problem.status >= 500 and not isinstance(exc, ProblemError):
        # A bug, or Litestar failing on its own: the answer says nothing, the log says all.
        log.error(
            "unhandled error",
            exc_info=exc,
            extra={"request_id": request_id, "path": request.url.path},
        )
    return Response(
        content=problem.model_dump_json().encode(),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers),
    )


def _http_problem(request: AnyRequest, exc: HTTPException, request_id: str | None) -> Problem:
    """Litestar's own HTTP errors (400, 404, 405, 413, ...) as ``about:blank`` problems."""
    status = exc.status_code
    detail = exc.detail
    # The byte limit's 413; the memory pre-scan's (promise.body_limits) says its own numbers.
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.route_handler.resolve_request_max_body_size()
        detail = f"the body exceeds the {limit} bytes this route accepts"
    elif status == 404:
        detail = f"no route {request.url.path}"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return Problem(
        type="about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail if status < 500 else "an unexpected error occurred",
        request_id=request_id,
    )


# --- validation failures --------------------------------------------------------------------


def _field_errors_from_pydantic(errors: Iterable[Mapping[str, Any]]) -> tuple[FieldError, ...]:
    """Field errors of a body from pydantic's ``ValidationError.errors()`` (never the input)."""
    return tuple(
        FieldError.at(
            tuple(error.get("loc", ())),
            str(error.get("msg", "")),
            str(error.get("type", "")),
            "body",
        )
        for error in errors
    )


def _validation_failed(request: AnyRequest, exc: ValidationException) -> ValidationFailedError:
    """Invalid fields: the first ``MAX_LISTED_ERRORS`` field paths, and their count."""
    cause = _pydantic_cause(exc)
    if cause is not None:
        # Only the listed errors are rendered: a body of many bad items must answer small.
        listed = itertools.islice(cause.errors(include_input=False), MAX_LISTED_ERRORS)
        return ValidationFailedError(_field_errors_from_pydantic(listed), cause.error_count())
    errors = (
        _litestar_errors(request, exc)
        or _missing_parameters(request)
        or [FieldError.at((), exc.detail, "invalid", "body")]
    )
    return ValidationFailedError(errors[:MAX_LISTED_ERRORS], len(errors))


def _pydantic_cause(exc: BaseException) -> pydantic.ValidationError | None:
    """The pydantic error behind a Litestar validation failure, if there is one."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, pydantic.ValidationError):
            return cause
        cause = cause.__cause__
    return None


def _parameter(request: AnyRequest, name: str) -> tuple[str, FieldSource]:
    """The name a client gives the handler's parameter ``name``, and where it sends it."""
    if name in request.path_params:
        return name, "path"
    declared = request.route_handler.parsed_fn_signature.parameters.get(name)
    kwarg = None if declared is None else declared.kwarg_definition
    if isinstance(kwarg, ParameterKwarg):
        return kwarg.name or name, _SOURCES.get(kwarg.param_type.value, "query")
    return name, "query"


def _litestar_errors(request: AnyRequest, exc: ValidationException) -> list[FieldError]:
    """Field errors from Litestar's structured ``extra``: a dotted key and where it came from."""
    out: list[FieldError] = []
    for entry in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(entry, dict):
            out.append(FieldError.at((), str(entry), "invalid", "body"))
            continue
        key = str(entry.get("key", ""))
        loc: FieldPath = tuple(int(p) if p.isdigit() else p for p in key.split(".")) if key else ()
        source: FieldSource = "body"
        # A parameter is named as the client sends it (a header's name, a query alias).
        if loc and str(entry.get("source", "body")) != "body":
            name, source = _parameter(request, str(loc[0]))
            loc = (name, *loc[1:])
        out.append(FieldError.at(loc, str(entry.get("message", "")), "invalid", source))
    return out


def _missing_parameters(request: AnyRequest) -> list[FieldError]:
    """Required query and header parameters of the handler that the request does not carry."""
    out: list[FieldError] = []
    for name, declared in request.route_handler.parsed_fn_signature.parameters.items():
        if not isinstance(declared.kwarg_definition, ParameterKwarg) or declared.is_di_field:
            continue
        if declared.has_default or declared.is_optional:
            continue
        wire, source = _parameter(request, name)
        if source == "query":
            missing = wire not in request.query_params
        elif source == "header":
            missing = wire.lower() not in request.headers  # Litestar keeps header names lower-case
        else:
            continue  # a path parameter is there whenever the route matched
        if missing:
            message = f"missing required {source} parameter"
            out.append(FieldError.at((wire,), message, "missing", source))
    return out
