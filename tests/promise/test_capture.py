"""The capture sink: batched appends, drops instead of blocking, SIGKILL leaves a good file."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from models import PromiseRequest, PromiseResult, ServiceLevel, Snapshot
from promise.capture import CAPTURE_TAG, CaptureSink, capture_file
from scenarios import ScenarioStore, Selection, generate_carts, generate_network
from scenarios.cli import main as scenarios_cli
from scenarios.replay import replay
from solver import Inventory, prepare, solve

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _network() -> Snapshot:
    """A small generated network (the sink does not care about size)."""
    return generate_network(nodes=50, skus=200, seed=5)


@functools.cache
def _promises(count: int = 12) -> tuple[tuple[PromiseRequest, PromiseResult], ...]:
    """Requests without an order instant (as checkout sends them) and their answers."""
    network = _network()
    prepared = prepare(network)
    carts = generate_carts(network, count=count, seed=23)
    out = []
    for cart in carts:
        request = cart.model_copy(
            update={"service_levels": (ServiceLevel.GROUND,), "requested_at": None}
        )
        out.append((request, solve(request, prepared)))
    return tuple(out)


def test_captures_every_submitted_promise(tmp_path: Path) -> None:
    """Each submitted promise is committed with its decision and replays to a checked result."""
    sink = CaptureSink(tmp_path / "capture", batch_size=5, flush_interval_s=0.05)
    for request, result in _promises():
        sink.submit(request, _network(), result)
    stats = sink.close()
    assert (stats.submitted, stats.acknowledged, stats.pending) == (12, 12, 0)
    assert stats.batches >= 3  # batches of at most five
    assert sink.path.parent == tmp_path / "capture"
    with ScenarioStore(sink.path) as store:
        captured = {s.request.cart.cart_id: s for s in store.scenarios()}
        assert store.count(Selection(tag=CAPTURE_TAG)) == 12
        for request, result in _promises():
            scenario = captured[request.cart.cart_id]
            assert scenario.decision == result
            assert scenario.request.requested_at == result.requested_at
        run_id = replay(store, CAPTURE_TAG, recorded=True, workers=1, progress=False)
        assert store.results(run_id)["checker_ok"].all()


def test_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    """While the writer is stuck, submissions beyond the queue are dropped, not waited for."""
    entered, release = threading.Event(), threading.Event()

    def stuck(_acknowledged: int) -> None:
        """Hold the writer after its first commit until the test lets go."""
        entered.set()
        release.wait()

    sink = CaptureSink(
        tmp_path / "one.duckdb", batch_size=1, flush_interval_s=0.05, max_queue=2, on_commit=stuck
    )
    promises = _promises()
    sink.submit(promises[0][0], _network(), promises[0][1])
    assert entered.wait(timeout=30)
    for request, result in promises[1:]:
        sink.submit(request, _network(), result)  # returns at once: queue of two, then drops
    stats = sink.stats
    assert stats.dropped_full == len(promises) - 1 - 2
    release.set()
    stats = sink.close()
    assert (stats.acknowledged, stats.dropped_full, stats.pending) == (3, len(promises) - 3, 0)
    with ScenarioStore(sink.path) as store:
        assert store.count() == 3


def test_a_failing_store_never_raises(tmp_path: Path) -> None:
    """A store that cannot be opened costs the scenarios, never the promise."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the capture directory should be")
    sink = CaptureSink(blocker / "capture.duckdb", batch_size=4, flush_interval_s=0.05)
    for request, result in _promises():
        sink.submit(request, _network(), result)
    assert sink.flush(timeout=30)
    stats = sink.close()
    assert stats.dropped_failed == len(_promises())
    assert stats.acknowledged == 0


def test_live_inventory_is_what_gets_captured(tmp_path: Path) -> None:
    """With live stock, the slice holds the live rows, not the snapshot's."""
    network = _network()
    request, result = _promises()[0]
    sku = request.cart.lines[0].sku
    rows = [row for row in network.inventory if row.sku == sku]
    live = Inventory.of(network).replace(
        row.model_copy(update={"on_hand": row.on_hand + 7, "reserved": 0}) for row in rows
    )
    sink = CaptureSink(tmp_path / "live.duckdb", flush_interval_s=0.05)
    sink.submit(request, network, result, inventory=live)
    sink.close()
    with ScenarioStore(sink.path) as store:
        (scenario,) = store.scenarios()
    captured = {(r.node_id, r.sku): r.on_hand for r in scenario.inventory if r.sku == sku}
    assert captured == {(r.node_id, r.sku): r.on_hand + 7 for r in rows}


def test_per_process_files_merge_with_scenarios_import(tmp_path: Path) -> None:
    """A capture directory gets one file per process; `scenarios import DIR` merges them."""
    directory = tmp_path / "capture"
    assert capture_file(directory).name.startswith("capture-")
    assert f"-{os.getpid()}-" in capture_file(directory).name
    for part in (_promises()[:5], _promises()[5:]):
        sink = CaptureSink(directory / f"w{len(part)}.duckdb", flush_interval_s=0.05)
        for request, result in part:
            sink.submit(request, _network(), result)
        sink.close()
    merged = tmp_path / "analysis.duckdb"
    assert scenarios_cli(["scenarios", "import", str(directory), "--store", str(merged)]) == 0
    with ScenarioStore(merged) as store:
        assert store.count() == len(_promises())


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from models import ServiceLevel
    from promise.capture import CaptureSink
    from scenarios import generate_carts, generate_network
    from solver import prepare, solve

    network = generate_network(nodes=50, skus=200, seed=5)
    prepared = prepare(network)
    carts = generate_carts(network, count=16, seed=29)
    promises = []
    for cart in carts:
        request = cart.model_copy(update={"service_levels": (ServiceLevel.GROUND,)})
        promises.append((request, solve(request, prepared)))

    def acknowledged(count):
        sys.stdout.write(f"ack {count}\\n")
        sys.stdout.flush()

    sink = CaptureSink(sys.argv[1], batch_size=8, flush_interval_s=0.02, on_commit=acknowledged)
    while True:
        for request, result in promises:
            sink.submit(request, network, result)
        # Keep the writer busy without flooding the queue.
        while sink.stats.pending > 32:
            sink.flush(timeout=1.0)
    """
)


@pytest.mark.slow
def test_sigkill_mid_capture_keeps_every_acknowledged_scenario(tmp_path: Path) -> None:
    """Kill -9 a capturing process: the file opens and holds everything acknowledged."""
    path = tmp_path / "killed.duckdb"
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    acknowledged = 0
    try:
        # Several batches committed, and the writer still going when the kill lands.
        while acknowledged < 120:
            line = process.stdout.readline()
            assert line, "the capturing process exited early"
            acknowledged = int(line.split()[1])
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    with ScenarioStore(path) as store:
        stored = store.count()
        assert stored >= acknowledged
        assert all(s.decision is not None for s in store.scenarios(Selection(tag=CAPTURE_TAG)))
