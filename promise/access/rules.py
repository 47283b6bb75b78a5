"""Who may call a route: the declaration each route handler carries.

A handler says ``**secured(Scope.X, ...)`` (a principal with any of the roles) or
``**public()`` in its decorator; the declaration is read by the access guard and also
documents the route's security in the OpenAPI document.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from promise.access.principal import Scope

__all__ = ["ACCESS_OPT", "SECURITY_SCHEME", "Access", "public", "secured"]

ACCESS_OPT = "access"
SECURITY_SCHEME = "bearer"


@dataclasses.dataclass(frozen=True, slots=True)
class Access:
    """Who may call a route: anyone (``public``), else a principal with any of ``roles``.

    ``network_open`` routes (metrics, docs) also answer callers from the open networks
    without a credential.
    """

    roles: frozenset[Scope] = frozenset()
    public: bool = False
    network_open: bool = False


def secured(*roles: Scope, network_open: bool = False) -> dict[str, Any]:
    """Route-decorator arguments: callers need any of ``roles``; documented in OpenAPI."""
    rule = Access(roles=frozenset(roles), network_open=network_open)
    return {
        "opt": {ACCESS_OPT: rule},
        "security": [{SECURITY_SCHEME: sorted(role.value for role in roles)}],
    }


def public() -> dict[str, Any]:
    """Route-decorator arguments: anyone may call (liveness and readiness only)."""
    return {"opt": {ACCESS_OPT: Access(public=True)}, "security": [{}]}
