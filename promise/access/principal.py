"""A caller the service has authenticated: who it is, what it may do, how much of it."""

from __future__ import annotations

import dataclasses
import enum
from typing import Literal, Protocol

__all__ = ["HasLimits", "Limits", "Principal", "Scope"]


class Scope(enum.StrEnum):
    """A role: which routes a principal may call."""

    PROMISE = "promise"  # promise, validate, availability
    RESERVE = "reserve"  # holds and their transitions, promise with reserve
    INVENTORY = "inventory"  # inventory events and positions
    ADMIN = "admin"  # snapshot swap, keys, audit, inline snapshots
    ANALYST = "analyst"  # read-only views (audit trail)


class HasLimits(Protocol):
    """Anything that states a principal's limits (a stored key, a key request)."""

    @property
    def rate_per_s(self) -> float | None:
        """Sustained requests per second."""
        ...

    @property
    def burst(self) -> int | None:
        """Requests above the sustained rate, at once."""
        ...

    @property
    def max_open_holds(self) -> int | None:
        """Open holds at once."""
        ...

    @property
    def max_held_units(self) -> int | None:
        """Units held at once."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """What one principal may consume; None leaves the service-wide default."""

    rate_per_s: float | None = None  # sustained requests per second
    burst: int | None = None  # requests above the sustained rate, at once
    max_open_holds: int | None = None
    max_held_units: int | None = None

    @classmethod
    def of(cls, source: HasLimits) -> Limits:
        """The limits ``source`` states."""
        return cls(
            rate_per_s=source.rate_per_s,
            burst=source.burst,
            max_open_holds=source.max_open_holds,
            max_held_units=source.max_held_units,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its id (key id or token subject), how it proved it, its scopes."""

    id: str
    kind: Literal["key", "token"]
    scopes: frozenset[Scope]
    name: str = ""
    limits: Limits = Limits()

    def may(self, scope: Scope) -> bool:
        """Whether the principal holds ``scope``."""
        return scope in self.scopes
