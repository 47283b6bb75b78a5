"""Run ``promise serve`` in a child process on a free local port (for tests and benchmarks).

Only the standard library is used, so this works without the dev tools installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["ServerProcess", "free_port", "rss_kib", "serve_command"]

# How often readiness is polled while a server starts.
POLL_INTERVAL_S = 0.05
LOG_TAIL_CHARS = 4000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_command(data_dir: Path, *options: str, workers: int = 2) -> list[str]:
    """The ``promise serve`` command line of this interpreter, with more ``options`` after."""
    return [
        sys.executable,
        "-m",
        "promise.cli",
        "serve",
        "--workers",
        str(workers),
        "--data-dir",
        str(data_dir),
        *options,
    ]


def rss_kib(pid: int) -> dict[str, int]:
    """Resident (VmRSS) and peak resident (VmHWM) memory of a process, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


class ServerProcess:
    """A ``python -m promise.cli serve`` child process; use as a context manager."""

    def __init__(
        self,
        *,
        data_dir: Path,
        workers: int = 2,
        snapshot: Path | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        host: str = "127.0.0.1",
        prefix: Sequence[str] = (),
    ) -> None:
        """Configure the server; nothing runs until :meth:`start`.

        ``host`` is the address it binds and is reached at; ``prefix`` runs the command under
        another one (``ip netns exec NAME``: a server on a host of its own).
        """
        self.port = free_port()
        self.host = host
        self.prefix = tuple(prefix)
        self.base_url = f"http://{host}:{self.port}"
        self.workers = workers
        self.data_dir = data_dir
        self.snapshot = snapshot
        self.log_path = log_path or data_dir / "server.log"
        self._env = env or {}
        self._process: subprocess.Popen[bytes] | None = None
        self.worker_pids: set[int] = set()
        self.api_key: str | None = None

    def _environment(self) -> dict[str, str]:
        """The child's environment: ours, this checkout on the path, then the configured."""
        # The child imports this checkout even when the project is not installed.
        root = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "PYTHONPATH": path, **self._env}

    def make_key(
        self, *scopes: str, name: str = "launcher", rate: float = 1e6, burst: int | None = None
    ) -> str:
        """A new API key with ``scopes`` in this server's authority (every role by default)."""
        roles = scopes or ("promise", "reserve", "inventory", "admin", "analyst")
        command = [
            *self.prefix,
            sys.executable,
            "-m",
            "promise.cli",
            "keys",
            "create",
            "--name",
            name,
            "--data-dir",
            str(self.data_dir),
            "--rate",
            str(rate),
            "--burst",
            str(burst or int(rate)),
        ]
        for role in roles:
            command += ["--scope", role]
        done = subprocess.run(
            command, env=self._environment(), capture_output=True, check=False, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"promise keys create failed: {done.stderr.decode()[-2000:]}")
        return done.stdout.decode().strip()

    @property
    def auth_headers(self) -> dict[str, str]:
        """The Authorization header of the key made at start (every role, no practical rate)."""
        if self.api_key is None:
            raise RuntimeError("the server has not been started, so it has no key yet")
        return {"Authorization": f"Bearer {self.api_key}"}

    def start(self, timeout_s: float = 120.0) -> ServerProcess:
        """Start the server and wait until every worker reports ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            *self.prefix,
            *serve_command(
                self.data_dir, "--host", self.host, "--port", str(self.port), workers=self.workers
            ),
        ]
        if self.snapshot is not None:
            command += ["--snapshot", str(self.snapshot)]
        env = self._environment()
        if self.api_key is None:
            # Made before the server starts, in the authority it will use: callers need one.
            self.api_key = self.make_key()
        with self.log_path.open("wb") as log:
            # A session of its own, so kill() reaches the workers too.
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.wait_ready(timeout_s)
        return self

    def fetch(self, path: str) -> tuple[int, bytes]:
        """GET ``path`` with this server's key (once made) on a fresh connection."""
        headers = {} if self.api_key is None else self.auth_headers
        request = urllib.request.Request(self.base_url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get_json(self, path: str) -> tuple[int, dict[str, object]]:
        """GET ``path`` on a fresh connection; status and JSON body."""
        status, body = self.fetch(path)
        return status, json.loads(body or b"{}")

    def wait_ready(self, timeout_s: float) -> set[int]:
        """Poll /readyz on fresh connections until ``workers`` distinct workers are ready."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"server exited with {self._process.returncode}\n{self.log()}")
            with contextlib.suppress(OSError, ValueError):
                status, body = self.get_json("/readyz")
                pid = body.get("pid")
                if status == 200 and isinstance(pid, int):
                    self.worker_pids.add(pid)
                    if len(self.worker_pids) >= self.workers:
                        return self.worker_pids
            time.sleep(POLL_INTERVAL_S)
        raise TimeoutError(f"server not ready within {timeout_s} s\n{self.log()}")

    @property
    def pid(self) -> int | None:
        """Process id of the server's parent process (None before start)."""
        return None if self._process is None else self._process.pid

    def log(self) -> str:
        """The tail of the server's log."""
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return ""

    def worker_memory(self) -> dict[int, dict[str, int]]:
        """VmRSS and VmHWM (KiB) of every worker seen ready."""
        return {pid: rss_kib(pid) for pid in sorted(self.worker_pids)}

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask the server to shut down; kill it if it does not within ``timeout_s``."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)

    def kill(self, timeout_s: float = 15.0) -> None:
        """SIGKILL the server and its workers: no shutdown, no flush (for crash tests)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout_s)

    def __enter__(self) -> ServerProcess:
        """Start the server if it is not running yet."""
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()
