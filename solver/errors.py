"""Errors the solver raises for requests it cannot answer.

Hierarchy::

    PromiseError                 base of every domain error (maps to HTTP 4xx)
    ├── UnknownPostalCodeError   the destination's postal code is not in the dataset (422)
    ├── UnknownChannelError      no channel policy for the cart's channel (422)
    └── InvalidRequestError      a request that is well-formed but cannot be solved as asked (422)
"""

from __future__ import annotations

__all__ = ["InvalidRequestError", "PromiseError", "UnknownChannelError", "UnknownPostalCodeError"]


class PromiseError(Exception):
    """Base class of domain errors; ``field`` is the request path at fault, if any."""

    field: tuple[str | int, ...] = ()

    def __init__(self, message: str, field: tuple[str | int, ...] = ()) -> None:
        """Keep the message and the offending field path."""
        super().__init__(message)
        self.message = message
        if field:
            self.field = field


class UnknownPostalCodeError(PromiseError):
    """The destination postal code does not resolve to coordinates."""

    field = ("destination", "postal_code")

    def __init__(self, postal_code: str, country: str) -> None:
        """Name the code and country that failed to resolve."""
        super().__init__(f"unknown postal code {postal_code!r} in country {country!r}")


class UnknownChannelError(PromiseError):
    """The snapshot has no policy for the requested channel."""

    field = ("cart", "channel")

    def __init__(self, channel: str) -> None:
        """Name the channel that has no policy."""
        super().__init__(f"no channel policy for channel {channel!r}")


class InvalidRequestError(PromiseError):
    """The request is well-formed but cannot be solved as asked."""
