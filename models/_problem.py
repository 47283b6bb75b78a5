"""The problem document (RFC 9457) every error answer of the service has, and its field errors.

The documents live with the other wire types so that the lowest layer that raises a problem
(``solver.errors.ProblemError``) can say what its document looks like.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models._base import Frozen

__all__ = ["FieldError", "FieldPath", "FieldSource", "Problem"]

# Where a field is: its path inside the body, or the name of a query, header or path parameter.
FieldPath = tuple[str | int, ...]
FieldSource = Literal["body", "query", "header", "path"]


class FieldError(Frozen):
    """One offending field: where it is and what is wrong with it."""

    loc: tuple[str | int, ...] = Field(
        description="Path to the field, e.g. ['cart', 'lines', 0, 'quantity']."
    )
    field: str = Field(description="The same path, dotted: 'cart.lines.0.quantity'.")
    message: str
    type: str = Field(description="Machine-readable error kind, e.g. 'greater_than'.")
    source: FieldSource = "body"

    @classmethod
    def at(cls, loc: FieldPath, message: str, kind: str, source: FieldSource) -> FieldError:
        """A field error with both the list and the dotted form of its path."""
        dotted = ".".join(str(part) for part in loc)
        return cls(loc=loc, field=dotted, message=message, type=kind, source=source)


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
