"""The service's own problems, beside the solver's; docs/problems.md lists every kind.

Hierarchy (every class a :class:`solver.errors.ProblemError`)::

    solver.errors.PromiseError        family: the request cannot be answered as asked (422)
    ├── RequestLimitError             the request exceeds a limit of this service
    ├── SnapshotRejectedError         a valid snapshot the engine fails to solve on
    └── InvalidDestinationError       the postal_code query parameter is no postal code
    ValidationFailedError             fields of the request are invalid (422, each listed)
    ServiceUnavailableError           the service cannot take the request now (503 + Retry-After)
    ├── NotReadyError                 the snapshot is not loaded or the solver not warmed yet
    └── OverloadedError               every solve slot and queue place is taken
    InternalError                     a bug (500); the request id finds it in the logs

The stock kinds are in ``promise.stock.errors``, those of access in ``promise.access``; the
app's one exception handler (``promise.problems``) answers them all.
"""

from __future__ import annotations

from collections.abc import Sequence

from models import FieldError, Problem
from solver.errors import ProblemError, PromiseError

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "InternalError",
    "InvalidDestinationError",
    "NotReadyError",
    "OverloadedError",
    "RequestLimitError",
    "ServiceUnavailableError",
    "SnapshotRejectedError",
    "ValidationFailedError",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"


class RequestLimitError(PromiseError):
    """The request is valid but larger or slower than this service accepts."""

    type = "urn:promise-engine:problem:request-limit"
    status = 422
    title = "Request exceeds a limit of this service"


class SnapshotRejectedError(PromiseError):
    """A snapshot that validates but on which the warm-up solve fails: never made live."""

    type = "urn:promise-engine:problem:snapshot-rejected"
    status = 422
    title = "Snapshot rejected"


class InvalidDestinationError(PromiseError):
    """The postal_code query parameter cannot be a postal code of the country asked for."""

    type = "urn:promise-engine:problem:invalid-destination"
    status = 422
    title = "Invalid destination"
    field = ("postal_code",)
    source = "query"


class ValidationFailedError(ProblemError):
    """Fields of the request are invalid: the first of them listed, with how many in all."""

    type = "urn:promise-engine:problem:validation-failed"
    status = 422
    title = "Request validation failed"

    def __init__(self, errors: Sequence[FieldError], total: int) -> None:
        """Keep the listed field errors and the count of them all; the detail names the first."""
        first = f": {errors[0].field or 'body'}: {errors[0].message}" if errors else ""
        shown = f" (the first {len(errors)} listed)" if total > len(errors) else ""
        super().__init__(f"{total} invalid field(s){shown}{first}")
        self.errors = tuple(errors)
        self.total = total

    def field_errors(self) -> tuple[FieldError, ...]:
        """Every listed field error."""
        return self.errors

    def document(self, request_id: str | None = None) -> Problem:
        """The problem document, with the count of every field error."""
        return super().document(request_id).model_copy(update={"errors_total": self.total})


class ServiceUnavailableError(ProblemError):
    """The service cannot take the request now; the client may retry after ``retry_after_s``."""

    type = "urn:promise-engine:problem:service-unavailable"
    status = 503
    title = "Service unavailable"
    retry_after_s: int

    def __init__(self, message: str, retry_after_s: int) -> None:
        """Keep the message and the advised retry delay (always given: a 503 says when)."""
        super().__init__(message, retry_after_s=retry_after_s)


class NotReadyError(ServiceUnavailableError):
    """The snapshot is still loading or the solver is not warm yet."""

    type = "urn:promise-engine:problem:not-ready"
    status = 503
    title = "Not ready"


class OverloadedError(ServiceUnavailableError):
    """All solve slots and queue places of this worker are taken."""

    type = "urn:promise-engine:problem:overloaded"
    status = 503
    title = "Overloaded"


class InternalError(ProblemError):
    """A bug: the answer says nothing of it but the request id under which it was logged."""

    type = "urn:promise-engine:problem:internal"
    status = 500
    title = "Internal Server Error"

    def __init__(self) -> None:
        """Say only where to look."""
        super().__init__("an unexpected error occurred; the request id identifies it in the logs")
