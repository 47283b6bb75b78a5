"""Each server's own Prometheus multiprocess directory under ``<data_dir>/metrics``.

Several ``promise serve`` processes may share a data dir (and start at the same instant). Each
run claims ``<data_dir>/metrics/<instance id>``, an id no other run uses, so servers neither sum
nor delete each other's samples. Liveness is an advisory ``flock`` on ``owner.lock`` inside the
directory, held in shared mode by the server's parent and by each of its workers for their
whole lives: the kernel drops it when the last of them exits, however it exits. A claim first
removes every sibling whose lock it can take exclusively (nobody of that server is alive any
more), and a clean shutdown removes the server's own directory.

Claims and sweeps take ``.claim.lock`` in the metrics root, so a sweep never sees a directory
between its creation and its first lock: a directory without a lock file is a leftover.
Only the standard library is imported: the CLI must claim the directory before anything
imports ``prometheus_client``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCK_NAME", "MetricsDir", "claim", "hold", "sweep"]

LOCK_NAME = "owner.lock"
ROOT_LOCK = ".claim.lock"


@dataclasses.dataclass(slots=True)
class MetricsDir:
    """A claimed metrics directory; :meth:`release` removes it."""

    path: Path
    _fd: int | None
    # Directories of stopped servers that the claim removed.
    swept: tuple[Path, ...] = ()

    def release(self) -> None:
        """Remove the directory and drop its lock (at a clean shutdown, workers stopped)."""
        if self._fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)
        self._fd = None


@contextlib.contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    """Serialise claims and sweeps of one metrics root across processes."""
    fd = os.open(root / ROOT_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _if_dead(directory: Path) -> Iterator[bool]:
    """Whether no live process holds the directory; if so its lock stays taken inside the block.

    Call under the root lock. Keeping the lock while the caller removes the directory means
    no worker of that server can join it in between.
    """
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        # Claims create the lock file under the root lock: its owner died before locking it.
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _sweep_locked(root: Path) -> list[Path]:
    """Remove the directories under ``root`` that no live process holds (root lock held)."""
    removed: list[Path] = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.is_symlink():
            continue
        with _if_dead(entry) as dead:
            if dead:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def sweep(root: Path) -> list[Path]:
    """Remove the directories of servers that are gone; the paths removed."""
    with _root_lock(root):
        return _sweep_locked(root)


def claim(root: Path) -> MetricsDir:
    """Create and lock this server's directory under ``root``, after removing dead ones."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{time.time_ns():x}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with _root_lock(root):
        removed = _sweep_locked(root)
        path.mkdir()
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
    return MetricsDir(path, fd, tuple(removed))


def hold(path: Path) -> int | None:
    """Share the lock of ``path`` until this process exits (a worker of the claiming server).

    A worker whose parent was killed alone keeps serving and writing samples there; its
    lock keeps a later server's sweep away from them. The descriptor is returned and never
    closed (closing it would drop the lock): the kernel releases it when the process exits.
    Each worker calls this once; a second call only takes a second shared lock.
    """
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        # A directory an operator chose by hand: not one of ours, nothing sweeps it.
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd
