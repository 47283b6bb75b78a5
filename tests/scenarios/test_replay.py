"""Replay: in-process and parallel runs agree, policies bite, recorded decisions, bad rows."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest

from models import Engine, ServiceLevel
from scenarios import (
    RESULT_COLUMNS,
    ScenarioRecorder,
    ScenarioStore,
    Selection,
    StoreError,
)
from scenarios.cli import main
from scenarios.policy import parse_policy
from scenarios.replay import RECORDED, replay, selection_of
from solver import SolveParams, prepare, solve
from tests.scenarios.replay_cases import SMALL_TAG, filled_store, small_network, small_requests

_COMPARED = ", ".join(c for c in RESULT_COLUMNS if c != "solve_ms")


def _rows(store: ScenarioStore, run_id: int) -> list[tuple[object, ...]]:
    """Result rows of a run without the timing column, in scenario order."""
    query = f"SELECT {_COMPARED} FROM results WHERE run_id = ? ORDER BY scenario_id, level"
    return store.connection.execute(query, [run_id]).fetchall()


def test_selection_forms() -> None:
    """A tag, a list of ids and an instant range all become a Selection."""
    since = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    until = since + dt.timedelta(days=1)
    assert selection_of("golden") == Selection(tag="golden")
    assert selection_of(["a", "b"]) == Selection(ids=("a", "b"))
    assert selection_of((since, until)) == Selection(since=since, until=until)
    assert selection_of(None) == Selection()


def test_parallel_and_in_process_runs_agree() -> None:
    """Two worker processes give the same rows as one in-process worker, all checked."""
    with filled_store(24) as store:
        # A budget no solve here needs: a fresh worker's first solve (cold calendars, a
        # loaded machine) must not turn one run's proven answer into the other's fallback.
        single = replay(store, SMALL_TAG, workers=1, progress=False, time_budget_ms=5000)
        double = replay(store, SMALL_TAG, workers=2, progress=False, time_budget_ms=5000)
        assert _rows(store, single) == _rows(store, double)
        rows = store.results(double)
        assert len(rows) == 24
        assert rows["checker_ok"].all()
        assert rows["error"].isna().all()
        assert set(rows["level"]) == {"ground"}
        info = store.run(double)
        assert (info.workers, info.scenario_count, info.engine) == (2, 24, "mip")


def test_a_worker_that_cannot_start_fails_the_run_instead_of_hanging() -> None:
    """A stored network body that no longer matches its version stops a parallel replay."""
    with filled_store(8) as store:
        store.connection.execute("UPDATE networks SET body = ?", [gzip.compress(b"{}")])
        with pytest.raises(RuntimeError, match="exited before its work was done"):
            replay(store, SMALL_TAG, workers=2, progress=False)
        with pytest.raises(StoreError, match="does not match its version"):
            replay(store, SMALL_TAG, workers=1, progress=False)


def test_replay_matches_solving_the_full_snapshot() -> None:
    """Each replayed answer equals a direct solve on the full network snapshot."""
    network = small_network()
    with filled_store(15) as store:
        run_id = replay(store, SMALL_TAG, workers=1, progress=False)
        stored = {
            row[0]: row[1:]
            for row in store.connection.execute(
                "SELECT scenario_id, objective, total_cost, shipments FROM results "
                "WHERE run_id = ?",
                [run_id],
            ).fetchall()
        }
    prepared = prepare(network)
    for request in small_requests(15):
        option = solve(request, prepared, params=SolveParams()).options[0]
        assert stored[request.cart.cart_id] == (
            option.objective,
            option.cost.total,
            len(option.shipments),
        )


def test_policy_and_engine_change_the_answers() -> None:
    """max_shipments=1 removes every split; the policy hash is recorded with the run."""
    policy = parse_policy('name = "one-box"\nmax_shipments = 1\n')
    with filled_store(40) as store:
        base = replay(store, SMALL_TAG, workers=1, progress=False)
        assert store.results(base)["shipments"].max() > 1, "some carts split by default"
        boxed = replay(store, SMALL_TAG, policy=policy, workers=1, progress=False)
        rows = store.results(boxed)
        assert rows["shipments"].max() == 1
        assert rows["checker_ok"].all()
        info = store.run(boxed)
        assert (info.policy_name, info.policy_hash) == ("one-box", policy.digest)
        nearest = replay(store, SMALL_TAG, engine=Engine.NEAREST, workers=1, progress=False)
        assert store.run(nearest).engine == "nearest"
        assert store.results(nearest)["checker_ok"].all()


def test_levels_override_and_time_range() -> None:
    """Quoting other levels gives one row per level; a time range narrows the scenarios."""
    with filled_store(10) as store:
        instants = sorted(s.requested_at for s in store.scenarios())
        run_id = replay(
            store,
            (instants[0], instants[5]),
            levels=(ServiceLevel.GROUND, ServiceLevel.TWO_DAY),
            workers=1,
            progress=False,
        )
        rows = store.results(run_id)
        assert store.run(run_id).scenario_count == 5
        assert sorted(set(rows["level"])) == ["ground", "two_day"]
        assert rows.groupby("scenario_id").size().max() == 2


def test_recorded_decisions_become_a_run() -> None:
    """A recorded run checks what was decided, without solving again."""
    with filled_store(12, decisions=True) as store:
        recorded = replay(store, SMALL_TAG, recorded=True, workers=1, progress=False)
        solved = replay(store, SMALL_TAG, workers=1, progress=False)
        assert store.run(recorded).engine == RECORDED
        first = store.results(recorded)[["scenario_id", "total_cost", "shipments"]]
        second = store.results(solved)[["scenario_id", "total_cost", "shipments"]]
        assert first.equals(second)
        assert store.results(recorded)["checker_ok"].all()


def test_a_broken_scenario_is_recorded_not_fatal() -> None:
    """A scenario that cannot be solved becomes an error row; the others replay."""
    network = small_network()
    broken = small_requests()[0]
    broken = broken.model_copy(
        update={"cart": broken.cart.model_copy(update={"channel": "no-such-channel"})}
    )
    with filled_store(3) as store:
        bad = ScenarioRecorder.of(network).record(broken, tags=(SMALL_TAG,), scenario_id="zz-bad")
        store.add_records([bad])
        run_id = replay(store, SMALL_TAG, workers=1, progress=False)
        rows = {
            row[0]: row[1:]
            for row in store.connection.execute(
                "SELECT scenario_id, status, error FROM results WHERE run_id = ?", [run_id]
            ).fetchall()
        }
    status, error = rows.pop("zz-bad")
    assert status == "error"
    assert "no-such-channel" in error
    assert len(rows) == 3
    assert all(status != "error" for status, _ in rows.values())


def test_empty_selection_is_an_error() -> None:
    """Replaying nothing is a mistake worth saying."""
    with filled_store(2) as store, pytest.raises(ValueError, match="no scenarios"):
        replay(store, "absent-tag", workers=1, progress=False)


def test_command_line_replay_compare_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI replays twice, compares with a report, lists runs and exports the scenarios."""
    path = tmp_path / "store.duckdb"
    recorder = ScenarioRecorder.of(small_network())
    with ScenarioStore(path) as store:
        store.add_network(recorder)
        store.add_records(
            recorder.record(r, tags=(SMALL_TAG,), scenario_id=r.cart.cart_id)
            for r in small_requests(12)
        )
    common = ["--store", str(path), "--workers", "1", "--no-progress"]
    assert main(["replay", "--tag", SMALL_TAG, *common]) == 0
    assert main(["replay", "--tag", SMALL_TAG, "--engine", "nearest", *common]) == 0
    report_dir = tmp_path / "report"
    assert main(["compare", "1", "2", "--report", str(report_dir), "--store", str(path)]) == 0
    assert main(["runs", "--store", str(path)]) == 0
    exported = tmp_path / "out.jsonl"
    assert (
        main(["scenarios", "export", str(exported), "--format", "jsonl", "--store", str(path)]) == 0
    )
    out = capsys.readouterr().out
    assert "run 1: 12 scenarios, engine mip" in out
    assert "run 2: 12 scenarios, engine nearest" in out
    assert any(line.startswith("split_rate") for line in out.splitlines())
    assert (report_dir / "report.html").is_file()
    assert len(exported.read_text().splitlines()) == 1 + 12  # the network, then the scenarios
    assert main(["compare", "1", "9", "--store", str(path)]) == 2  # unknown run
