"""Local services the tests talk to (PostgreSQL, NATS): skip without one, unless required."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["unreachable"]


def unreachable(message: str, require_env: str) -> NoReturn:
    """Skip with instructions; fail instead when ``require_env`` is 1 (as ``.ci/run`` sets it).

    A developer without the service can still run the rest; CI cannot pass without it.
    """
    if os.environ.get(require_env) == "1":
        pytest.fail(message)
    pytest.skip(message)
