"""Shared base class and constrained scalar types for the domain models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["Cents", "Frozen", "Identifier", "NonNegInt", "PosInt", "Weekday"]


class Frozen(BaseModel):
    """Immutable model that rejects unknown fields (variants via ``model_copy``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# Ids travel in URLs, logs and SQL parameters: keep them short and printable.
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
]
# Money is always integer minor units (cents); negative amounts never come from callers.
Cents = Annotated[int, Field(ge=0, le=10**11)]
NonNegInt = Annotated[int, Field(ge=0, le=10**9)]
PosInt = Annotated[int, Field(gt=0, le=10**9)]
# Monday is 0, as in ``datetime.date.weekday()``.
Weekday = Annotated[int, Field(ge=0, le=6)]
