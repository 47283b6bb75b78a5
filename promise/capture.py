"""Opt-in capture of served promises into the scenario store, off the request path.

``CaptureSink.submit`` only puts the request, snapshot and result on a bounded queue: it never
blocks and never raises. A background thread takes them in batches, turns each into a scenario
(request, the inventory slice of its SKUs, the decision) and appends the batch in one DuckDB
transaction. A scenario is *acknowledged* once its transaction committed: DuckDB writes the
commit to its write-ahead log first, so a file whose process is killed with SIGKILL reopens
with every acknowledged scenario. When the queue is full, or the store fails, scenarios are
dropped and counted: a capture problem never slows or fails a promise.

One writer per file: DuckDB lets one process open a file for writing. Give the sink a directory
and each process writes its own file, ``capture-<host>-<pid>-<time>.duckdb``; merge them into
an analysis store with ``python -m scenarios.cli scenarios import DIR`` (or ``promise scenarios
import DIR``) once their writers have closed them. A path ending in ``.duckdb`` names one file,
for a single process.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from models import NO_PRICES, PromiseRequest, PromiseResult, Snapshot, StockPrices
from scenarios import ScenarioRecord, ScenarioRecorder, ScenarioStore
from solver import Inventory

__all__ = ["CAPTURE_TAG", "CaptureSink", "CaptureStats", "capture_file"]

log = logging.getLogger(__name__)

CAPTURE_TAG: Final = "captured"
_SUFFIX: Final = ".duckdb"
# A failing store is logged at most this often, not once per batch.
_LOG_EVERY_S: Final = 60.0


def capture_file(path: Path) -> Path:
    """The file this process captures into: ``path`` itself, or a per-process file under it."""
    if path.suffix == _SUFFIX:
        return path
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    host = socket.gethostname().split(".")[0] or "host"
    return path / f"capture-{host}-{os.getpid()}-{stamp}{_SUFFIX}"


@dataclasses.dataclass(frozen=True, slots=True)
class CaptureStats:
    """Counters of a sink: every submitted scenario ends up acknowledged or dropped."""

    submitted: int
    acknowledged: int
    dropped_full: int
    dropped_failed: int
    batches: int

    @property
    def pending(self) -> int:
        """Scenarios accepted but not yet committed or dropped."""
        return self.submitted - self.acknowledged - self.dropped_full - self.dropped_failed


@dataclasses.dataclass(frozen=True, slots=True)
class _Item:
    """One promise waiting to be captured."""

    request: PromiseRequest
    snapshot: Snapshot
    result: PromiseResult
    inventory: Inventory | None
    captured_at: dt.datetime
    prices: StockPrices


class CaptureSink:
    """Batched, bounded, never-failing capture of promises into a DuckDB scenario store."""

    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 256,
        flush_interval_s: float = 1.0,
        max_queue: int = 10_000,
        tags: tuple[str, ...] = (CAPTURE_TAG,),
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        """Start the writer thread; the store file is opened by that thread on first use.

        ``on_commit`` is called from the writer thread with the acknowledged total after each
        committed batch.
        """
        if batch_size < 1 or max_queue < 1 or flush_interval_s <= 0:
            raise ValueError("batch_size and max_queue must be >= 1, flush_interval_s > 0")
        self.path = capture_file(Path(path))
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._tags = tags
        self._on_commit = on_commit
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._submitted = self._acknowledged = self._dropped_full = 0
        self._dropped_failed = self._batches = 0
        self._closing = threading.Event()
        self._store: ScenarioStore | None = None
        # The writer thread's recorder of the snapshot it last captured on: its network is
        # encoded once, not once per promise (a new one after a swap).
        self._recorder: ScenarioRecorder | None = None
        self._last_error_log = -_LOG_EVERY_S
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    # Request path ---------------------------------------------------------------------------

    def submit(
        self,
        request: PromiseRequest,
        snapshot: Snapshot,
        result: PromiseResult,
        *,
        inventory: Inventory | None = None,
        prices: StockPrices = NO_PRICES,
    ) -> None:
        """Queue one promise for capture; drops it (counted) when the queue is full or closed.

        ``prices`` is the opportunity-cost table the result was charged: the scenario keeps
        the cart's slice of it, so the recorded decision checks against what it was made with.
        """
        try:
            item = _Item(request, snapshot, result, inventory, dt.datetime.now(dt.UTC), prices)
            with self._lock:
                self._submitted += 1
                if self._closing.is_set():
                    self._dropped_full += 1
                    self._done.notify_all()
                    return
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                with self._lock:
                    self._dropped_full += 1
                    self._done.notify_all()
        except Exception:  # a capture problem must never reach the promise
            log.debug("capture submit failed", exc_info=True)

    # Observation ----------------------------------------------------------------------------

    @property
    def stats(self) -> CaptureStats:
        """Current counters."""
        with self._lock:
            return CaptureStats(
                submitted=self._submitted,
                acknowledged=self._acknowledged,
                dropped_full=self._dropped_full,
                dropped_failed=self._dropped_failed,
                batches=self._batches,
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every scenario submitted so far is committed or dropped; False on timeout."""
        with self._lock:
            target = self._submitted
            return self._done.wait_for(
                lambda: self._acknowledged + self._dropped_full + self._dropped_failed >= target,
                timeout=timeout,
            )

    def close(self, timeout: float | None = 30.0) -> CaptureStats:
        """Write what is queued, stop the writer and close the store; the final counters."""
        self._closing.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("capture writer did not stop in time", extra={"path": str(self.path)})
        return self.stats

    # Writer thread --------------------------------------------------------------------------

    def _take(self) -> list[_Item]:
        """The next batch: up to batch_size items, or what arrived within the flush interval."""
        try:
            first = self._queue.get(timeout=self._interval)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self._interval
        while len(batch) < self._batch_size:
            try:
                if self._closing.is_set():
                    # Closing: take what is queued without waiting for more.
                    batch.append(self._queue.get_nowait())
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                batch.append(self._queue.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        """Write batches until closed and drained."""
        try:
            while not (self._closing.is_set() and self._queue.empty()):
                batch = self._take()
                if batch:
                    self._write(batch)
        finally:
            if self._store is not None:
                self._store.close()
                self._store = None

    def _recorder_of(self, snapshot: Snapshot, store: ScenarioStore) -> ScenarioRecorder:
        """The recorder of ``snapshot``, its network stored in ``store`` (writer thread)."""
        recorder = self._recorder
        if recorder is None or recorder.snapshot is not snapshot:
            recorder = ScenarioRecorder.of(snapshot)
            store.add_network(recorder)
            self._recorder = recorder
        return recorder

    def _records(self, batch: list[_Item]) -> list[ScenarioRecord]:
        """Scenarios of a batch (networks stored first); an item that cannot be made is dropped."""
        store = self._open()
        recorders = [self._recorder_of(item.snapshot, store) for item in batch]
        records: list[ScenarioRecord] = []
        for item, recorder in zip(batch, recorders, strict=True):
            try:
                records.append(
                    recorder.record(
                        item.request,
                        item.result,
                        tags=self._tags,
                        inventory=item.inventory,
                        captured_at=item.captured_at,
                        prices=item.prices,
                    )
                )
            except Exception:  # one odd promise must not cost the whole batch
                log.warning("a promise could not be captured", exc_info=True)
                with self._lock:
                    self._dropped_failed += 1
                    self._done.notify_all()
        return records

    def _open(self) -> ScenarioStore:
        """The store, opened on first use (and again after a failure)."""
        if self._store is None:
            # One DuckDB thread: capture must not compete with solves for the cores.
            self._store = ScenarioStore(self.path, threads=1)
        return self._store

    def _write(self, batch: list[_Item]) -> None:
        """Append one batch in one transaction; on failure drop it, count it, reopen later."""
        records: list[ScenarioRecord] = []
        try:
            records = self._records(batch)
            self._open().add_records(records)
        except Exception as exc:
            with self._lock:
                # Items _records already dropped are counted there.
                self._dropped_failed += len(records) if records else len(batch)
                self._done.notify_all()
            now = time.monotonic()
            if now - self._last_error_log >= _LOG_EVERY_S:
                self._last_error_log = now
                log.warning(
                    "capture batch dropped: %s",
                    exc,
                    extra={"path": str(self.path), "scenarios": len(batch)},
                )
            if self._store is not None:
                try:
                    self._store.close()
                except Exception:  # the store is already broken; it is reopened next batch
                    log.debug("closing the failed capture store failed", exc_info=True)
                self._store = None
            # The reopened store is asked for the network again.
            self._recorder = None
            return
        with self._lock:
            self._acknowledged += len(records)
            self._batches += 1
            acknowledged = self._acknowledged
            self._done.notify_all()
        if self._on_commit is not None:
            try:
                self._on_commit(acknowledged)
            except Exception:  # a faulty callback must not stop the writer
                log.warning("capture on_commit callback failed", exc_info=True)
