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

import contextlib
import dataclasses
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bench.startup import start_together
from tests.launcher import ServerProcess, free_port
from tests.stock.tcp_proxy import TcpProxy

__all__ = ["Host", "hosts", "netns_available", "servers_on_hosts"]

# 10.<NET_BASE + pid % 50>.<host index>.0/30: distinct per test process.
NET_BASE = 200
_CALLS = itertools.count()


def _ip(*args: str) -> None:
    """Run one ``ip`` command, failing loudly with what it said."""
    done = subprocess.run(["ip", *args], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, ["ip", *args], stderr=done.stderr)


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
    # Names and subnets differ per call too: a deleted namespace's veth pair may still be
    # going away while the next test makes its own.
    call = next(_CALLS)
    try:
        out: list[Host] = []
        for index in range(1, count + 1):
            tag = f"{os.getpid() % 10000}x{call % 100}"
            name = f"pe-{tag}-{index}"
            outer, inner = f"pe{tag}o{index}", f"pe{tag}i{index}"
            third = (call % 60) * 4 + index
            gateway, address = f"10.{net}.{third}.1", f"10.{net}.{third}.2"
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


@contextlib.contextmanager
def servers_on_hosts(
    root: Path,
    dsn: str,
    snapshot_file: Path,
    *,
    count: int = 2,
    workers: int = 2,
    env: dict[str, str] | None = None,
    redis: tuple[str, int] | None = None,
) -> Iterator[tuple[list[ServerProcess], bool]]:
    """``count`` servers on hosts of their own sharing PostgreSQL ``dsn``; whether in namespaces.

    Each has its own data directory under ``root``. Without namespaces they run as separate
    processes on 127.0.0.1. With ``redis`` (host, port) every host also shares that Redis for
    its rate limits, reached like the database.
    """
    use_netns = netns_available()
    with contextlib.ExitStack() as stack:
        places: list[Host | None] = (
            list(stack.enter_context(hosts(count))) if use_netns else [None] * count
        )
        servers = []
        for index, place in enumerate(places):
            url = dsn
            extra = dict(env or {})
            if place is not None:
                # The host reaches PostgreSQL over its link, through a forwarder on this side.
                proxy = TcpProxy.to_server_of(dsn, listen_host=place.gateway, port=free_port())
                url = stack.enter_context(proxy).dsn(dsn)
            if redis is not None:
                redis_at = redis
                if place is not None:
                    forward = TcpProxy(*redis, listen_host=place.gateway, port=free_port())
                    redis_at = (place.gateway, stack.enter_context(forward).port)
                extra["PROMISE_RATE_LIMIT_REDIS_URL"] = f"redis://{redis_at[0]}:{redis_at[1]}/0"
            servers.append(
                ServerProcess(
                    data_dir=root / f"host-{index}",
                    workers=workers,
                    snapshot=snapshot_file,
                    env={
                        "PROMISE_DATABASE_URL": url,
                        "PROMISE_LOG_LEVEL": "WARNING",
                        **extra,
                    },
                    host="127.0.0.1" if place is None else place.address,
                    prefix=() if place is None else place.prefix,
                )
            )
        for server in servers:
            stack.callback(server.stop)
        # Together: each server's start is mostly one process importing on one core.
        failed = [start.error for start in start_together(servers) if start.error is not None]
        if failed:
            raise RuntimeError(f"servers failed to start: {failed}")
        yield servers, use_netns
