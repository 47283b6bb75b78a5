"""The regression gate's depleting-day suite: one day of orders, its cost and the gap closed.

The golden suite judges each order alone. This suite replays a fixed day (200 orders on the
Jasin–Sinha-style network of scenarios/day_networks.py, each SKU's stock about its expected
demand, spread over the centres unlike it) in arrival order, once myopically and once with the
opportunity cost of stock re-priced every 50 orders, and solves the whole day as one model for
the clairvoyant cost.

KPIs: ``day_cost`` (the priced day's cost), ``day_cost_myopic``, ``clairvoyant_cost``,
``gap_closed`` (share of the myopic → clairvoyant gap the priced day closes) and
``day_violations`` (answers the checker refused). The gate fails when ``day_cost`` rises by
more than 0.5 %, ``gap_closed`` falls by more than 2 points, or any answer is refused. The
baseline lives beside the golden suite's (``day_baseline.json``) and is regenerated with it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Final

from scenarios.day import Day, DayPolicy, clairvoyant, run_day
from scenarios.day_networks import jasin_sinha_day
from scenarios.policy import DEFAULT_POLICY, Policy

__all__ = [
    "DAY_BASELINE_FILE",
    "DAY_COST_LIMIT",
    "GAP_CLOSED_LIMIT",
    "day_checks",
    "day_kpis",
    "read_day_baseline",
    "suite_day",
    "write_day_baseline",
]

DAY_BASELINE_FILE: Final = "day_baseline.json"
# The priced day's cost may rise by at most this share of the baseline (0.5 %).
DAY_COST_LIMIT: Final = 0.005
# The gap closed may fall by at most this much (a share: 0.02 is two points).
GAP_CLOSED_LIMIT: Final = 0.02
_SEED: Final = 1
_ORDERS: Final = 200
_CLAIRVOYANT_LIMIT_S: Final = 300.0
PRICED: Final = DayPolicy("baskets-every-50", pricing="repriced", every=50, baskets=600)
MYOPIC: Final = DayPolicy("myopic")


def suite_day(policy: Policy = DEFAULT_POLICY) -> Day:
    """The suite's day under ``policy`` (stock about the day's demand, spread unlike it)."""
    day = jasin_sinha_day(_SEED, _ORDERS)
    return Day(
        day.name,
        policy.apply(day.snapshot),
        day.orders,
        day.level,
        day.forecast,
        day.baskets,
    )


def day_kpis(policy: Policy = DEFAULT_POLICY) -> dict[str, float]:
    """Replay the suite's day myopically and priced with ``policy``'s engine; plan it whole."""
    day = suite_day(policy)
    myopic = run_day(day, dataclasses.replace(MYOPIC, engine=policy.engine))
    priced = run_day(day, dataclasses.replace(PRICED, engine=policy.engine))
    plan = clairvoyant(
        day, time_limit_s=_CLAIRVOYANT_LIMIT_S, hints=[myopic.answers, priced.answers]
    )
    if plan.cost is None or not plan.optimal:
        raise RuntimeError(f"the day's clairvoyant plan was not proven ({plan.status})")
    gap = myopic.cost - plan.cost
    return {
        "day_cost": float(priced.cost),
        "day_cost_myopic": float(myopic.cost),
        "clairvoyant_cost": float(plan.cost),
        "gap_closed": round((myopic.cost - priced.cost) / gap, 6) if gap > 0 else 0.0,
        "day_unfilled": float(priced.unfilled),
        "day_violations": float(myopic.violations + priced.violations),
    }


def write_day_baseline(directory: Path, values: dict[str, float], **meta: Any) -> None:
    """Write the suite's baseline file."""
    body = {"format": 1, **meta, "kpis": values}
    (directory / DAY_BASELINE_FILE).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def read_day_baseline(directory: Path) -> dict[str, float]:
    """The committed baseline KPIs of the day suite."""
    body = json.loads((directory / DAY_BASELINE_FILE).read_text(encoding="utf-8"))
    return {name: float(value) for name, value in body["kpis"].items()}


def day_checks(
    baseline: dict[str, float], current: dict[str, float]
) -> list[tuple[str, float, float, bool, str]]:
    """(KPI, baseline, current, passed, limit) per KPI; limit is empty for unchecked ones."""
    out = []
    for name, after in current.items():
        before = baseline.get(name, float("nan"))
        if name == "day_cost":
            passed, limit = after <= before * (1 + DAY_COST_LIMIT), f"+{DAY_COST_LIMIT:.1%}"
        elif name == "gap_closed":
            passed = after >= before - GAP_CLOSED_LIMIT
            limit = f"-{GAP_CLOSED_LIMIT * 100:.0f} pt"
        elif name == "day_unfilled":
            passed, limit = after <= before, "no rise"
        elif name == "day_violations":
            passed, limit = after == 0, "0"
        else:
            passed, limit = True, ""
        out.append((name, before, after, passed, limit))
    return out
