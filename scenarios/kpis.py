"""KPIs of a replay run, computed in SQL over its result rows, and run-to-run comparison.

One result row is one option (a scenario at one service level). With one level per scenario,
as in the golden suite, rows and scenarios coincide. An option is *complete* when it ships
every unit (status optimal, feasible or fallback).

KPI definitions (``KPI_NAMES`` order):

- ``scenarios``: result rows of the run (at the chosen level)
- ``mean_cost``: mean fulfilment cost (shipping + handling + labour, cents) of complete options
- ``total_cost``: total fulfilment cost of all options, cents
- ``split_rate``: share of complete options shipped in more than one package
- ``shipments_per_order``: mean packages per complete option
- ``mean_promised_days``: mean days from the order date to the promised date (complete options)
- ``unfilled_rate``: share of options that do not ship every unit (partial, unfulfillable, error)
- ``mean_margin``: mean margin (revenue − unit costs − fulfilment cost, cents) of complete options
- ``solve_p50_ms``, ``solve_p99_ms``: solve wall time percentiles (continuous quantiles)
- ``fallback_rate``: share of options answered by the greedy fallback
- ``checker_failures``: options the independent checker rejected
- ``errors``: scenarios that could not be replayed at all
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from scenarios._store import ScenarioStore

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CART_SIZE_BUCKETS", "KPI_NAMES", "compare", "kpis", "paired", "split_by_cart_size"]

KPI_NAMES: Final[tuple[str, ...]] = (
    "scenarios",
    "mean_cost",
    "total_cost",
    "split_rate",
    "shipments_per_order",
    "mean_promised_days",
    "unfilled_rate",
    "mean_margin",
    "solve_p50_ms",
    "solve_p99_ms",
    "fallback_rate",
    "checker_failures",
    "errors",
)

_KPI_SQL: Final = """
SELECT
    count(*) AS scenarios,
    avg(total_cost) FILTER (WHERE complete) AS mean_cost,
    coalesce(sum(total_cost), 0) AS total_cost,
    avg(CASE WHEN shipments > 1 THEN 1.0 ELSE 0.0 END) FILTER (WHERE complete) AS split_rate,
    avg(shipments) FILTER (WHERE complete) AS shipments_per_order,
    avg(promised_days) FILTER (WHERE complete) AS mean_promised_days,
    avg(CASE WHEN complete THEN 0.0 ELSE 1.0 END) AS unfilled_rate,
    avg(margin) FILTER (WHERE complete) AS mean_margin,
    quantile_cont(solve_ms, 0.5) AS solve_p50_ms,
    quantile_cont(solve_ms, 0.99) AS solve_p99_ms,
    avg(CASE WHEN fallback THEN 1.0 ELSE 0.0 END) AS fallback_rate,
    count(*) FILTER (WHERE NOT checker_ok AND error IS NULL) AS checker_failures,
    count(*) FILTER (WHERE error IS NOT NULL) AS errors
FROM result_facts
WHERE run_id = $run AND ($level::VARCHAR IS NULL OR level = $level::VARCHAR OR level = 'none')
"""

# Cart-size buckets (lines) for split rates: label, lowest and highest line count.
CART_SIZE_BUCKETS: Final[tuple[tuple[str, int, int], ...]] = (
    ("1", 1, 1),
    ("2", 2, 2),
    ("3", 3, 3),
    ("4-5", 4, 5),
    ("6-10", 6, 10),
    ("11-20", 11, 20),
    ("21+", 21, 10_000),
)

_SPLIT_BY_SIZE_SQL: Final = """
SELECT
    b.label AS cart_size,
    count(r.scenario_id) AS options,
    avg(CASE WHEN r.shipments > 1 THEN 1.0 ELSE 0.0 END) AS split_rate
FROM (SELECT unnest($labels::VARCHAR[]) AS label, unnest($low::INTEGER[]) AS low,
             unnest($high::INTEGER[]) AS high, unnest($order::INTEGER[]) AS position) b
LEFT JOIN result_facts r
  ON r.lines BETWEEN b.low AND b.high AND r.run_id = $run AND r.complete
  AND ($level::VARCHAR IS NULL OR r.level = $level::VARCHAR)
GROUP BY b.label, b.position
ORDER BY b.position
"""

# Per-scenario pairs of two runs (same scenario and level in both).
_PAIRED_SQL: Final = """
SELECT
    a.scenario_id,
    a.level,
    a.lines,
    a.channel,
    a.complete AS complete_a,
    b.complete AS complete_b,
    a.total_cost AS cost_a,
    b.total_cost AS cost_b,
    b.total_cost - a.total_cost AS cost_delta,
    a.shipments AS shipments_a,
    b.shipments AS shipments_b,
    a.promised_days AS promised_days_a,
    b.promised_days AS promised_days_b,
    a.margin AS margin_a,
    b.margin AS margin_b
FROM result_facts a
JOIN result_facts b ON a.scenario_id = b.scenario_id AND a.level = b.level
WHERE a.run_id = $a AND b.run_id = $b
  AND ($level::VARCHAR IS NULL OR a.level = $level::VARCHAR)
ORDER BY a.scenario_id, a.level
"""


def kpis(store: ScenarioStore, run_id: int, *, level: str | None = None) -> dict[str, float]:
    """KPIs of one run (only options of ``level`` when given); see the module docstring."""
    store.run(run_id)  # KeyError for an unknown run
    result = store.connection.execute(_KPI_SQL, {"run": run_id, "level": level})
    row = result.fetchall()[0]
    names = [column[0] for column in result.description]
    values = dict(zip(names, row, strict=True))
    return {
        name: float("nan") if values[name] is None else float(values[name]) for name in KPI_NAMES
    }


def compare(
    store: ScenarioStore, run_a: int, run_b: int, *, level: str | None = None
) -> pd.DataFrame:
    """KPIs of two runs side by side: ``a``, ``b``, ``delta`` (b − a) and ``change_pct``."""
    import pandas as pd  # noqa: PLC0415 - pandas only for callers who want frames

    first = kpis(store, run_a, level=level)
    second = kpis(store, run_b, level=level)
    frame = pd.DataFrame(
        {"a": pd.Series(first), "b": pd.Series(second)}, index=pd.Index(KPI_NAMES, name="kpi")
    )
    frame["delta"] = frame["b"] - frame["a"]
    frame["change_pct"] = (frame["delta"] / frame["a"].abs()).where(frame["a"] != 0) * 100.0
    frame.attrs["run_a"] = run_a
    frame.attrs["run_b"] = run_b
    return frame


def paired(
    store: ScenarioStore, run_a: int, run_b: int, *, level: str | None = None
) -> pd.DataFrame:
    """One row per scenario and level present in both runs, with both outcomes."""
    return store.connection.execute(_PAIRED_SQL, {"a": run_a, "b": run_b, "level": level}).df()


def split_by_cart_size(
    store: ScenarioStore, run_id: int, *, level: str | None = None
) -> pd.DataFrame:
    """Split rate of complete options per cart-size bucket (``CART_SIZE_BUCKETS``)."""
    return store.connection.execute(
        _SPLIT_BY_SIZE_SQL,
        {
            "labels": [label for label, _, _ in CART_SIZE_BUCKETS],
            "low": [low for _, low, _ in CART_SIZE_BUCKETS],
            "high": [high for _, _, high in CART_SIZE_BUCKETS],
            "order": list(range(len(CART_SIZE_BUCKETS))),
            "run": run_id,
            "level": level,
        },
    ).df()
