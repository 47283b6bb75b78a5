"""An HTML report comparing two runs: KPI table with deltas and three plots.

The plots (cost delta per scenario, split rate by cart size, promised-days histogram) are PNGs
written next to ``report.html`` and embedded in it, so the HTML file travels on its own.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenarios._records import RunInfo
from scenarios._store import ScenarioStore
from scenarios.kpis import compare, paired, split_by_cart_size

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["REPORT_FILE", "format_delta", "format_kpis", "format_value", "report"]

REPORT_FILE = "report.html"
_COLOURS = ("#4C72B0", "#DD8452")
# KPIs shown in cents in the store, in dollars in the report.
_MONEY = frozenset(
    {"mean_cost", "total_cost", "mean_margin", "day_cost", "day_cost_myopic", "clairvoyant_cost"}
)
_RATES = frozenset({"split_rate", "unfilled_rate", "fallback_rate", "gap_closed"})


def _by_kind(
    name: str,
    value: float,
    money: Callable[[float], str],
    rate: Callable[[float], str],
    other: Callable[[float], str],
) -> str:
    """``value`` written by the formatter of its KPI's kind ("–" when it is missing)."""
    if math.isnan(value):
        return "–"
    if name in _MONEY:
        return money(value)
    return rate(value) if name in _RATES else other(value)


def _plain(value: float) -> str:
    """A number without a unit: whole ones without decimals."""
    return f"{int(value):,}" if value == int(value) else f"{value:,.3f}"


def format_value(name: str, value: float) -> str:
    """One KPI value for people: dollars, percentages or plain numbers."""
    return _by_kind(name, value, lambda v: f"${v / 100:,.2f}", lambda v: f"{v:.2%}", _plain)


def format_delta(name: str, value: float) -> str:
    """One KPI delta for people (rates in percentage points)."""
    return _by_kind(
        name,
        value,
        lambda v: f"{'-' if v < 0 else '+'}${abs(v) / 100:,.2f}",
        lambda v: f"{v * 100:+.2f} pt",
        lambda v: f"{v:+,.3f}",
    )


def format_kpis(frame: pd.DataFrame) -> list[tuple[str, str, str, str, str]]:
    """Rows of (kpi, a, b, delta, change %) formatted for a table."""
    rows = []
    for name, row in frame.iterrows():
        kpi = str(name)
        change = float(row["change_pct"])
        rows.append(
            (
                kpi,
                format_value(kpi, float(row["a"])),
                format_value(kpi, float(row["b"])),
                format_delta(kpi, float(row["delta"])),
                "–" if math.isnan(change) else f"{change:+.2f} %",
            )
        )
    return rows


def _png(figure: Any, path: Path) -> str:
    """Save a figure as PNG at ``path`` and return it base64-encoded."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    data = buffer.getvalue()
    path.write_bytes(data)
    return base64.b64encode(data).decode()


def _plots(
    store: ScenarioStore, a: RunInfo, b: RunInfo, out_dir: Path, level: str | None
) -> list[tuple[str, str]]:
    """The three plots as (title, base64 PNG)."""
    import matplotlib as mpl  # noqa: PLC0415 - plotting only when a report is asked for

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    pairs = paired(store, a.run_id, b.run_id, level=level)
    names = tuple(f"run {run.run_id} ({run.engine}/{run.policy_name})" for run in (a, b))
    out: list[tuple[str, str]] = []

    both = pairs[pairs["complete_a"] & pairs["complete_b"]]
    deltas = both["cost_delta"].to_numpy() / 100.0
    # Most scenarios usually keep their answer: plot the ones that moved, count the rest.
    moved = deltas[deltas != 0]
    figure, axis = plt.subplots(figsize=(7, 4))
    if len(moved):
        axis.hist(moved, bins=min(40, max(5, len(moved) // 3)), color=_COLOURS[1], ec="white")
        axis.axvline(0.0, color="black", linewidth=1)
    else:
        axis.text(0.5, 0.5, "no scenario changed cost", ha="center", transform=axis.transAxes)
    axis.set_xlabel(f"fulfilment cost, run {b.run_id} − run {a.run_id} ($ per order)")
    axis.set_ylabel("scenarios")
    axis.set_title(
        f"Cost delta: {len(moved)} scenarios changed, {len(deltas) - len(moved)} unchanged "
        f"(of {len(deltas)} filled by both)"
    )
    out.append(("Cost delta distribution", _png(figure, out_dir / "cost_delta.png")))
    plt.close(figure)

    sizes = [split_by_cart_size(store, run.run_id, level=level) for run in (a, b)]
    figure, axis = plt.subplots(figsize=(7, 4))
    width = 0.4
    for k, (frame, name) in enumerate(zip(sizes, names, strict=True)):
        positions = [i + (k - 0.5) * width for i in range(len(frame))]
        rates = frame["split_rate"].fillna(0.0).to_numpy() * 100.0
        axis.bar(positions, rates, width=width, label=name, color=_COLOURS[k])
    axis.set_xticks(range(len(sizes[0])), sizes[0]["cart_size"].tolist())
    axis.set_xlabel("cart size (lines)")
    axis.set_ylabel("split rate (%)")
    axis.set_title("Split rate by cart size")
    axis.legend()
    out.append(("Split rate by cart size", _png(figure, out_dir / "split_by_cart_size.png")))
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(7, 4))
    columns = ("promised_days_a", "promised_days_b")
    flags = ("complete_a", "complete_b")
    days = [
        pairs.loc[pairs[flag], column].dropna() for column, flag in zip(columns, flags, strict=True)
    ]
    every = sorted({int(d) for series in days for d in series})
    for k, (series, name) in enumerate(zip(days, names, strict=True)):
        counts = series.astype(int).value_counts()
        axis.bar(
            [d + (k - 0.5) * width for d in every],
            [int(counts.get(d, 0)) for d in every],
            width=width,
            label=name,
            color=_COLOURS[k],
        )
    axis.set_xlabel("promised days (promised date − order date)")
    axis.set_ylabel("scenarios")
    axis.set_title("Promised days")
    axis.legend()
    out.append(("Promised-days histogram", _png(figure, out_dir / "promised_days.png")))
    plt.close(figure)
    return out


def _run_table(runs: tuple[RunInfo, RunInfo]) -> str:
    """HTML table describing both runs."""
    fields = (
        ("engine", "engine"),
        ("policy", "policy_name"),
        ("policy hash", "policy_hash"),
        ("code version", "code_version"),
        ("selection", "selection"),
        ("levels", "levels"),
        ("scenarios", "scenario_count"),
        ("workers", "workers"),
        ("started", "started"),
        ("duration (s)", "duration_s"),
    )
    head = "".join(f"<th>run {run.run_id}</th>" for run in runs)
    body = "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td>{html.escape(str(getattr(run, attr)))}</td>" for run in runs)
        + "</tr>"
        for label, attr in fields
    )
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def report(
    store: ScenarioStore, run_a: int, run_b: int, out_dir: Path, *, level: str | None = None
) -> Path:
    """Write ``report.html`` (plus the PNGs) comparing two runs into ``out_dir``; its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = (store.run(run_a), store.run(run_b))
    table = compare(store, run_a, run_b, level=level)
    kpi_rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in format_kpis(table)
    )
    plots = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{data}">'
        for title, data in _plots(store, runs[0], runs[1], out_dir, level)
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Replay comparison: run {run_a} vs run {run_b}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Replay comparison: run {run_a} vs run {run_b}</h1>
<p>Level: {html.escape(level or "every quoted level")}. Money in dollars; rates in percent,
their deltas in percentage points. Delta = run {run_b} − run {run_a}.</p>
{_run_table(runs)}
<h2>KPIs</h2>
<table><tr><th>KPI</th><th>run {run_a}</th><th>run {run_b}</th><th>delta</th><th>change</th></tr>
{kpi_rows}</table>
{plots}
</body></html>
"""
    path = out_dir / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path
