"""The stored records of access control: API keys, audit entries, hold usage.

Plain data with no imports from the service, so the command line can use them without loading
the app.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["AuditEntry", "HoldUsage", "KeyRecord"]


@dataclasses.dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key as stored: never its secret, only the secret's digest."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    secret_sha256: str
    created_at: int
    created_by: str
    revoked_at: int | None = None
    rate_per_s: float | None = None
    burst: int | None = None
    max_open_holds: int | None = None
    max_held_units: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change: when, by whom, what, on what."""

    entry_id: str
    at: int
    principal: str
    action: str
    subject: str
    detail: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class HoldUsage:
    """What a principal holds now: open holds (soft and firm) and their units."""

    open_holds: int
    held_units: int
