"""The regression gate: replay the golden suite and compare its KPIs with the baseline.

The gate fails when, against the committed baseline,

- the split rate rises by more than 0.5 percentage points,
- the mean fulfilment cost rises by more than 0.5 %,
- the unfilled rate rises at all,
- any answer fails the independent checker, or any scenario cannot be replayed,

and, on the depleting-day suite (scenarios/day_gate.py), when the priced day's cost rises by
more than 0.5 %, the share of the myopic → clairvoyant gap it closes falls by more than two
points, its unfilled units rise, or the checker refuses any of its answers.

Every KPI is reported, moved or not, with its baseline, current value and delta. CI runs it
through ``python -m scenarios.cli regress`` (exit status 1 on failure).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Final

from models import Engine
from scenarios.day_gate import day_checks, day_kpis, read_day_baseline
from scenarios.golden import (
    GATE_TIME_BUDGET_MS,
    GOLDEN_DIR,
    read_baseline,
    read_suite,
    replay_golden,
)
from scenarios.kpis import KPI_NAMES
from scenarios.policy import DEFAULT_POLICY, Policy
from scenarios.replay import prestart
from scenarios.report import format_delta, format_value

__all__ = [
    "GATE_TIME_BUDGET_MS",
    "MEAN_COST_LIMIT",
    "SPLIT_RATE_LIMIT",
    "GateReport",
    "KpiCheck",
    "evaluate",
    "regress",
]

# Split rate may rise by at most this much (a share: 0.005 is half a percentage point).
SPLIT_RATE_LIMIT: Final = 0.005
# Mean cost may rise by at most this share of the baseline (0.5 %).
MEAN_COST_LIMIT: Final = 0.005
# Rates are ratios of counts over the same scenarios: anything above float noise is a rise.
_EPSILON: Final = 1e-9


@dataclasses.dataclass(frozen=True, slots=True)
class KpiCheck:
    """One KPI against the baseline; ``gated`` KPIs can fail the gate."""

    name: str
    baseline: float
    current: float
    gated: bool
    passed: bool
    limit: str

    @property
    def delta(self) -> float:
        """Current minus baseline."""
        return self.current - self.baseline

    @property
    def moved(self) -> bool:
        """Whether the KPI changed at all."""
        both_nan = math.isnan(self.baseline) and math.isnan(self.current)
        return not both_nan and not math.isclose(self.current, self.baseline, abs_tol=_EPSILON)

    def change(self) -> str:
        """How much the KPI moved, for people (mean cost also relative)."""
        if not self.moved:
            return "unchanged"
        text = format_delta(self.name, self.delta)
        if self.name == "mean_cost" and self.baseline:
            text += f" ({self.delta / self.baseline:+.2%})"
        return text

    def line(self) -> str:
        """One line of the gate's output."""
        verdict = ("ok" if self.passed else "FAIL") if self.gated else "info"
        change = self.change()
        limit = f"  [limit: {self.limit}]" if self.gated else ""
        return (
            f"{verdict:<4} {self.name:<20} {format_value(self.name, self.baseline):>12} -> "
            f"{format_value(self.name, self.current):>12}  {change}{limit}"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class GateReport:
    """The gate's verdict over every KPI."""

    checks: tuple[KpiCheck, ...]
    scenarios: int
    engine: str
    policy: str
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether every gated KPI passed."""
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[KpiCheck, ...]:
        """The gated KPIs that failed."""
        return tuple(check for check in self.checks if not check.passed)

    def render(self) -> str:
        """The gate's output: a header, one line per KPI, and the verdict."""
        lines = [
            f"regression gate: golden suite, {self.scenarios} scenarios, engine {self.engine}, "
            f"policy {self.policy}, {self.seconds:.1f} s",
            *(check.line() for check in self.checks),
        ]
        if self.ok:
            lines.append("PASSED: no gated KPI regressed")
        else:
            moved = ", ".join(f"{check.name} {check.change()}" for check in self.failures)
            lines.append(f"FAILED: {moved}")
        return "\n".join(lines)


def _gated(name: str, baseline: float, current: float) -> KpiCheck | None:
    """The check of a gated KPI, or None for an informational one."""
    if name == "split_rate":
        passed = current - baseline <= SPLIT_RATE_LIMIT + _EPSILON
        limit = f"+{SPLIT_RATE_LIMIT * 100:.1f} pt"
    elif name == "mean_cost":
        passed = current <= baseline * (1.0 + MEAN_COST_LIMIT) + _EPSILON
        limit = f"+{MEAN_COST_LIMIT:.1%}"
    elif name == "unfilled_rate":
        passed = current <= baseline + _EPSILON
        limit = "no rise"
    elif name in ("checker_failures", "errors"):
        passed = current == 0
        limit = "0"
    elif name == "scenarios":
        passed = current == baseline
        limit = "= baseline (same suite)"
    else:
        return None
    return KpiCheck(name, baseline, current, gated=True, passed=passed, limit=limit)


def evaluate(baseline: dict[str, float], current: dict[str, float]) -> tuple[KpiCheck, ...]:
    """Every KPI of ``current`` against ``baseline`` (gated ones first)."""
    checks = []
    for name in KPI_NAMES:
        before = float(baseline.get(name, math.nan))
        after = float(current[name])
        check = _gated(name, before, after)
        if check is None:
            check = KpiCheck(name, before, after, gated=False, passed=True, limit="")
        # A NaN gated KPI (no complete option at all) cannot be shown to hold.
        if check.gated and math.isnan(after) and not math.isnan(before):
            check = dataclasses.replace(check, passed=False)
        checks.append(check)
    return tuple(sorted(checks, key=lambda c: not c.gated))


def regress(
    *,
    engine: Engine | str | None = None,
    policy: Policy | None = None,
    workers: int | None = None,
    directory: Path = GOLDEN_DIR,
    progress: bool = False,
) -> GateReport:
    """Replay the golden suite in memory and compare with the committed baseline."""
    policy = policy or DEFAULT_POLICY
    started = time.perf_counter()
    if workers is None or workers > 1:
        prestart()
    read_suite(directory)  # fails early on a tampered suite
    baseline = read_baseline(directory)
    values, run = replay_golden(
        directory,
        engine=engine,
        policy=policy,
        workers=workers,
        time_budget_ms=policy.time_budget_ms or GATE_TIME_BUDGET_MS,
        progress=progress,
    )
    # Rounded as the baseline file stores them, so an unchanged KPI reads as unchanged.
    current = {name: round(value, 6) for name, value in values.items()}
    day = [
        KpiCheck(name, before, after, gated=bool(limit), passed=passed, limit=limit)
        for name, before, after, passed, limit in day_checks(
            read_day_baseline(directory), day_kpis(policy)
        )
    ]
    return GateReport(
        checks=evaluate(baseline["kpis"], current) + tuple(day),
        scenarios=int(current["scenarios"]),
        engine=run.engine,
        policy=f"{policy.name} ({policy.digest})",
        seconds=time.perf_counter() - started,
    )
