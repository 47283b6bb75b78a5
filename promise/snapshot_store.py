"""The live snapshot of a worker, and how a swap reaches every worker process.

A swap writes the validated snapshot JSON to ``<data_dir>/snapshots/<token>.json`` and then
replaces ``<data_dir>/live.json``, a small pointer naming that file, both with write-to-temp +
``os.replace`` so a reader sees the old file or the new one, never half of one. Each worker
reads the pointer (a few dozen bytes) at the start of every request that uses the live
snapshot; when its bytes changed, the worker loads the named snapshot under a lock, warms the
solver on it and only then serves with it, so a reload happens once per worker per swap and
any request that starts after a swap returned sees the new version on every worker.

A request holds the :class:`LiveSnapshot` it started with, so a swap during a solve never mixes
two snapshots in one answer. Writers serialise on an advisory file lock so that concurrent swaps
from different workers never delete each other's files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import anyio.to_thread
from pydantic import AwareDatetime, ValidationError

from models import Frozen, Snapshot
from promise.errors import NotReadyError

__all__ = ["POINTER_FILE", "LiveSnapshot", "Pointer", "SnapshotStore", "reset_pointer"]

log = logging.getLogger(__name__)

POINTER_FILE = "live.json"
SNAPSHOT_DIR = "snapshots"
LOCK_FILE = ".swap.lock"
# A worker may be reading the previous file when the next swap lands; keep that one too.
RETAINED_FILES = 2
# A pointer can move on while a worker reads the file it named: try the newer one instead.
LOAD_ATTEMPTS = 3


class Pointer(Frozen):
    """Contents of ``live.json``: which snapshot every worker should serve."""

    token: str
    file: str | None = None  # None: the snapshot the server was started with
    version: str | None = None
    written_at: AwareDatetime


@dataclasses.dataclass(frozen=True, slots=True)
class LiveSnapshot:
    """A loaded, warmed snapshot and the swap token that installed it."""

    snapshot: Snapshot
    token: str
    loaded_at: dt.datetime


def _new_token(prefix: str) -> str:
    """A unique token that sorts by creation time."""
    return f"{prefix}-{time.time_ns():x}-{uuid.uuid4().hex[:8]}"


def _write_atomic(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` so that readers see the old or the new file only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def _swap_lock(data_dir: Path) -> Iterator[None]:
    """Serialise swaps across worker processes (advisory lock on a file in the data dir)."""
    with (data_dir / LOCK_FILE).open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _pointer_bytes(pointer: Pointer) -> bytes:
    """Serialised pointer."""
    return pointer.model_dump_json().encode()


def reset_pointer(data_dir: Path) -> Pointer:
    """Point every worker at the start-up snapshot and drop files of earlier swaps.

    Called once by the server's parent process before its workers start, so that a restart
    serves the configured snapshot rather than whatever an earlier run swapped in.
    """
    snapshots = data_dir / SNAPSHOT_DIR
    snapshots.mkdir(parents=True, exist_ok=True)
    pointer = Pointer(token=_new_token("boot"), written_at=dt.datetime.now(dt.UTC))
    with _swap_lock(data_dir):
        _write_atomic(data_dir / POINTER_FILE, _pointer_bytes(pointer))
        for stale in snapshots.glob("*.json"):
            stale.unlink(missing_ok=True)
    return pointer


class SnapshotStore:
    """Holds this worker's live snapshot and keeps it in step with the shared pointer."""

    def __init__(
        self,
        data_dir: Path,
        *,
        initial: Callable[[], Snapshot],
        warm: Callable[[Snapshot], None],
        retry_after_s: int = 1,
        on_reload: Callable[[LiveSnapshot], None] | None = None,
        on_retire: Callable[[Snapshot], None] | None = None,
    ) -> None:
        """Keep the data dir, the loader of the start-up snapshot and the warm-up hook."""
        self._data_dir = data_dir
        self._pointer_path = data_dir / POINTER_FILE
        self._snapshots = data_dir / SNAPSHOT_DIR
        self._initial = initial
        self._warm = warm
        self._retry_after_s = retry_after_s
        self._on_reload = on_reload
        self._on_retire = on_retire
        self._live: LiveSnapshot | None = None
        self._seen: bytes | None = None
        self._lock: anyio.Lock | None = None

    @property
    def ready(self) -> bool:
        """Whether a snapshot is loaded and warmed."""
        return self._live is not None

    @property
    def live(self) -> LiveSnapshot | None:
        """The snapshot this worker serves now (None before start-up finished)."""
        return self._live

    def _get_lock(self) -> anyio.Lock:
        """The reload lock, created inside the event loop that uses it."""
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    def _read_pointer(self) -> bytes | None:
        """Raw bytes of the pointer file (None when it does not exist)."""
        try:
            return self._pointer_path.read_bytes()
        except FileNotFoundError:
            return None

    def _ensure_pointer(self) -> bytes:
        """The pointer's bytes, creating a start-up pointer when no parent process wrote one."""
        self._snapshots.mkdir(parents=True, exist_ok=True)
        raw = self._read_pointer()
        if raw is not None:
            return raw
        pointer = Pointer(token=_new_token("boot"), written_at=dt.datetime.now(dt.UTC))
        with _swap_lock(self._data_dir):
            raw = self._read_pointer()
            if raw is None:
                raw = _pointer_bytes(pointer)
                _write_atomic(self._pointer_path, raw)
        return raw

    def _load(self, raw: bytes) -> tuple[LiveSnapshot, bytes]:
        """Load and warm the snapshot a pointer names (runs in a worker thread)."""
        for _ in range(LOAD_ATTEMPTS):
            pointer = Pointer.model_validate_json(raw)
            try:
                if pointer.file is None:
                    snapshot = self._initial()
                else:
                    content = (self._snapshots / pointer.file).read_bytes()
                    snapshot = Snapshot.model_validate_json(content)
            except FileNotFoundError:
                # A newer swap replaced the file between reading the pointer and the file.
                newer = self._read_pointer()
                if newer is None or newer == raw:
                    raise
                raw = newer
                continue
            self._warm(snapshot)
            return LiveSnapshot(snapshot, pointer.token, dt.datetime.now(dt.UTC)), raw
        raise FileNotFoundError(f"snapshot pointer kept moving after {LOAD_ATTEMPTS} attempts")

    async def start(self) -> LiveSnapshot:
        """Load and warm the snapshot the pointer names (the start-up one on a fresh start)."""
        async with self._get_lock():
            raw = await anyio.to_thread.run_sync(self._ensure_pointer, abandon_on_cancel=True)
            live, raw = await anyio.to_thread.run_sync(self._load, raw, abandon_on_cancel=True)
            self._install(live, raw)
        log.info(
            "snapshot loaded",
            extra={"snapshot_version": live.snapshot.version, "token": live.token},
        )
        return live

    def _install(self, live: LiveSnapshot, raw: bytes) -> None:
        """Make ``live`` the live snapshot and let go of the one it replaces."""
        previous = self._live
        self._live, self._seen = live, raw
        if previous is not None and previous.snapshot is not live.snapshot and self._on_retire:
            self._on_retire(previous.snapshot)

    async def current(self) -> LiveSnapshot:
        """The live snapshot, first catching up with a swap made by any worker."""
        live = self._live
        if live is None:
            raise NotReadyError("the snapshot is still loading", self._retry_after_s)
        raw = self._read_pointer()
        if raw is None or raw == self._seen:
            return live
        async with self._get_lock():
            # Another request of this worker may have caught up while this one waited.
            raw = self._read_pointer()
            if raw is not None and raw != self._seen:
                await self._catch_up(raw)
        assert self._live is not None
        return self._live

    async def _catch_up(self, raw: bytes) -> None:
        """Reload when the pointer names another token than the live one (lock held)."""
        assert self._live is not None
        try:
            token = Pointer.model_validate_json(raw).token
        except ValidationError:
            log.exception("unreadable snapshot pointer; keeping the live snapshot")
            self._seen = raw
            return
        if token == self._live.token:
            self._seen = raw
            return
        try:
            live, raw = await anyio.to_thread.run_sync(self._load, raw)
        except Exception:
            # The writer validated and warmed this snapshot, so this is disk trouble or a bug:
            # say so loudly and keep serving the previous snapshot rather than failing checkout.
            log.exception("could not load swapped snapshot; keeping the live snapshot")
            self._seen = raw
            return
        self._install(live, raw)
        log.info(
            "snapshot reloaded after a swap",
            extra={"snapshot_version": live.snapshot.version, "token": live.token},
        )
        if self._on_reload is not None:
            self._on_reload(live)

    def _publish(self, snapshot: Snapshot, content: bytes) -> tuple[LiveSnapshot, bytes]:
        """Write the snapshot file, warm it, then move the pointer (runs in a worker thread)."""
        token = _new_token("swap")
        name = f"{token}.json"
        self._snapshots.mkdir(parents=True, exist_ok=True)
        self._warm(snapshot)
        with _swap_lock(self._data_dir):
            _write_atomic(self._snapshots / name, content)
            pointer = Pointer(
                token=token,
                file=name,
                version=snapshot.version,
                written_at=dt.datetime.now(dt.UTC),
            )
            raw = _pointer_bytes(pointer)
            _write_atomic(self._pointer_path, raw)
            # Tokens sort by time: keep the newest files, which include the one just written.
            files = sorted(self._snapshots.glob("*.json"), key=lambda p: p.name, reverse=True)
            for stale in files[RETAINED_FILES:]:
                stale.unlink(missing_ok=True)
        return LiveSnapshot(snapshot, token, dt.datetime.now(dt.UTC)), raw

    async def replace(self, snapshot: Snapshot, content: bytes | None = None) -> LiveSnapshot:
        """Make ``snapshot`` the live one on every worker; ``content`` is its JSON if at hand."""
        body = content if content is not None else snapshot.model_dump_json().encode()
        async with self._get_lock():
            live, raw = await anyio.to_thread.run_sync(self._publish, snapshot, body)
            self._install(live, raw)
        log.info(
            "snapshot swapped",
            extra={"snapshot_version": snapshot.version, "token": live.token},
        )
        return live
