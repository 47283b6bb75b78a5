"""Worker processes that each accept connections on their own ``SO_REUSEPORT`` socket.

uvicorn's ``--workers`` shares one listening socket among the workers, and Linux then hands new
connections to whichever worker waited last: a handful of keep-alive connections (a checkout
tier's connection pool) often all land on one worker while the others idle. With one
``SO_REUSEPORT`` socket per worker the kernel spreads connections across the workers by hash,
as nginx's ``reuseport`` does. Each worker is a plain ``uvicorn.Server``; this module only
starts them, restarts one that dies, and stops them all on SIGINT or SIGTERM.

Workers are forked from a forkserver that imported :mod:`promise.worker_preload` once (the
app's modules, the postal-code and holiday tables): a new worker skips seconds of imports and
table loads, and the forkserver is a fresh single-threaded process, so the fork copies no lock
held by a thread of the supervisor.

A worker binds its socket at once but uvicorn calls ``listen()`` only after the app's start-up
(solver warm, snapshot loaded), and the kernel hands connections to listening sockets only: a
restarted worker takes no traffic until it is warm. A worker whose start-up fails exits with
uvicorn's start-up failure status; after a few of those in a row the supervisor gives up.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing import forkserver
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from promise.http_protocol import BoundedHttpToolsProtocol

__all__ = ["Supervisor", "reuseport_socket", "supports_reuseport"]

log = logging.getLogger(__name__)

APP = "promise.app:serve_app"
# Imported by the forkserver before it forks the first worker.
PRELOAD = "promise.worker_preload"
CHECK_INTERVAL_S = 0.5
# Workers finish in-flight requests on SIGTERM; after this they are killed.
GRACEFUL_S = 10.0
# A worker that dies this soon after starting, this many times in a row, means a broken
# configuration: stop rather than restart forever.
CRASH_WINDOW_S = 5.0
MAX_QUICK_CRASHES = 5


def supports_reuseport() -> bool:
    """Whether this platform offers SO_REUSEPORT."""
    return hasattr(socket, "SO_REUSEPORT")


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket that other workers may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _worker(host: str, port: int, log_config: dict[str, Any]) -> None:
    """One worker process: its own socket, one uvicorn server (runs in the child)."""
    sock = reuseport_socket(host, port)
    config = uvicorn.Config(
        APP,
        factory=True,
        # httptools with a bound on a request's head (promise.http_protocol).
        http=BoundedHttpToolsProtocol,
        log_config=log_config,
        access_log=False,
        timeout_graceful_shutdown=int(GRACEFUL_S),
    )
    # uvicorn (asyncio) calls listen() on sockets it is given.
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Starts ``workers`` worker processes, restarts dead ones, stops them on a signal."""

    def __init__(self, *, host: str, port: int, workers: int, log_config: dict[str, Any]) -> None:
        """Keep the address, the worker count and the logging configuration of the workers."""
        self._host = host
        self._port = port
        self._workers = workers
        self._log_config = log_config
        self._stop = threading.Event()
        self._signal: int | None = None
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([PRELOAD])

    def start_forkserver(self) -> None:
        """Start the process the workers fork from now: its imports overlap the caller's work.

        Call it once the workers' environment is set (the forkserver keeps the environment it
        started with). :meth:`run` starts it anyway if this was not called.
        """
        forkserver.ensure_running()

    def _spawn(self) -> tuple[BaseProcess, float]:
        """Start one worker process."""
        process = self._context.Process(
            target=_worker,
            args=(self._host, self._port, self._log_config),
            name="promise-worker",
        )
        process.start()
        return process, time.monotonic()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Begin a graceful shutdown."""
        log.info("shutting down", extra={"signal": signal.Signals(signum).name})
        self._signal = signum
        self._stop.set()

    def run(self) -> int:
        """Run until SIGINT or SIGTERM; the exit status of the whole server."""
        # Fail fast, in the parent, when the address is taken by a non-reuseport listener.
        reuseport_socket(self._host, self._port).close()
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        workers = [self._spawn() for _ in range(self._workers)]
        log.info(
            "serving",
            extra={"host": self._host, "port": self._port, "workers": self._workers},
        )
        quick_crashes = 0
        status = 0
        while not self._stop.wait(CHECK_INTERVAL_S):
            for i, (process, started) in enumerate(workers):
                if process.is_alive():
                    continue
                lived = time.monotonic() - started
                # uvicorn's status when the app's start-up (warm-up, snapshot load) failed: the
                # worker never served, so it counts as quick however long its start-up took.
                failed_start = process.exitcode == STARTUP_FAILURE
                quick = lived < CRASH_WINDOW_S or failed_start
                quick_crashes = quick_crashes + 1 if quick else 0
                log.error(
                    "worker failed to start; restarting"
                    if failed_start
                    else "worker died; restarting",
                    extra={"worker_pid": process.pid, "exitcode": process.exitcode},
                )
                if quick_crashes >= MAX_QUICK_CRASHES:
                    log.critical("workers keep dying at start-up; giving up")
                    self._stop.set()
                    status = 1
                    break
                workers[i] = self._spawn()
        self._shutdown([process for process, _ in workers])
        return status

    def _shutdown(self, processes: list[BaseProcess]) -> None:
        """SIGTERM every worker (a graceful uvicorn shutdown), then kill stragglers."""
        if self._signal == signal.SIGINT:
            # Ctrl-C reached the workers too (same process group); give them a moment so that
            # a second signal does not turn their graceful shutdown into a forced one.
            deadline = time.monotonic() + 1.0
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + GRACEFUL_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
