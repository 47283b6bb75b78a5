"""Captured decisions keep the prices they were charged, so replay checks them against those."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from models import StockPrices
from scenarios import ScenarioRecorder, ScenarioStore, migrate
from scenarios.replay import replay
from solver import prepare, solve
from tests.scenarios.replay_cases import SMALL_TAG, small_network, small_requests

SCENARIOS = 6
# Dear enough to steer most answers away from the cheapest node's stock.
CENTS = 5_000


def _priced() -> StockPrices:
    """A price on every stocked (node, SKU) of the small network's first SKUs."""
    network = small_network()
    skus = {line.sku for request in small_requests(SCENARIOS) for line in request.cart.lines}
    rows = [(row.node_id, row.sku, CENTS) for row in network.positions() if row.sku in skus]
    return StockPrices.of(rows, version=4)


def _store(*, keep_prices: bool) -> ScenarioStore:
    """Scenarios whose decisions were charged the prices; with ``keep_prices`` they keep them."""
    network = small_network()
    prepared, recorder = prepare(network), ScenarioRecorder.of(network)
    prices = _priced()
    store = ScenarioStore(":memory:")
    store.add_network(recorder)
    store.add_records(
        recorder.record(
            request,
            solve(request, prepared, prices=prices),
            tags=(SMALL_TAG,),
            scenario_id=request.cart.cart_id,
            captured_at=network.as_of + dt.timedelta(minutes=k),
            prices=prices if keep_prices else StockPrices.of([]),
        )
        for k, request in enumerate(small_requests(SCENARIOS))
    )
    return store


def test_a_scenario_keeps_the_prices_of_its_cart_only() -> None:
    """The slice names the cart's SKUs at every node priced, and the table's version."""
    with _store(keep_prices=True) as store:
        scenario = store.scenario(small_requests(SCENARIOS)[0].cart.cart_id)
        assert scenario.prices is not None
        assert scenario.prices.version == 4
        skus = {line.sku for line in scenario.request.cart.lines}
        assert {sku for _, sku, _ in scenario.prices.rows} == skus
        assert {cents for _, _, cents in scenario.prices.rows} == {CENTS}
        assert scenario.decision is not None
        assert scenario.decision.solver.prices_version == 4


def test_recorded_priced_decisions_check_against_their_own_prices() -> None:
    """With the slice every recorded decision checks; without it the charge looks invented."""
    with _store(keep_prices=True) as store:
        run = replay(store, SMALL_TAG, recorded=True, workers=1, progress=False)
        assert store.results(run)["checker_ok"].all()
    with _store(keep_prices=False) as store:
        run = replay(store, SMALL_TAG, recorded=True, workers=1, progress=False)
        assert not store.results(run)["checker_ok"].all()


def test_a_store_from_before_prices_is_still_read(tmp_path: Path) -> None:
    """A capture file at schema 2 (no prices column) imports, its scenarios unpriced."""
    old = tmp_path / "old.duckdb"
    connection = duckdb.connect(str(old))
    migrate(connection, upto=2)
    connection.close()
    network = small_network()
    request = small_requests(SCENARIOS)[0]
    record = ScenarioRecorder.of(network).record(request, tags=(SMALL_TAG,), scenario_id="old-1")
    connection = duckdb.connect(str(old))
    # The row as an older build wrote it: every column but prices.
    connection.execute(
        "INSERT INTO scenarios VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        list(record.row()[:-1]),
    )
    connection.close()
    with ScenarioStore(tmp_path / "merged.duckdb") as merged:
        merged.add_network(network)
        assert merged.import_store(old) == 1
        assert merged.scenario("old-1").prices is None
