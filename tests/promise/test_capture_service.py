"""Capture through the real service: promises served by two workers become stored scenarios."""

from __future__ import annotations

from pathlib import Path

import httpx

from scenarios import ScenarioStore
from scenarios.replay import replay
from tests.launcher import ServerProcess
from tests.promise.promise_helpers import result_of, tiny_body, tiny_snapshot


def test_served_promises_are_captured_and_replay_cleanly(tmp_path: Path) -> None:
    """Every acknowledged promise lands in a worker's capture file; recorded decisions check."""
    snapshot_path = tmp_path / "tiny.json"
    snapshot_path.write_text(tiny_snapshot("tiny-v1").model_dump_json())
    capture_dir = tmp_path / "capture"
    server = ServerProcess(
        data_dir=tmp_path / "data",
        workers=2,
        snapshot=snapshot_path,
        env={"PROMISE_CAPTURE_PATH": str(capture_dir)},
    )
    answers = {}
    with (
        server.start(),
        httpx.Client(base_url=server.base_url, headers=server.auth_headers, timeout=10.0) as client,
    ):
        for k in range(24):
            response = client.post("/v1/promise", json=tiny_body(f"cap-{k}", quantity=1 + k % 2))
            assert response.status_code == 200, response.text
            answers[f"cap-{k}"] = result_of(response.json())
        workers = {client.get("/readyz").headers["x-worker-pid"] for _ in range(20)}
    # A graceful stop flushed both workers' sinks; merge their files as an analyst would.
    files = sorted(capture_dir.glob("*.duckdb"))
    assert 1 <= len(files) <= len(workers)
    with ScenarioStore(tmp_path / "merged.duckdb") as store:
        added = sum(store.import_store(path) for path in files)
        assert added == len(answers)
        scenarios = [store.scenario(i) for i in store.scenario_ids()]
        assert {s.request.cart.cart_id for s in scenarios} == set(answers)
        for scenario in scenarios:
            decision = scenario.decision
            assert decision is not None
            served = answers[scenario.request.cart.cart_id]
            assert decision.options == served.options
        run = replay(store, recorded=True, workers=1, progress=False)
        results = store.results(run)
        assert len(results) >= len(answers)
        assert bool(results["checker_ok"].all())
