"""Problems: every error a client can be told about, each kind with its own URN, status and title.

A *kind* is a class that declares its ``type`` (a URN), HTTP ``status`` and ``title`` in its own
body: none is derived from the class name, so renaming a class never changes the API, and
docs/problems.md lists every kind in one table (a test keeps the two in step). A *family* groups
kinds and is never raised itself. The service's one exception handler answers each kind with
its :meth:`ProblemError.document`.

Hierarchy (the solver's kinds; the service's own subclass :class:`ProblemError` too)::

    ProblemError                    base of every problem (see docs/problems.md)
    └── PromiseError                family: the request cannot be answered as asked (422)
        ├── UnknownPostalCodeError  the destination's postal code is not in the dataset
        ├── UnknownChannelError     no channel policy for the cart's channel
        └── InvalidRequestError     a request that is well-formed but cannot be solved as asked
            ├── ObjectiveRangeError     (solver.costs) the objective would exceed 2**53
            └── MarginFloorRangeError   (solver.costs) the exact margin check would exceed 2**53
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from models import FieldError, FieldPath, FieldSource, Problem

__all__ = [
    "PROBLEM_TYPE_PREFIX",
    "InvalidRequestError",
    "ProblemError",
    "PromiseError",
    "UnknownChannelError",
    "UnknownPostalCodeError",
]

# Problem types are URNs: stable identifiers that do not pretend to be dereferenceable pages.
PROBLEM_TYPE_PREFIX = "urn:promise-engine:problem:"
_DECLARED = ("type", "status", "title")


class ProblemError(Exception):
    """Base of every problem; ``field`` is the path at fault, if any, found in ``source``.

    A subclass is a kind (it declares ``type``, ``status`` and ``title`` in its own body) or,
    with ``family=True``, a family of kinds (it declares none of them and is never raised).
    ``retry_after_s``, when set, is how long a client should wait before it retries (429, 503).
    """

    type: ClassVar[str]
    status: ClassVar[int]
    title: ClassVar[str]
    field: FieldPath = ()
    source: FieldSource = "body"
    retry_after_s: int | None = None

    def __init_subclass__(cls, *, family: bool = False, **kwargs: Any) -> None:
        """Refuse a kind that does not declare all three of its own, or a family that does."""
        super().__init_subclass__(**kwargs)
        declared = [name for name in _DECLARED if name in vars(cls)]
        if family and declared:
            raise TypeError(f"family {cls.__name__} declares {declared}: only kinds do")
        if not family and len(declared) != len(_DECLARED):
            raise TypeError(f"kind {cls.__name__} must declare its own type, status and title")

    def __init__(
        self, message: str, field: FieldPath = (), *, retry_after_s: int | None = None
    ) -> None:
        """Keep the message, the offending field path and the advised retry delay."""
        if "type" not in vars(type(self)):
            raise TypeError(
                f"{type(self).__name__} is a family of problems: raise one of its kinds"
            )
        super().__init__(message)
        self.message = message
        if field:
            self.field = field
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> Mapping[str, str]:
        """HTTP headers the answer carries besides the document: Retry-After, if advised."""
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}

    @property
    def code(self) -> str:
        """The kind's name in a field error's ``type``: 'unknown-channel' -> 'unknown_channel'."""
        return self.type.removeprefix(PROBLEM_TYPE_PREFIX).replace("-", "_")

    def located(self, field: FieldPath, *, source: FieldSource) -> Self:
        """This problem, naming ``field`` in ``source`` (a query parameter for a body field)."""
        self.field = field
        self.source = source
        return self

    def field_errors(self) -> tuple[FieldError, ...]:
        """The fields at fault: the one ``field``, if any."""
        if not self.field:
            return ()
        return (FieldError.at(self.field, self.message, self.code, self.source),)

    def document(self, request_id: str | None = None) -> Problem:
        """The problem document that answers this error."""
        return Problem(
            type=self.type,
            title=self.title,
            status=self.status,
            detail=self.message,
            errors=self.field_errors(),
            request_id=request_id,
        )


class PromiseError(ProblemError, family=True):
    """A request the engine cannot answer as asked (every kind is a 422)."""


class UnknownPostalCodeError(PromiseError):
    """The destination postal code does not resolve to coordinates."""

    type = "urn:promise-engine:problem:unknown-postal-code"
    status = 422
    title = "Unknown postal code"
    field = ("destination", "postal_code")

    def __init__(self, postal_code: str, country: str) -> None:
        """Name the code and country that failed to resolve."""
        super().__init__(f"unknown postal code {postal_code!r} in country {country!r}")


class UnknownChannelError(PromiseError):
    """The snapshot has no policy for the requested channel."""

    type = "urn:promise-engine:problem:unknown-channel"
    status = 422
    title = "Unknown channel"
    field = ("cart", "channel")

    def __init__(self, channel: str) -> None:
        """Name the channel that has no policy."""
        super().__init__(f"no channel policy for channel {channel!r}")


class InvalidRequestError(PromiseError):
    """The request is well-formed but cannot be solved as asked."""

    type = "urn:promise-engine:problem:invalid-request"
    status = 422
    title = "Request cannot be answered as asked"
