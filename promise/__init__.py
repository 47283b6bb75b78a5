"""The Litestar promise service, live state and the command line.

Public surface: ``create_app(settings)`` builds the app, ``Settings`` reads ``PROMISE_*``
environment variables, and the ``promise`` command (``promise.cli``) serves it with several
worker processes. The app is imported lazily so that ``promise serve`` can choose the metrics
mode before prometheus_client is first imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promise.settings import Settings

if TYPE_CHECKING:
    from promise.app import create_app

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    """Load ``create_app`` on first use."""
    if name == "create_app":
        from promise.app import create_app  # noqa: PLC0415 - lazy on purpose, see above

        return create_app
    raise AttributeError(f"module 'promise' has no attribute {name!r}")
