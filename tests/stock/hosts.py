"""Hosts of their own for multi-host tests: Linux network namespaces joined by veth pairs.

Each :class:`Host` is a network namespace with its own loopback and one veth link to this
(the test's) namespace, on a /30 of its own: the server inside binds the namespace's address
and reaches PostgreSQL through a TCP forwarder the test runs on this side of the link. Two
servers in two namespaces share nothing but what crosses the links, as two machines would.

Namespaces need root and ``ip``; :func:`netns_available` says whether this machine allows them,
and the tests fall back to separate processes on 127.0.0.1 (with separate data directories)
when it does not, saying so in their output.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg

from promise.launcher import ServerProcess, free_port

__all__ = ["Host", "TcpForwarder", "hosts", "netns_available", "servers_on_hosts"]

# 10.<NET_BASE + pid % 50>.<host index>.0/30: distinct per test process.
NET_BASE = 200
PG_TARGET = ("127.0.0.1", 5432)
CHUNK = 65536


def _ip(*args: str) -> None:
    """Run one ``ip`` command, failing loudly."""
    subprocess.run(["ip", *args], check=True, capture_output=True)


def netns_available() -> bool:
    """Whether this process may create network namespaces (root and the ``ip`` tool)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"pe-probe-{os.getpid()}"
    try:
        _ip("netns", "add", name)
    except (subprocess.CalledProcessError, OSError):
        return False
    _ip("netns", "del", name)
    return True


@dataclasses.dataclass(frozen=True, slots=True)
class Host:
    """A place to run a server: its address, the command prefix that enters it, the PG host."""

    name: str
    address: str  # what the server binds and clients reach
    gateway: str  # this side of its link: where it reaches services of the test's namespace
    prefix: tuple[str, ...]


@contextlib.contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    """``count`` network namespaces, each linked to this one; removed afterwards."""
    made: list[str] = []
    net = NET_BASE + os.getpid() % 50
    try:
        out: list[Host] = []
        for index in range(1, count + 1):
            name = f"pe-{os.getpid()}-{index}"
            outer, inner = f"pe{os.getpid() % 100000}o{index}", f"pe{os.getpid() % 100000}i{index}"
            gateway, address = f"10.{net}.{index}.1", f"10.{net}.{index}.2"
            _ip("netns", "add", name)
            made.append(name)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", name)
            _ip("addr", "add", f"{gateway}/30", "dev", outer)
            _ip("link", "set", outer, "up")
            _ip("-n", name, "addr", "add", f"{address}/30", "dev", inner)
            _ip("-n", name, "link", "set", inner, "up")
            _ip("-n", name, "link", "set", "lo", "up")
            out.append(Host(name, address, gateway, ("ip", "netns", "exec", name)))
        yield out
    finally:
        for name in made:
            # Deleting the namespace deletes its end of the veth pair, and so the pair.
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", name)


class TcpForwarder:
    """Forwards connections from ``listen`` addresses to ``target``, in a thread of its own."""

    def __init__(self, listen: list[tuple[str, int]], target: tuple[str, int]) -> None:
        """Listen on every (host, port) of ``listen`` once started."""
        self._listen = listen
        self._target = target
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction until it closes."""
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Join one client connection to a new connection to the target."""
        try:
            target_reader, target_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, target_writer), self._pipe(target_reader, writer))

    async def _start(self) -> None:
        """Bind every listening address."""
        for host, port in self._listen:
            self._servers.append(await asyncio.start_server(self._handle, host, port))

    def __enter__(self) -> TcpForwarder:
        """Start forwarding."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop listening and stop the thread."""

        async def stop() -> None:
            for server in self._servers:
                server.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextlib.contextmanager
def servers_on_hosts(
    root: Path,
    dsn: str,
    snapshot_file: Path,
    *,
    count: int = 2,
    workers: int = 2,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[list[ServerProcess], bool]]:
    """``count`` servers on hosts of their own sharing PostgreSQL ``dsn``; whether in namespaces.

    Each has its own data directory under ``root``. Without namespaces they run as separate
    processes on 127.0.0.1.
    """
    use_netns = netns_available()
    target = psycopg.conninfo.conninfo_to_dict(dsn)
    pg = (str(target.get("host") or PG_TARGET[0]), int(target.get("port") or PG_TARGET[1]))
    with contextlib.ExitStack() as stack:
        places: list[Host | None] = (
            list(stack.enter_context(hosts(count))) if use_netns else [None] * count
        )
        forward_port = free_port()
        if use_netns:
            listen = [(place.gateway, forward_port) for place in places if place is not None]
            stack.enter_context(TcpForwarder(listen, pg))
        servers = []
        for index, place in enumerate(places):
            url = dsn
            if place is not None:
                url = psycopg.conninfo.make_conninfo(dsn, host=place.gateway, port=forward_port)
            servers.append(
                ServerProcess(
                    data_dir=root / f"host-{index}",
                    workers=workers,
                    snapshot=snapshot_file,
                    env={
                        "PROMISE_DATABASE_URL": url,
                        "PROMISE_LOG_LEVEL": "WARNING",
                        **(env or {}),
                    },
                    host="127.0.0.1" if place is None else place.address,
                    prefix=() if place is None else place.prefix,
                )
            )
        for server in servers:
            server.start()
            stack.callback(server.stop)
        yield servers, use_netns
