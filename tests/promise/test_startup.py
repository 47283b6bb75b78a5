"""Start-up over real processes: concurrent servers on one data dir, warm-before-listen workers.

Servers serve the small stock test network, so they start in seconds; ``bench.startup`` runs
the longer versions of the two start-up races (20 two-server trials, 100 store trials): here
the two-server race runs once per suite.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from bench.startup import StoreOpeners, metrics_status, start_together
from models import Snapshot
from promise import metrics_dir
from promise.app import create_app
from promise.settings import Settings
from tests.auth import authorized_client
from tests.launcher import ServerProcess, free_port, serve_command
from tests.promise.promise_helpers import metric_value, tiny_snapshot
from tests.stock.stock_cases import network

SERVER_TRIALS = 1
STORE_TRIALS = 10
LOAD_THREADS = 4
ROOT = Path(__file__).resolve().parents[2]
# Enough answers before the kill that the load is known to flow through both workers.
ANSWERS_BEFORE_KILL = 40
# Load keeps running this long after the replacement worker reported ready.
LOAD_AFTER_RESTART_S = 1.0
RESTART_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def small_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stock test network as a snapshot file (servers on it start fast)."""
    path = tmp_path_factory.mktemp("startup") / "snapshot.json"
    path.write_text(network(dc_a=1_000_000, store_a=1_000, dc_b=1_000_000).model_dump_json())
    return path


def server(data_dir: Path, snapshot: Path, log_name: str, workers: int = 2) -> ServerProcess:
    """A server on ``data_dir`` logging to its own file beside it (several share a data dir)."""
    return ServerProcess(
        data_dir=data_dir,
        workers=workers,
        snapshot=snapshot,
        env={"PROMISE_LOG_LEVEL": "WARNING"},
        log_path=data_dir.parent / f"{log_name}.log",
    )


def instance_dirs(data_dir: Path) -> set[Path]:
    """The per-server metrics directories under a data dir."""
    root = data_dir / "metrics"
    return {p for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()


def cart(i: int) -> dict[str, Any]:
    """A two-line web cart to Manhattan on the stock test network."""
    return {
        "cart": {
            "cart_id": f"load-{i}",
            "channel": "web",
            "lines": [
                {"line_id": "l1", "sku": "A", "quantity": 1},
                {"line_id": "l2", "sku": "B", "quantity": 2},
            ],
        },
        "destination": {"postal_code": "10001"},
    }


@pytest.mark.parametrize("trial", range(SERVER_TRIALS))
def test_two_servers_started_at_once_on_one_data_dir_both_get_ready(
    trial: int, tmp_path: Path, small_snapshot: Path
) -> None:
    """Both servers get every worker ready, each with its own metrics dir, removed at stop."""
    data_dir = tmp_path / "data"
    servers = [server(data_dir, small_snapshot, f"server-{i}") for i in range(2)]
    try:
        starts = start_together(servers)
        assert [s.error for s in starts] == [None, None], f"trial {trial}"
        assert len(instance_dirs(data_dir)) == 2
        assert [metrics_status(s) for s in servers] == [200, 200]
    finally:
        for s in servers:
            s.stop()
    # A clean shutdown takes the server's own directory with it.
    assert instance_dirs(data_dir) == set()


def test_a_third_server_leaves_the_metrics_of_running_servers_alone(
    tmp_path: Path, small_snapshot: Path
) -> None:
    """Starting a server beside two running ones reverts nothing: metrics files, counts, swap."""
    data_dir = tmp_path / "data"
    pair = [server(data_dir, small_snapshot, f"server-{i}") for i in range(2)]
    third = server(data_dir, small_snapshot, "third", workers=1)
    try:
        assert [s.error for s in start_together(pair)] == [None, None]
        for i, running in enumerate(pair):
            with httpx.Client(
                base_url=running.base_url, headers=running.auth_headers, timeout=30
            ) as client:
                for j in range(3 + i):
                    assert client.post("/v1/promise", json=cart(j)).status_code == 200
        swapped = network(dc_a=7).model_copy(update={"version": "swapped"})
        with httpx.Client(
            base_url=pair[0].base_url, headers=pair[0].auth_headers, timeout=30
        ) as client:
            put = client.put(
                "/v1/snapshot",
                content=swapped.model_dump_json(),
                headers={"content-type": "application/json"},
            )
            assert put.status_code == 200, put.text
        dirs = instance_dirs(data_dir)
        files = {d: {f.name for f in d.glob("*.db")} for d in dirs}
        assert len(dirs) == 2
        assert all(files.values())
        third.start()  # with the start-up --snapshot the pair began with
        for running in (*pair, third):
            with httpx.Client(
                base_url=running.base_url, headers=running.auth_headers, timeout=30
            ) as client:
                assert client.get("/v1/snapshot").json()["version"] == "swapped"
        assert dirs < instance_dirs(data_dir)
        assert {d: {f.name for f in d.glob("*.db")} for d in dirs} == files
        for i, running in enumerate(pair):
            with httpx.Client(
                base_url=running.base_url, headers=running.auth_headers, timeout=30
            ) as client:
                response = client.get("/metrics")
            assert response.status_code == 200
            served = metric_value(
                response.text, "promise_http_requests_total", route="/v1/promise", status="200"
            )
            assert served == 3 + i
    finally:
        for s in (*pair, third):
            s.stop()


def _claim_in_child(root: Path, *, then_sleep: bool) -> subprocess.Popen[str]:
    """A Python process that claims a metrics dir under ``root``, prints it, then sleeps."""
    code = (
        "import sys, time; from pathlib import Path; from promise import metrics_dir; "
        f"print(metrics_dir.claim(Path({str(root)!r})).path, flush=True); "
        f"time.sleep({600 if then_sleep else 0})"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_a_claim_removes_only_the_directories_of_dead_servers(tmp_path: Path) -> None:
    """Dirs of killed owners and lock-less leftovers go; a live owner's dir stays."""
    root = tmp_path / "metrics"
    live = _claim_in_child(root, then_sleep=True)
    dead = _claim_in_child(root, then_sleep=True)
    try:
        assert live.stdout is not None
        assert dead.stdout is not None
        live_dir = Path(live.stdout.readline().strip())
        dead_dir = Path(dead.stdout.readline().strip())
        (live_dir / "counter_1.db").write_bytes(b"live")
        (dead_dir / "counter_2.db").write_bytes(b"dead")
        dead.send_signal(signal.SIGKILL)
        dead.wait(10)
        leftover = root / "leftover"
        leftover.mkdir()
        mine = metrics_dir.claim(root)
        assert {p for p in root.iterdir() if p.is_dir()} == {live_dir, mine.path}
        assert (live_dir / "counter_1.db").read_bytes() == b"live"
        assert set(mine.swept) == {dead_dir, leftover}
        mine.release()
        assert not mine.path.exists()
    finally:
        for child in (live, dead):
            child.kill()
            child.wait(10)
            if child.stdout is not None:
                child.stdout.close()


def test_eight_processes_open_one_fresh_store_at_once(tmp_path: Path) -> None:
    """Several trials: eight processes open a fresh SQLite store together; all open and write."""
    with StoreOpeners() as openers:
        trials = [
            openers.trial(tmp_path / f"trial-{i}" / "stock.sqlite3") for i in range(STORE_TRIALS)
        ]
    failures = [e for t in trials for e in t.errors if e is not None]
    assert failures == []
    assert [t.recorded for t in trials] == [8] * STORE_TRIALS


class Load:
    """Client threads sending promises on fresh connections, counting every outcome."""

    def __init__(self, server: ServerProcess, threads: int = LOAD_THREADS) -> None:
        """Prepare ``threads`` senders to ``server``; nothing runs until :meth:`start`."""
        self.base_url = server.base_url
        self.auth_headers = server.auth_headers
        self.statuses: collections.Counter[int] = collections.Counter()
        self.not_ready: list[str] = []
        self.connection_errors: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, index: int) -> None:
        """Send promises until stopped (one new connection per request, spread by the kernel)."""
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(
            base_url=self.base_url, headers=self.auth_headers, timeout=30, limits=limits
        ) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    response = client.post("/v1/promise", json=cart(index * 1_000_000 + i))
                except httpx.TransportError as exc:
                    with self._lock:
                        self.connection_errors[type(exc).__name__] += 1
                    continue
                with self._lock:
                    self.statuses[response.status_code] += 1
                    if response.status_code == 503:
                        self.not_ready.append(response.text[:200])

    @property
    def answered(self) -> int:
        """Responses received so far."""
        with self._lock:
            return sum(self.statuses.values())

    def start(self) -> None:
        """Start the senders."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the senders and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def ready_workers(
    server: ServerProcess, *, gone: int, timeout_s: float
) -> tuple[set[int], list[object]]:
    """Pids answering /readyz 200 on fresh connections, polled until two besides ``gone``.

    Also every answer that was not 200 (a worker that listens before it is warm says 503).
    """
    seen: set[int] = set()
    refused: list[object] = []
    deadline = time.monotonic() + timeout_s
    while len(seen) < server.workers and time.monotonic() < deadline:
        try:
            status, body = server.get_json("/readyz")
        except OSError:
            # A connection the killed worker had queued but never accepted.
            continue
        pid = body.get("pid")
        if status != 200 or not isinstance(pid, int):
            refused.append(body)
        elif pid != gone:
            seen.add(pid)
        time.sleep(0.02)
    return seen, refused


def test_a_worker_killed_under_load_takes_traffic_again_only_once_warm(
    tmp_path: Path, small_snapshot: Path
) -> None:
    """SIGKILL of a worker under load: not one 503, and two ready workers again afterwards."""
    running = server(tmp_path / "data", small_snapshot, "server").start()
    load = Load(running)
    try:
        load.start()
        deadline = time.monotonic() + 60
        while load.answered < ANSWERS_BEFORE_KILL:
            assert time.monotonic() < deadline, running.log()
            time.sleep(0.05)
        victim, survivor = sorted(running.worker_pids)
        os.kill(victim, signal.SIGKILL)
        answered_at_kill = load.answered
        workers, refused = ready_workers(running, gone=victim, timeout_s=RESTART_TIMEOUT_S)
        answered_at_restart = load.answered
        time.sleep(LOAD_AFTER_RESTART_S)
    finally:
        load.stop()
        running.stop()
    # Requests in flight on the killed worker may fail; they are counted, not failed on.
    sys.stderr.write(
        f"answers {dict(load.statuses)}, connection errors {dict(load.connection_errors)}\n"
    )
    assert load.not_ready == []
    assert refused == []
    assert set(load.statuses) == {200}
    assert answered_at_restart > answered_at_kill
    assert load.answered > answered_at_restart
    assert survivor in workers
    assert len(workers) == 2
    assert victim not in workers


def test_a_worker_that_cannot_start_ends_the_server_with_an_error(tmp_path: Path) -> None:
    """A snapshot every worker fails to load: workers log why and exit, the server exits 1."""
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": "broken"}')
    command = serve_command(
        tmp_path / "data", "--port", str(free_port()), "--snapshot", str(broken)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMISE_LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 1, done.stderr[-2000:]
    failures = [line for line in done.stderr.splitlines() if "start-up failed" in line]
    assert failures
    assert all('"level":"ERROR"' in line and "ValidationError" in line for line in failures)
    assert "giving up" in done.stderr
    assert instance_dirs(tmp_path / "data") == set()


def test_capture_into_one_file_with_several_workers_is_refused(tmp_path: Path) -> None:
    """--capture FILE.duckdb --workers 2 exits 2 and suggests a directory."""
    command = serve_command(tmp_path / "data", "--capture", str(tmp_path / "x.duckdb"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 2
    assert "x.duckdb" in done.stderr
    assert "directory" in done.stderr
    assert not (tmp_path / "data").exists()


# --- in process -----------------------------------------------------------------------------


def leaves(exc: BaseException) -> list[BaseException]:
    """The exception itself, or every exception inside a (nested) group."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def test_in_process_app_is_ready_once_its_lifespan_started(data_dir: Path) -> None:
    """By default start-up waits for warm-up and the snapshot: the first /readyz is 200."""
    loads: list[float] = []

    def slow_snapshot() -> Snapshot:
        time.sleep(0.3)
        loads.append(time.monotonic())
        return tiny_snapshot("tiny-v1")

    app = create_app(Settings(data_dir=data_dir), initial_snapshot=slow_snapshot)
    with authorized_client(app) as client:
        entered = time.monotonic()
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["snapshot_version"] == "tiny-v1"
    assert len(loads) == 1
    assert loads[0] <= entered


def test_a_failed_start_up_fails_the_lifespan_and_logs_why(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A snapshot that cannot load fails start-up (the worker would exit) with an ERROR log."""

    def missing() -> Snapshot:
        raise FileNotFoundError("no snapshot here")

    app = create_app(Settings(data_dir=data_dir), initial_snapshot=missing)
    failure: Exception | None = None
    with caplog.at_level(logging.ERROR, logger="promise.app"):
        try:
            with TestClient(app):
                pass
        except Exception as exc:  # the lifespan's failure, maybe inside a task group's
            failure = exc
    assert failure is not None
    assert any(
        isinstance(e, FileNotFoundError) and "no snapshot here" in str(e) for e in leaves(failure)
    )
    errors = [r for r in caplog.records if r.getMessage() == "start-up failed; the worker exits"]
    assert len(errors) == 1
    assert "no snapshot here" in str(getattr(errors[0], "reason", ""))
