"""uvicorn's httptools protocol with a bound on each request's head (request line and headers).

httptools gathers a header, and uvicorn the URL, for as long as a client sends them: a 64 MiB
header took a worker 128 MiB and 6 s and was answered 200, and nothing refused a larger one.
Bodies have their limits in the app (:mod:`promise.body_limits`); the head is read before the
app sees the request, so its limit lives here, in the protocol every worker serves with.
"""

from __future__ import annotations

import functools
import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from promise.settings import Settings

__all__ = ["BoundedHttpToolsProtocol", "head_limit"]

HEAD_TOO_LARGE = 431


@functools.cache
def head_limit() -> int:
    """Bytes a request's head may have: PROMISE_MAX_HEAD_BYTES, read once per worker."""
    return Settings.from_env().max_head_bytes


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """A connection that answers 431 and closes once a request's head exceeds its limit."""

    _in_head = False
    _head_bytes = 0

    def on_message_begin(self) -> None:
        """A request starts: its head is being read from here on."""
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        """The head is complete: what follows is the body (bounded by the app)."""
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        """Parse as uvicorn does, then refuse a head that has grown past the limit."""
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        # Bytes of a chunk that ended inside a head; a chunk that completed the head is not
        # counted, so a request whose body shares a chunk with its head is never refused.
        self._head_bytes += len(data)
        limit = head_limit()
        if self._head_bytes > limit:
            self._in_head = False
            self._refuse(limit)

    def _refuse(self, limit: int) -> None:
        """Answer 431 as a problem document and close the connection."""
        problem = {
            "type": "about:blank",
            "title": "Request Header Fields Too Large",
            "status": HEAD_TOO_LARGE,
            "detail": f"the request line and headers exceed the {limit} bytes this service reads",
        }
        content = json.dumps(problem).encode()
        self.transport.write(
            STATUS_LINE[HEAD_TOO_LARGE]
            + b"content-type: application/problem+json\r\n"
            + b"content-length: "
            + str(len(content)).encode("ascii")
            + b"\r\nconnection: close\r\n\r\n"
            + content
        )
        self.transport.close()
