"""KPIs in SQL over hand-made result rows, run comparison and the HTML report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenarios import RunInfo, ScenarioStore
from scenarios.kpis import CART_SIZE_BUCKETS, compare, kpis, paired, split_by_cart_size
from scenarios.report import REPORT_FILE, report
from tests.scenarios.replay_cases import filled_store

_PNG = b"\x89PNG\r\n\x1a\n"


def _row(
    scenario_id: str,
    status: str,
    *,
    shipments: int,
    cost: int,
    margin: int,
    days: int | None,
    solve_ms: float,
    fallback: bool = False,
    checker_ok: bool = True,
) -> tuple[object, ...]:
    """A result row with the fields the KPIs read (cost all shipping, for simplicity)."""
    return (
        *(scenario_id, "ground", status, fallback, cost, 0, 0, cost, cost + margin, margin),
        *(cost, max(0, shipments - 1), shipments, days, 0 if shipments else 2, solve_ms),
        *(True, checker_ok, None, None),
    )


def _record(store: ScenarioStore, rows: list[tuple[object, ...]], engine: str) -> int:
    """Store a run made of ``rows``."""
    info = RunInfo(
        run_id=store.next_run_id(),
        label=engine,
        engine=engine,
        policy_name="default",
        policy_hash="h",
        policy="{}",
        code_version="test",
        selection="all",
        levels="ground",
        workers=1,
        started=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        duration_s=0.5,
        scenario_count=len(rows),
    )
    return store.record_run(info, rows)


@dataclasses.dataclass
class _Runs:
    """A store with two hand-made runs over four scenarios."""

    store: ScenarioStore
    ids: list[str]
    a: int
    b: int


@pytest.fixture
def runs() -> Iterator[_Runs]:
    """Run a: one split, one fallback, one unfulfillable the checker rejects; run b: no split."""
    store = filled_store(4)
    s = store.scenario_ids()
    a = _record(
        store,
        [
            _row(s[0], "optimal", shipments=1, cost=1000, margin=500, days=3, solve_ms=1.0),
            _row(s[1], "optimal", shipments=2, cost=2000, margin=300, days=5, solve_ms=2.0),
            _row(
                *(s[2], "fallback"),
                shipments=1,
                cost=1500,
                margin=100,
                days=4,
                solve_ms=3.0,
                fallback=True,
            ),
            _row(
                *(s[3], "unfulfillable"),
                shipments=0,
                cost=0,
                margin=0,
                days=None,
                solve_ms=4.0,
                checker_ok=False,
            ),
        ],
        "mip",
    )
    b = _record(
        store,
        [
            _row(s[0], "optimal", shipments=1, cost=900, margin=600, days=3, solve_ms=1.0),
            _row(s[1], "optimal", shipments=1, cost=1800, margin=500, days=6, solve_ms=1.0),
            _row(s[2], "optimal", shipments=1, cost=1500, margin=100, days=4, solve_ms=1.0),
            _row(s[3], "optimal", shipments=1, cost=2400, margin=50, days=7, solve_ms=1.0),
        ],
        "candidate",
    )
    yield _Runs(store, s, a, b)
    store.close()


def test_kpis_by_hand(runs: _Runs) -> None:
    """Each KPI of run a, computed by hand from its four rows."""
    values = kpis(runs.store, runs.a)
    assert values["scenarios"] == 4
    assert values["mean_cost"] == pytest.approx((1000 + 2000 + 1500) / 3)  # complete only
    assert values["total_cost"] == 4500
    assert values["split_rate"] == pytest.approx(1 / 3)
    assert values["shipments_per_order"] == pytest.approx(4 / 3)
    assert values["mean_promised_days"] == pytest.approx(4.0)
    assert values["unfilled_rate"] == pytest.approx(0.25)
    assert values["mean_margin"] == pytest.approx(300.0)
    assert values["solve_p50_ms"] == pytest.approx(2.5)  # continuous quantile of 1..4
    assert values["solve_p99_ms"] == pytest.approx(1.0 + 0.99 * 3.0)
    assert values["fallback_rate"] == pytest.approx(0.25)
    assert values["checker_failures"] == 1
    assert values["errors"] == 0


def test_level_filter(runs: _Runs) -> None:
    """A level nobody quoted has no rows, hence no means."""
    values = kpis(runs.store, runs.a, level="next_day")
    assert values["scenarios"] == 0
    assert math.isnan(values["mean_cost"])


def test_compare_gives_deltas(runs: _Runs) -> None:
    """Deltas (run b − run a) for every KPI, and the relative change."""
    table = compare(runs.store, runs.a, runs.b)
    assert table.loc["split_rate", "delta"] == pytest.approx(0.0 - 1 / 3)
    assert table.loc["unfilled_rate", "delta"] == pytest.approx(-0.25)
    mean_a, mean_b = 1500.0, (900 + 1800 + 1500 + 2400) / 4
    assert table.loc["mean_cost", "delta"] == pytest.approx(mean_b - mean_a)
    assert table.loc["mean_cost", "change_pct"] == pytest.approx((mean_b - mean_a) / mean_a * 100)
    assert table["change_pct"].isna()["errors"]  # 0 → 0: no relative change
    assert table.attrs == {"run_a": runs.a, "run_b": runs.b}


def test_paired_rows(runs: _Runs) -> None:
    """One row per scenario in both runs with the cost delta."""
    pairs = paired(runs.store, runs.a, runs.b)
    assert pairs["scenario_id"].tolist() == runs.ids
    assert pairs["cost_delta"].tolist() == [-100, -200, 0, 2400]
    assert pairs["complete_a"].tolist() == [True, True, True, False]


def test_split_rate_by_cart_size(runs: _Runs) -> None:
    """Run a's single split lands in the bucket of its cart's size."""
    table = split_by_cart_size(runs.store, runs.a)
    assert table["cart_size"].tolist() == [label for label, _, _ in CART_SIZE_BUCKETS]
    lines = runs.store.scenario(runs.ids[1]).request.cart.lines
    bucket = next(label for label, low, high in CART_SIZE_BUCKETS if low <= len(lines) <= high)
    split = table.set_index("cart_size")["split_rate"]
    assert split[bucket] > 0
    assert (split.drop(index=bucket).fillna(0.0) == 0).all()
    assert int(table["options"].sum()) == 3  # the complete options


def test_report_embeds_three_plots(runs: _Runs, tmp_path: Path) -> None:
    """The HTML report holds the KPI table and three PNG plots, also written as files."""
    path = report(runs.store, runs.a, runs.b, tmp_path / "rep")
    assert path == tmp_path / "rep" / REPORT_FILE
    page = path.read_text()
    assert page.count("data:image/png;base64,") == 3
    for name in ("split_rate", "mean_cost", "unfilled_rate", "solve_p99_ms"):
        assert name in page
    for png in ("cost_delta.png", "split_by_cart_size.png", "promised_days.png"):
        assert (tmp_path / "rep" / png).read_bytes().startswith(_PNG)
