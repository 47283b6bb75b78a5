"""Request and answer bodies of the key and audit routes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from models import Frozen, IntegerOnly
from promise.access.keys import key_principal
from promise.access.principal import Scope
from promise.access.records import AuditEntry, KeyRecord
from promise.stock.backend import from_us

__all__ = [
    "AuditPage",
    "AuditView",
    "CreatedKey",
    "KeyRequest",
    "KeyView",
    "audit_view",
    "key_view",
]

Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[ -~]+$")]


class KeyRequest(Frozen):
    """A key to make: its name, roles and (optionally) its own limits."""

    name: Name = Field(description="Who or what uses the key, e.g. 'checkout-eu'.")
    scopes: tuple[Scope, ...] = Field(min_length=1, max_length=5, description="Its roles.")
    rate_per_s: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    burst: Annotated[int, Field(ge=1, le=10_000_000), IntegerOnly] | None = None
    max_open_holds: Annotated[int, Field(ge=1, le=100_000_000), IntegerOnly] | None = None
    max_held_units: Annotated[int, Field(ge=1, le=1_000_000_000), IntegerOnly] | None = None


class KeyView(Frozen):
    """A stored key, without its secret."""

    key_id: str
    principal: str = Field(description="What holds and audit entries record: 'key:' + key_id.")
    name: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None = None
    rate_per_s: float | None = None
    burst: int | None = None
    max_open_holds: int | None = None
    max_held_units: int | None = None


class CreatedKey(KeyView):
    """A key just made: the only time its plaintext is shown."""

    key: str = Field(description="Send as 'Authorization: Bearer <key>'; it is not stored.")


class AuditView(Frozen):
    """One audit entry."""

    entry_id: str
    at: dt.datetime
    principal: str
    action: str = Field(description="e.g. hold.create, hold.confirm, events.apply, snapshot.swap")
    subject: str
    detail: dict[str, Any]


class AuditPage(Frozen):
    """Audit entries, oldest first."""

    entries: tuple[AuditView, ...]


def key_view(record: KeyRecord) -> dict[str, Any]:
    """The fields of a key's view."""
    return {
        "key_id": record.key_id,
        "principal": key_principal(record.key_id),
        "name": record.name,
        "scopes": record.scopes,
        "created_at": from_us(record.created_at),
        "created_by": record.created_by,
        "revoked_at": None if record.revoked_at is None else from_us(record.revoked_at),
        "rate_per_s": record.rate_per_s,
        "burst": record.burst,
        "max_open_holds": record.max_open_holds,
        "max_held_units": record.max_held_units,
    }


def audit_view(entry: AuditEntry) -> AuditView:
    """The API view of an audit entry."""
    return AuditView(
        entry_id=entry.entry_id,
        at=from_us(entry.at),
        principal=entry.principal,
        action=entry.action,
        subject=entry.subject,
        detail=dict(entry.detail),
    )
