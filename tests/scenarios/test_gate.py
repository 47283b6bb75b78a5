"""The regression gate, both ways: the current engine passes, a worse policy fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.cli import main
from scenarios.gate import MEAN_COST_LIMIT, SPLIT_RATE_LIMIT, evaluate, regress
from scenarios.golden import read_baseline
from scenarios.kpis import KPI_NAMES

BASE = dict.fromkeys(KPI_NAMES, 0.0) | {
    "scenarios": 600.0,
    "mean_cost": 2_000.0,
    "split_rate": 0.05,
    "unfilled_rate": 0.07,
}


def _failed(current: dict[str, float]) -> set[str]:
    """Names of the gated KPIs that fail against BASE."""
    return {check.name for check in evaluate(BASE, current) if not check.passed}


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({}, set()),  # nothing moved
        ({"split_rate": 0.05 + SPLIT_RATE_LIMIT * 0.8}, set()),  # within half a point
        ({"split_rate": 0.05 + SPLIT_RATE_LIMIT * 1.2}, {"split_rate"}),
        ({"mean_cost": 2_000.0 * (1 + MEAN_COST_LIMIT * 0.8)}, set()),
        ({"mean_cost": 2_000.0 * (1 + MEAN_COST_LIMIT * 1.2)}, {"mean_cost"}),
        ({"mean_cost": 1_500.0, "split_rate": 0.01}, set()),  # improvements pass
        ({"unfilled_rate": 0.07 + 1 / 600}, {"unfilled_rate"}),  # one more scenario unfilled
        ({"checker_failures": 1.0}, {"checker_failures"}),
        ({"errors": 2.0}, {"errors"}),
        ({"scenarios": 599.0}, {"scenarios"}),  # a different suite
        ({"solve_p99_ms": 500.0, "mean_promised_days": 9.0}, set()),  # informational only
    ],
)
def test_thresholds(change: dict[str, float], failed: set[str]) -> None:
    """Each gated KPI fails exactly past its limit; informational ones never fail."""
    assert _failed(BASE | change) == failed


def test_current_engine_passes() -> None:
    """The committed baseline holds for the current engine and default policy."""
    outcome = regress(workers=2)
    assert outcome.ok, outcome.render()
    assert outcome.scenarios == read_baseline()["kpis"]["scenarios"]
    assert "PASSED" in outcome.render()
    names = {check.name for check in outcome.checks}
    assert {"day_cost", "gap_closed", "day_violations"} <= names


def test_worse_policy_fails_naming_the_kpi(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nearest-node sourcing without a split penalty fails the gate, which says why."""
    policy = tmp_path / "worse.toml"
    policy.write_text('name = "worse"\nengine = "nearest"\n[weights]\nsplit_penalty = 0\n')
    status = main(["regress", "--policy", str(policy), "--workers", "2"])
    out = capsys.readouterr().out
    assert status == 1
    failing = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert any(" split_rate " in line for line in failing), out
    assert any(" mean_cost " in line for line in failing), out
    assert "FAILED: " in out
    assert "split_rate +" in out.splitlines()[-1]
    # The passing KPIs are printed too.
    assert any(line.startswith("ok   checker_failures") for line in out.splitlines())
