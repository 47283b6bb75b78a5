"""A TCP forwarder the test controls: cut the link to a server, then restore it.

The proxy listens on a local address (127.0.0.1 unless told; a free port, kept for its whole
life) and forwards every connection to an upstream address. :meth:`TcpProxy.cut` drops every
open connection and stops listening, so new connections are refused, as when a database
server goes away; :meth:`TcpProxy.restore` listens again on the same port. An asyncio loop
runs in a thread of its own, so the test's own threads and event loops stay free.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

import psycopg.conninfo

__all__ = ["TcpProxy"]

T = TypeVar("T")
CHUNK = 65536
CONTROL_TIMEOUT_S = 10.0


class TcpProxy:
    """Forwards ``listen_host:port`` to ``upstream``; use as a context manager."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        listen_host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Forward ``listen_host:port`` (a free port for 0) to ``upstream_host:upstream_port``.

        Nothing listens until :meth:`start`.
        """
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host
        self.port = port
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy")
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def to_server_of(cls, dsn: str, *, listen_host: str = "127.0.0.1", port: int = 0) -> TcpProxy:
        """A proxy (not started) from ``listen_host:port`` to the server a DSN names."""
        params = psycopg.conninfo.conninfo_to_dict(dsn)
        upstream = (str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
        return cls(*upstream, listen_host=listen_host, port=port)

    def dsn(self, dsn: str) -> str:
        """``dsn`` with its host and port replaced by the proxy's (the rest kept)."""
        return psycopg.conninfo.make_conninfo(dsn, host=self.listen_host, port=self.port)

    def _control(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the proxy's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CONTROL_TIMEOUT_S)

    def start(self) -> TcpProxy:
        """Start the loop and listen on a free port."""
        self._thread.start()
        self._control(self._listen())
        return self

    async def _listen(self) -> None:
        """Listen on ``port`` (a free one the first time)."""
        self._server = await asyncio.start_server(self._serve, self.listen_host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Connect upstream and pump bytes both ways until either side closes."""
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        links = {writer, up_writer}
        self._links |= links
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._links -= links
            for link in links:
                link.transport.abort()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy ``reader`` to ``writer``; an end or error on one side closes the other."""
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()

    async def _cut(self) -> None:
        """Stop listening (new connections are refused) and drop every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self._links):
            link.transport.abort()

    def cut(self) -> None:
        """Refuse new connections and drop the open ones, as a database that went away."""
        self._control(self._cut())

    def restore(self) -> None:
        """Accept connections again on the same port."""
        self._control(self._listen())

    async def _drain(self) -> None:
        """Cut, then let every connection's task finish (none is left pending at close)."""
        await self._cut()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CONTROL_TIMEOUT_S)

    def stop(self) -> None:
        """Cut everything and stop the loop's thread."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._control(self._drain())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONTROL_TIMEOUT_S)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        """Start listening."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the proxy."""
        self.stop()
