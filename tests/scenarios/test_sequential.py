"""`promise replay --sequential`: stored scenarios replayed as one day on depleting stock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from models import PromiseRequest
from scenarios import Scenario, ScenarioStore, Selection, network_version
from scenarios.cli import main as scenarios_main
from scenarios.day import Day, DayPolicy, run_day
from scenarios.day_networks import jasin_sinha_day
from scenarios.sequential import replay_sequential

CAPTURED = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)


def thin_day(seed: int, orders: int) -> Day:
    """A Jasin–Sinha-style day with a third of its stock, so orders compete for it."""
    day = jasin_sinha_day(seed, orders)
    thin = tuple(
        row.model_copy(update={"on_hand": max(1, row.on_hand // 3)})
        for row in day.snapshot.inventory
    )
    snapshot = day.snapshot.model_copy(update={"inventory": thin})
    return Day(day.name, snapshot, day.orders, day.level, day.forecast, day.baskets)


def scenarios_of(day: Day, tag: str) -> list[Scenario]:
    """Each order as a captured scenario carrying the day's opening rows of its SKUs."""
    out = []
    for k, request in enumerate(day.orders):
        skus = {line.sku for line in request.cart.lines}
        # Stored without levels: the sequential replay chooses the level.
        stored = PromiseRequest.model_validate(
            {**request.model_dump(exclude_none=True), "service_levels": None}
        )
        out.append(
            Scenario(
                scenario_id=f"{tag}-{k:04d}",
                network_version=network_version(day.snapshot),
                snapshot_version="opening",
                as_of=day.snapshot.as_of,
                request=stored,
                inventory=tuple(r for r in day.snapshot.inventory if r.sku in skus),
                tags=(tag,),
                captured_at=CAPTURED,
            )
        )
    return out


def filled(path: Path | str, day: Day, history: Day) -> ScenarioStore:
    """A store holding ``day`` (tag ``today``) and ``history`` (tag ``history``)."""
    store = ScenarioStore(path)
    store.add_network(day.snapshot)
    store.add_scenarios(scenarios_of(day, "today"))
    store.add_scenarios(scenarios_of(history, "history"))
    return store


def test_stored_day_replays_like_the_day_itself() -> None:
    """The stored day gives the same cost, splits and unfilled units as the day replayed directly.

    Every SKU the day sells is in some order's slice, and every slice holds the opening rows,
    so the day rebuilt from the store starts from the same stock.
    """
    day = thin_day(3, 40)
    direct = run_day(day, DayPolicy("myopic"))
    with filled(":memory:", day, thin_day(4, 40)) as store:
        run_id, stored = replay_sequential(
            store, Selection(tag="today"), day_policy=DayPolicy("myopic"), progress=False
        )
        assert (stored.cost, stored.split_orders, stored.unfilled) == (
            direct.cost,
            direct.split_orders,
            direct.unfilled,
        )
        assert stored.violations == 0
        results = store.results(run_id)
        assert len(results) == len(day.orders)
        assert store.run(run_id).engine == "sequential:mip"
        # Stock is consumed: the rows show units unfilled or split once it runs short.
        assert int(results["unfilled_units"].sum()) == direct.unfilled


def test_priced_sequential_replay_uses_the_history_forecast() -> None:
    """A priced day prices from the history tag and refuses to run without one."""
    day = thin_day(3, 40)
    with filled(":memory:", day, thin_day(4, 60)) as store:
        with pytest.raises(ValueError, match="forecast"):
            replay_sequential(
                store,
                Selection(tag="today"),
                day_policy=DayPolicy("fixed", pricing="fixed"),
                progress=False,
            )
        _, priced = replay_sequential(
            store,
            Selection(tag="today"),
            day_policy=DayPolicy("every-20", pricing="repriced", every=20),
            forecast=Selection(tag="history"),
            progress=False,
        )
        assert priced.pricing_runs == 2
        assert priced.violations == 0


def test_cli_replays_a_day(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`replay --sequential` stores a run and prints the day's figures."""
    path = tmp_path / "scenarios.duckdb"
    filled(path, thin_day(3, 30), thin_day(4, 30)).close()
    code = scenarios_main(
        [
            "replay",
            "--sequential",
            "--tag",
            "today",
            "--pricing",
            "fixed",
            "--forecast-tag",
            "history",
            "--workers",
            "1",
            "--no-progress",
            "--store",
            str(path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "one day of 30 orders" in out
    assert "pricing_runs" in out
