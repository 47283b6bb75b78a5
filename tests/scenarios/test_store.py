"""The scenario store: migrations, round trips of every stored type, slices, import/export."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
from pathlib import Path

import duckdb
import pytest

from models import CarrierService
from scenarios import (
    MIGRATIONS,
    RESULT_COLUMNS,
    RunInfo,
    Scenario,
    ScenarioRecorder,
    ScenarioStore,
    Selection,
    StoreError,
    inventory_lines,
    migrate,
    network_version,
    parse_inventory,
    scenario_snapshot,
)
from solver import prepare, solve
from tests.scenarios.replay_cases import SMALL_TAG, filled_store, small_network, small_requests


def _run_info(store: ScenarioStore, **changes: object) -> RunInfo:
    """A run description with a fresh id."""
    info = RunInfo(
        run_id=store.next_run_id(),
        label="unit",
        engine="mip",
        policy_name="default",
        policy_hash="abc123",
        policy='{"name": "default"}',
        code_version="v-test",
        selection="all",
        levels="ground",
        workers=2,
        started=dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC),
        duration_s=1.25,
        scenario_count=1,
    )
    return dataclasses.replace(info, **changes)  # type: ignore[arg-type]


def test_migrates_an_empty_file_and_reopens_it(tmp_path: Path) -> None:
    """A new file gets every migration once; reopening keeps the data and applies nothing."""
    path = tmp_path / "nested" / "store.duckdb"
    with ScenarioStore(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        store.add_network(small_network())
    with ScenarioStore(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.network_versions() == [network_version(small_network())]
        applied = store.connection.execute("SELECT version FROM schema_version").fetchall()
        assert [row[0] for row in applied] == list(range(1, len(MIGRATIONS) + 1))


def test_migrates_an_older_schema_forward(tmp_path: Path) -> None:
    """A file left at schema 1 is brought to the latest version when opened."""
    path = tmp_path / "old.duckdb"
    connection = duckdb.connect(str(path))
    assert migrate(connection, upto=1) == 1
    connection.close()
    with ScenarioStore(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        # The view of migration 2 exists and answers.
        assert store.connection.execute("SELECT count(*) FROM result_facts").fetchall() == [(0,)]


def test_rejects_a_schema_newer_than_the_code(tmp_path: Path) -> None:
    """Code must not write to a store whose schema it does not know."""
    path = tmp_path / "future.duckdb"
    ScenarioStore(path).close()
    connection = duckdb.connect(str(path))
    connection.execute("INSERT INTO schema_version VALUES (?, now())", [len(MIGRATIONS) + 1])
    connection.close()
    with pytest.raises(StoreError, match="newer"):
        ScenarioStore(path)


def test_network_round_trip_and_stored_once() -> None:
    """The stored network equals the original pieces; the same network is stored once."""
    network = small_network()
    with ScenarioStore(":memory:") as store:
        version = store.add_network(network)
        assert store.add_network(network.model_copy(update={"version": "other-label"})) == version
        # Same network, other stock: still one version.
        assert store.add_network(network.model_copy(update={"inventory": ()})) == version
        loaded = store.network(version)
        assert loaded.nodes == network.nodes
        assert loaded.services == network.services
        assert loaded.items == network.items
        assert loaded.policies == network.policies
        assert loaded.inventory == ()
        capped = network.services[0].model_copy(update={"daily_capacity": 1})
        changed = network.model_copy(update={"services": (capped, *network.services[1:])})
        assert store.add_network(changed) != version
        assert len(store.network_versions()) == 2


def test_scenario_round_trip_with_decision_and_tags() -> None:
    """Request, inventory slice, decision, tags and instants come back equal."""
    network = small_network()
    request = small_requests()[3]
    result = solve(request, network)
    with ScenarioStore(":memory:") as store:
        store.add_network(network)
        scenario_id = store.capture(
            request.model_copy(update={"requested_at": None}),
            network,
            result,
            tags=("a", "b"),
        )
        scenario = store.scenario(scenario_id)
    skus = {line.sku for line in request.cart.lines}
    assert scenario.decision == result
    assert scenario.tags == ("a", "b")
    # A request without an order instant takes the one the result was made for.
    assert scenario.request == request.model_copy(update={"requested_at": result.requested_at})
    assert scenario.network_version == network_version(network)
    assert scenario.snapshot_version == network.version
    assert scenario.as_of == network.as_of
    assert set(scenario.inventory) == {row for row in network.inventory if row.sku in skus}
    assert scenario.inventory, "the cart's SKUs are stocked somewhere"


def test_validated_scenario_round_trip() -> None:
    """A Scenario written with add_scenarios reads back equal, field by field."""
    network = small_network()
    request = small_requests()[5]
    rows = tuple(r for r in network.inventory if r.sku == request.cart.lines[0].sku)
    scenario = Scenario(
        scenario_id="x'); DROP TABLE scenarios; --",  # values are parameters, never SQL
        network_version=network_version(network),
        snapshot_version="snap-1",
        as_of=network.as_of,
        request=request,
        inventory=rows,
        tags=("quote's",),
        captured_at=dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC),
    )
    with ScenarioStore(":memory:") as store:
        store.add_network(network)
        assert store.add_scenarios([scenario]) == 1
        assert store.add_scenarios([scenario]) == 0  # same id: kept once
        assert store.scenario(scenario.scenario_id) == scenario
        assert store.count() == 1


def test_add_scenarios_needs_their_network() -> None:
    """A scenario whose network is not stored is refused."""
    request = small_requests()[0]
    scenario = Scenario(
        scenario_id="orphan",
        network_version="net-missing",
        snapshot_version="s",
        as_of=small_network().as_of,
        request=request,
        captured_at=small_network().as_of,
    )
    with ScenarioStore(":memory:") as store, pytest.raises(StoreError, match="missing"):
        store.add_scenarios([scenario])


def test_run_and_results_round_trip() -> None:
    """A run's description and its result rows come back as written."""
    with filled_store(2) as store:
        ids = store.scenario_ids()
        info = _run_info(store, scenario_count=2)
        rows = [
            (*(ids[0], "ground", "optimal", False, 900, 200, 150, 1250, 5000, 2100, 1300, 1, 2),
             *(3, 0, 1.5, True, True, None, None)),
            (*(ids[1], "ground", "unfulfillable", False, 0, 0, 0, 0, 0, 0, 9, 0, 0),
             *(None, 2, 0.25, False, False, "[ground] family 1: short", None)),
        ]  # fmt: skip
        store.record_run(info, rows)
        assert store.run(info.run_id) == info
        stored = store.connection.execute(
            f"SELECT {', '.join(RESULT_COLUMNS)} FROM results WHERE run_id = ? "
            "ORDER BY scenario_id",
            [info.run_id],
        ).fetchall()
        assert stored == rows
        frame = store.results(info.run_id)
        assert frame["scenario_id"].tolist() == ids
        assert frame["complete"].tolist() == [True, False]
        runs = store.runs()
        assert runs["run_id"].tolist() == [info.run_id]
        with pytest.raises(KeyError):
            store.run(info.run_id + 100)


def test_slice_alone_replays_like_the_full_snapshot() -> None:
    """A scenario's network plus its inventory slice gives the same answer as the full snapshot."""
    network = small_network()
    prepared = prepare(network)
    with filled_store(12) as store:
        base = store.network(network_version(network))
        for scenario in store.scenarios():
            alone = scenario_snapshot(
                base, scenario.inventory, version=scenario.snapshot_version, as_of=scenario.as_of
            )
            full = solve(scenario.request, prepared).options[0]
            replayed = solve(scenario.request, alone).options[0]
            assert (replayed.objective, replayed.shipments) == (full.objective, full.shipments)


def test_slice_rows_are_checked_like_a_snapshot() -> None:
    """Rows naming unknown nodes, or repeated rows, are rejected as full validation would."""
    network = small_network()
    row = network.inventory[0]
    stray = row.model_copy(update={"node_id": "nowhere-01"})
    with pytest.raises(StoreError, match="unknown"):
        scenario_snapshot(network, (stray,), version="v", as_of=network.as_of)
    with pytest.raises(StoreError, match="repeats"):
        scenario_snapshot(network, (row, row), version="v", as_of=network.as_of)
    assert scenario_snapshot(network, (row,), version="v", as_of=network.as_of).inventory == (row,)


def test_inventory_text_groups_rows_by_sku() -> None:
    """The stored slice is a JSON array, one SKU per line, parsed back to the same rows."""
    network = small_network()
    request = next(r for r in small_requests() if len(r.cart.lines) >= 2)
    text = ScenarioRecorder.of(network).record(request).inventory
    lines = inventory_lines(text)
    assert lines is not None
    assert len(lines) == len({line.sku for line in request.cart.lines})
    rows = parse_inventory(text)
    assert json.loads(text) == [row.model_dump(mode="json") for row in rows]
    # Text in another layout (hand-written, say) still parses.
    assert parse_inventory(json.dumps(json.loads(text))) == rows


def test_selection_by_ids_tag_and_time() -> None:
    """Ids, tags and [since, until) order-instant ranges select scenarios."""
    with filled_store(10) as store:
        ids = store.scenario_ids()
        assert store.count(Selection(tag=SMALL_TAG)) == 10
        assert store.count(Selection(tag="other")) == 0
        assert store.scenario_ids(Selection(ids=(ids[2], ids[5], "absent"))) == [ids[2], ids[5]]
        instants = sorted(s.requested_at for s in store.scenarios())
        middle = Selection(since=instants[3], until=instants[6])
        assert store.count(middle) == 3


def test_jsonl_round_trip(tmp_path: Path) -> None:
    """Export to gzipped JSON lines and import into an empty store: same scenarios."""
    path = tmp_path / "out" / "scenarios.jsonl.gz"
    with filled_store(8, decisions=True) as source:
        assert source.export_jsonl(path) == 8
        original = list(source.scenarios())
    with ScenarioStore(":memory:") as target:
        assert target.import_jsonl(path, tags=("imported",)) == 8
        assert target.import_jsonl(path) == 0  # idempotent
        copied = list(target.scenarios())
    assert [s.model_copy(update={"tags": ()}) for s in copied] == [
        s.model_copy(update={"tags": ()}) for s in original
    ]
    assert all(set(s.tags) == {SMALL_TAG, "imported"} for s in copied)


def test_parquet_round_trip(tmp_path: Path) -> None:
    """Export to a Parquet directory and import it: same scenarios and network."""
    with filled_store(8, decisions=True) as source:
        assert source.export_parquet(tmp_path / "pq", Selection(tag=SMALL_TAG)) == 8
        original = list(source.scenarios())
    assert (tmp_path / "pq" / "networks.parquet").is_file()
    with ScenarioStore(":memory:") as target:
        assert target.import_parquet(tmp_path / "pq") == 8
        assert list(target.scenarios()) == original
        assert target.network_versions() == [network_version(small_network())]


def test_import_store_merges_files(tmp_path: Path) -> None:
    """Scenarios of another store file are merged, duplicates once."""
    first, second = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    recorder = ScenarioRecorder.of(small_network())
    requests = small_requests()
    for path, part in ((first, requests[:5]), (second, requests[3:9])):
        with ScenarioStore(path) as store:
            store.add_network(recorder)
            store.add_records(recorder.record(r, scenario_id=r.cart.cart_id) for r in part)
    with ScenarioStore(":memory:") as merged:
        assert merged.import_store(first) == 5
        assert merged.import_store(second) == 4
        assert merged.count() == 9


def test_import_rejects_a_tampered_network(tmp_path: Path) -> None:
    """A network body that does not hash to its version is refused."""
    path = tmp_path / "x.jsonl"
    with filled_store(2) as source:
        source.export_jsonl(path)
    lines = path.read_text().splitlines()
    network = json.loads(lines[0])
    network["body"]["nodes"][0]["handling_cost"] += 1
    path.write_text("\n".join([json.dumps(network), *lines[1:]]) + "\n")
    with ScenarioStore(":memory:") as target, pytest.raises(StoreError, match="does not match"):
        target.import_jsonl(path)


def test_a_kept_recorder_records_what_a_fresh_one_records() -> None:
    """The SKU lines a recorder remembers change nothing: its records equal a new recorder's."""
    network = small_network()
    recorder = ScenarioRecorder.of(network)
    assert recorder.version == network_version(network)
    for request in small_requests()[:5] * 2:  # the second round reads remembered lines
        kept = recorder.record(request, scenario_id="same", captured_at=network.as_of)
        fresh = ScenarioRecorder.of(network).record(
            request, scenario_id="same", captured_at=network.as_of
        )
        assert kept == fresh
        skus = {line.sku for line in request.cart.lines}
        rows = [row for row in network.inventory if row.sku in skus]
        assert parse_inventory(kept.inventory) == tuple(sorted(rows, key=lambda r: r.sku))
    with ScenarioStore(":memory:") as store:
        assert store.add_network(recorder) == recorder.version
        assert store.network_versions() == [recorder.version]


def test_network_body_is_deterministic() -> None:
    """The compressed body is a pure function of the network (no timestamps inside)."""
    network = small_network()
    with ScenarioStore(":memory:") as a, ScenarioStore(":memory:") as b:
        version = a.add_network(network)
        b.add_network(network.model_copy(update={"version": "relabelled"}))
        query = "SELECT body FROM networks"
        assert a.connection.execute(query).fetchall() == b.connection.execute(query).fetchall()
        body = a.connection.execute(query).fetchall()[0][0]
    assert json.loads(gzip.decompress(body))["nodes"][0]["node_id"] == network.nodes[0].node_id
    assert version.startswith("net-")


def test_services_stay_valid_after_round_trip() -> None:
    """Dates inside capacity overrides survive JSON (keys are dates, not strings)."""
    network = small_network()
    with ScenarioStore(":memory:") as store:
        loaded = store.network(store.add_network(network))
    overrides = [s for s in loaded.services if s.remaining_capacity]
    assert overrides, "the generator sets some capacity overrides"
    service: CarrierService = overrides[0]
    node, days = next(iter(service.remaining_capacity.items()))
    assert all(isinstance(day, dt.date) for day in days)
    assert service.capacity_on(node, next(iter(days))) == next(iter(days.values()))
