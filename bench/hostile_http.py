"""The hostile bench's HTTP: raw sockets that send any body and read an early answer.

Every HTTP call of the bench goes through :class:`Http`, which adds the bearer key; a request
is written on its own thread while the answer is read, so a server that refuses a body before
reading it all (413, 431) is seen answering rather than as a broken pipe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx

__all__ = ["ANSWER_TIMEOUT_S", "Answer", "Body", "Http"]

MIB = 1024 * 1024
# Sockets give up on an answer after this long (an input that hangs is a finding, not a hang).
ANSWER_TIMEOUT_S = 120.0
CHUNK = MIB


@dataclasses.dataclass(frozen=True, slots=True)
class Body:
    """A request body: its chunks and the Content-Length to declare (None: send it chunked)."""

    chunks: Callable[[], Iterator[bytes]]
    length: int | None

    @classmethod
    def of(cls, data: bytes) -> Body:
        """A body of these bytes, sent with their length."""

        def chunks() -> Iterator[bytes]:
            view = memoryview(data)
            for start in range(0, len(data), CHUNK):
                yield bytes(view[start : start + CHUNK])

        return cls(chunks, len(data))

    @classmethod
    def repeated(cls, unit: bytes, size: int, *, declare: bool) -> Body:
        """``size`` bytes of ``unit`` repeated (never held whole), declared or chunked."""
        block = unit * (CHUNK // len(unit))

        def chunks() -> Iterator[bytes]:
            left = size
            while left > 0:
                piece = block[:left]
                left -= len(piece)
                yield piece

        return cls(chunks, size if declare else None)


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """What the server answered: status, media type, body, answering worker, seconds taken."""

    status: int
    content_type: str
    body: bytes
    worker_pid: int | None
    seconds: float


class Http:
    """Every HTTP call of the bench: the server's address and the Authorization it needs."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        """Talk to ``base_url``; send ``Authorization: Bearer api_key`` when a key is given."""
        self.base_url = base_url
        url = httpx.URL(base_url)
        self.host = url.host
        self.port = url.port or 80
        self._api_key = api_key

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Headers of every request: JSON bodies, and the bearer key when there is one."""
        headers = {"content-type": "application/json"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        return {**headers, **(extra or {})}

    def client(self, timeout_s: float = 30.0) -> httpx.Client:
        """An httpx client of the server that sends :meth:`headers` on every request."""
        return httpx.Client(base_url=self.base_url, headers=self.headers(), timeout=timeout_s)

    def send(
        self,
        method: str,
        path: str,
        body: Body,
        extra: dict[str, str] | None = None,
        *,
        head_padding: int = 0,
    ) -> Answer:
        """Send on a fresh socket, reading the answer while the request is still being written.

        A server may answer (413, 431) before it read the whole request, and then close: a
        client that writes it all first would see a broken pipe instead of the answer.
        ``head_padding`` adds a header of that many bytes.
        """
        headers = self.headers(extra)
        if body.length is None:
            headers["transfer-encoding"] = "chunked"
        else:
            headers["content-length"] = str(body.length)
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\nconnection: close\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        padding = Body.repeated(b"a", head_padding, declare=True)
        sock = socket.create_connection((self.host, self.port), timeout=ANSWER_TIMEOUT_S)
        started = time.perf_counter()
        try:
            writer = threading.Thread(
                target=_write_request,
                args=(sock, head.encode("latin-1"), padding, body),
                name="request-writer",
                daemon=True,
            )
            writer.start()
            response = http.client.HTTPResponse(sock, method=method)
            response.begin()
            content = response.read()
            seconds = time.perf_counter() - started
            pid = response.getheader("x-worker-pid")
            answer = Answer(
                status=response.status,
                content_type=response.getheader("content-type") or "",
                body=content,
                worker_pid=int(pid) if pid and pid.isdigit() else None,
                seconds=seconds,
            )
        finally:
            # Wakes the writer if it is still blocked on a body the server stopped reading.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        writer.join(10.0)
        return answer


def _write_request(sock: socket.socket, head: bytes, padding: Body, body: Body) -> None:
    """Write the head (with a padding header), then the body, until done or refused."""
    try:
        sock.sendall(head)
        if padding.length:
            sock.sendall(b"x-padding: ")
            for chunk in padding.chunks():
                sock.sendall(chunk)
            sock.sendall(b"\r\n")
        sock.sendall(b"\r\n")
        for chunk in body.chunks():
            if body.length is None:
                sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            else:
                sock.sendall(chunk)
        if body.length is None:
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        # The server answered and closed before reading it all: what a refusal looks like.
        return
