"""Credentials for in-process apps: a key made in the app's own authority."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from promise.access.keys import make_key
from promise.access.principal import Limits, Scope

__all__ = ["authorized_client", "bearer", "grant"]

# Tests drive apps far faster than a real caller's default rate allows.
UNLIMITED = Limits(rate_per_s=1e6, burst=10**6)


def grant(app: Litestar, *scopes: Scope, limits: Limits = UNLIMITED, name: str = "test") -> str:
    """A new key with ``scopes`` (every role by default) in ``app``'s authority."""
    made = make_key(name, scopes or tuple(Scope), created_by="test", limits=limits)
    app.state.service.stock.backend.create_key(made.record, lambda: dt.datetime.now(dt.UTC))
    return made.plaintext


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of ``key``."""
    return {"Authorization": f"Bearer {key}"}


@contextlib.contextmanager
def authorized_client(app: Litestar, *scopes: Scope, **kwargs: Any) -> Iterator[TestClient[Any]]:
    """A started test client of ``app`` that sends a key with ``scopes`` (every role)."""
    with TestClient(app, **kwargs) as client:
        client.headers.update(bearer(grant(app, *scopes)))
        yield client
