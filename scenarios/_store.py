"""The scenario store: networks, scenarios, replay runs and their results in one DuckDB file.

A *scenario* is a promise request plus the slice of the snapshot it needs: a reference to the
network (nodes, services, catalog, channel policies; stored once per content version) and only
the inventory rows of the cart's SKUs, so a scenario replays on its own. The recorded decision
is kept where it is known (captured traffic). A *run* replays a set of scenarios under an
engine and a policy; *results* hold one row per scenario, service level and run.

The tables and migrations are in ``scenarios._schema``, the network and inventory encodings in
``scenarios._codecs`` and the record types in ``scenarios._records``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gzip
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import duckdb

from models import NO_PRICES, PromiseRequest, PromiseResult, Snapshot, StockPrices
from scenarios._codecs import base_snapshot, checked_network_row, exported_network_row
from scenarios._records import (
    RunInfo,
    Scenario,
    ScenarioRecord,
    ScenarioRecorder,
    Selection,
    record_from_row,
    scenario_line,
)
from scenarios._schema import (
    INSERT_BATCH,
    INSERT_NETWORKS,
    INSERT_RESULTS,
    INSERT_SCENARIOS,
    MEMORY,
    MIGRATIONS,
    NETWORK_NAMES,
    PRICES_SCHEMA,
    SCENARIO_NAMES,
    SCENARIO_NAMES_UNPRICED,
    SCENARIO_TABLE,
    SELECT_WHERE,
    SELECTED_NETWORKS,
    StoreError,
    default_store_path,
    first_row,
    migrate,
    one_row,
)
from solver import Inventory

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ScenarioStore"]


class ScenarioStore:
    """A DuckDB file of networks, scenarios, runs and results (``":memory:"`` for tests)."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        read_only: bool = False,
        threads: int | None = None,
    ) -> None:
        """Open (creating and migrating when needed) the store at ``path``."""
        target = default_store_path() if path is None else path
        self.path: str | Path = MEMORY if str(target) == MEMORY else Path(target)
        config: dict[str, Any] = {}
        if threads is not None:
            config["threads"] = threads
        if isinstance(self.path, Path) and not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path), read_only=read_only, config=config)
        self._con.execute("SET TimeZone = 'UTC'")
        self._known_networks: set[str] = set()
        if read_only:
            try:
                row = one_row(self._con.execute("SELECT max(version) FROM schema_version"))
            except duckdb.CatalogException as exc:
                self._con.close()
                raise StoreError(f"{self.path} is not a scenario store") from exc
            self.schema_version = int(row[0] or 0)
            if not 1 <= self.schema_version <= len(MIGRATIONS):
                self._con.close()
                raise StoreError(f"{self.path} has unsupported schema {self.schema_version}")
        else:
            self.schema_version = migrate(self._con)

    # Lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._con.close()

    def __enter__(self) -> ScenarioStore:
        """Use as a context manager."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close on exit."""
        self.close()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, for SQL of your own (KPIs, notebooks)."""
        return self._con

    @property
    def _scenario_names(self) -> str:
        """The scenario columns to select (a store opened read-only may predate prices)."""
        return SCENARIO_NAMES if self.schema_version >= PRICES_SCHEMA else SCENARIO_NAMES_UNPRICED

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN … COMMIT, rolled back when the block raises (the error goes on)."""
        self._con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    # Networks -------------------------------------------------------------------------------

    def add_network(self, network: Snapshot | ScenarioRecorder) -> str:
        """Store a snapshot's network unless its version is already there; its version.

        Pass the ``ScenarioRecorder`` of a snapshot that is recorded from, so its network is
        encoded once.
        """
        facts = network if isinstance(network, ScenarioRecorder) else ScenarioRecorder.of(network)
        snapshot = facts.snapshot
        if facts.version not in self._known_networks:
            with self._transaction():
                self._insert_networks(
                    [
                        (
                            facts.version,
                            snapshot.version,
                            snapshot.as_of,
                            len(snapshot.nodes),
                            len(snapshot.items),
                            facts.body,
                            dt.datetime.now(dt.UTC),
                        )
                    ]
                )
            self._known_networks.add(facts.version)
        return facts.version

    def _insert_networks(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert network rows (duplicates ignored), inside the caller's transaction."""
        if rows:
            self._con.execute(INSERT_NETWORKS, [list(col) for col in zip(*rows, strict=True)])

    def network_versions(self, selection: Selection | None = None) -> list[str]:
        """Stored network versions (only those of ``selection``'s scenarios when given)."""
        if selection is None:
            rows = self._con.execute("SELECT version FROM networks ORDER BY version")
        else:
            rows = self._con.execute(SELECTED_NETWORKS, selection.params())
        return [row[0] for row in rows.fetchall()]

    def network(self, version: str) -> Snapshot:
        """The network of ``version`` as a snapshot without inventory (parsed on every call)."""
        row = first_row(
            self._con.execute(
                "SELECT body, label, as_of FROM networks WHERE version = ?", [version]
            )
        )
        if row is None:
            raise StoreError(f"no network {version} in the store")
        return base_snapshot(version, row[0], label=row[1], as_of=row[2])

    def network_bodies(self, versions: Iterable[str]) -> dict[str, tuple[bytes, str, dt.datetime]]:
        """Body, label and as-of of each network version (for replay workers)."""
        wanted = sorted(set(versions))
        rows = self._con.execute(
            "SELECT version, body, label, as_of FROM networks "
            "WHERE version IN (SELECT unnest(?::VARCHAR[]))",
            [wanted],
        ).fetchall()
        found = {row[0]: (row[1], row[2], row[3]) for row in rows}
        missing = [v for v in wanted if v not in found]
        if missing:
            raise StoreError(f"scenarios reference networks missing from the store: {missing}")
        return found

    # Scenarios ------------------------------------------------------------------------------

    def add_records(self, records: Iterable[ScenarioRecord]) -> int:
        """Insert serialized scenarios in one transaction (existing ids are kept); rows added."""
        rows = [record.row() for record in records]
        if not rows:
            return 0
        with self._transaction():
            before = self._count("scenarios")
            for start in range(0, len(rows), INSERT_BATCH):
                batch = rows[start : start + INSERT_BATCH]
                self._con.execute(INSERT_SCENARIOS, [list(c) for c in zip(*batch, strict=True)])
            return self._count("scenarios") - before

    def add_scenarios(self, scenarios: Iterable[Scenario]) -> int:
        """Insert scenarios whose networks are stored; rows added."""
        records = [scenario.record() for scenario in scenarios]
        versions = {record.network_version for record in records}
        self.network_bodies(versions)  # raises when a network is missing
        return self.add_records(records)

    def capture(
        self,
        request: PromiseRequest,
        snapshot: Snapshot,
        result: PromiseResult | None = None,
        *,
        tags: Sequence[str] = (),
        scenario_id: str | None = None,
        inventory: Inventory | None = None,
        prices: StockPrices = NO_PRICES,
    ) -> str:
        """Store one promise as a scenario (its network too); the scenario id."""
        recorder = ScenarioRecorder.of(snapshot)
        self.add_network(recorder)
        record = recorder.record(
            request,
            result,
            tags=tags,
            scenario_id=scenario_id,
            inventory=inventory,
            prices=prices,
        )
        self.add_records([record])
        return record.scenario_id

    def _count(self, table: str) -> int:
        """Rows in one of the store's tables."""
        if table not in {"scenarios", "networks", "runs", "results"}:
            raise ValueError(f"unknown table {table}")
        return int(one_row(self._con.execute(f"SELECT count(*) FROM {table}"))[0])  # noqa: S608

    def count(self, selection: Selection | None = None) -> int:
        """Number of scenarios in ``selection`` (all by default)."""
        query = f"SELECT count(*) FROM scenarios WHERE {SELECT_WHERE}"  # noqa: S608 - constant
        return int(one_row(self._con.execute(query, (selection or Selection()).params()))[0])

    def scenario_ids(self, selection: Selection | None = None) -> list[str]:
        """Ids of the scenarios in ``selection``, sorted."""
        query = f"SELECT id FROM scenarios WHERE {SELECT_WHERE} ORDER BY id"  # noqa: S608
        rows = self._con.execute(query, (selection or Selection()).params()).fetchall()
        return [row[0] for row in rows]

    def scenario(self, scenario_id: str) -> Scenario:
        """One scenario, parsed and validated (KeyError when absent)."""
        row = first_row(
            self._con.execute(
                f"SELECT {self._scenario_names} FROM scenarios WHERE id = ?",  # noqa: S608 - constant
                [scenario_id],
            )
        )
        if row is None:
            raise KeyError(scenario_id)
        return Scenario.from_row(row)

    def scenarios(
        self, selection: Selection | None = None, *, batch: int = 500
    ) -> Iterator[Scenario]:
        """Scenarios in ``selection``, parsed, in id order (streamed in batches)."""
        for rows in self.records(selection, batch=batch):
            yield from (Scenario.from_row(row) for row in rows)

    def records(
        self, selection: Selection | None = None, *, batch: int = 500
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Raw scenario rows (table column order) in ``selection``, in id order, by batch.

        A separate cursor streams the rows, so the store stays usable meanwhile.
        """
        query = f"SELECT {self._scenario_names} FROM scenarios WHERE {SELECT_WHERE} ORDER BY id"  # noqa: S608
        cursor = self._con.cursor()
        try:
            cursor.execute(query, (selection or Selection()).params())
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            cursor.close()

    def scenario_table(self, selection: Selection | None = None) -> pd.DataFrame:
        """Scenarios without their JSON bodies, as a DataFrame (for notebooks)."""
        return self._con.execute(SCENARIO_TABLE, (selection or Selection()).params()).df()

    # Runs and results -----------------------------------------------------------------------

    def next_run_id(self) -> int:
        """Reserve a run id."""
        return int(one_row(self._con.execute("SELECT nextval('run_ids')"))[0])

    def record_run(self, info: RunInfo, rows: Sequence[Sequence[Any]]) -> int:
        """Store a run and its result rows (``RESULT_COLUMNS`` order) in one transaction."""
        with self._transaction():
            self._con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                list(dataclasses.astuple(info)),
            )
            for start in range(0, len(rows), INSERT_BATCH):
                batch = rows[start : start + INSERT_BATCH]
                columns = [list(c) for c in zip(*batch, strict=True)]
                self._con.execute(INSERT_RESULTS, [[info.run_id] * len(batch), *columns])
        return info.run_id

    def run(self, run_id: int) -> RunInfo:
        """One run (KeyError when absent)."""
        names = ", ".join(field.name for field in dataclasses.fields(RunInfo))
        row = first_row(
            self._con.execute(
                f"SELECT {names} FROM runs WHERE run_id = ?",  # noqa: S608 - constant identifiers
                [run_id],
            )
        )
        if row is None:
            raise KeyError(run_id)
        return RunInfo(*row)

    def runs(self) -> pd.DataFrame:
        """Every run as a DataFrame, newest first."""
        return self._con.execute(
            "SELECT run_id, label, engine, policy_name, policy_hash, code_version, selection, "
            "levels, workers, started, duration_s, scenario_count FROM runs "
            "ORDER BY run_id DESC"
        ).df()

    def results(self, run_id: int) -> pd.DataFrame:
        """Result rows of one run with the scenario's cart size and channel, as a DataFrame."""
        return self._con.execute(
            "SELECT * FROM result_facts WHERE run_id = ? ORDER BY scenario_id, level", [run_id]
        ).df()

    # Import and export ----------------------------------------------------------------------

    def export_jsonl(self, path: Path, selection: Selection | None = None) -> int:
        """Write networks then scenarios as JSON lines (gzipped for ``.gz``); scenarios written."""
        selection = selection or Selection()
        path.parent.mkdir(parents=True, exist_ok=True)
        opener = gzip.open if path.suffix == ".gz" else open
        query = (
            f"SELECT {NETWORK_NAMES} FROM networks WHERE version IN "  # noqa: S608 - constant
            f"(SELECT network_version FROM scenarios WHERE {SELECT_WHERE}) ORDER BY version"
        )
        count = 0
        with opener(path, "wt", encoding="utf-8") as out:
            for version, label, as_of, nodes, skus, body, created in self._con.execute(
                query, selection.params()
            ).fetchall():
                head = json.dumps(
                    {
                        "type": "network",
                        "version": version,
                        "label": label,
                        "as_of": as_of.isoformat(),
                        "nodes": nodes,
                        "skus": skus,
                        "created": created.isoformat(),
                    }
                )
                # The body is JSON already: splice it in rather than parse and re-encode.
                out.write(head[:-1] + ', "body": ' + gzip.decompress(body).decode() + "}\n")
            for rows in self.records(selection):
                for row in rows:
                    out.write(scenario_line(row) + "\n")
                    count += 1
        return count

    def import_jsonl(self, path: Path, *, tags: Sequence[str] = ()) -> int:
        """Read a JSON-lines export (validated line by line); scenarios added."""
        opener = gzip.open if path.suffix == ".gz" else open
        records: list[ScenarioRecord] = []
        networks: list[tuple[Any, ...]] = []
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                item = json.loads(line)
                kind = item.pop("type", None)
                if kind == "network":
                    networks.append(exported_network_row(item, number))
                elif kind == "scenario":
                    item["tags"] = sorted({*item.get("tags", ()), *tags})
                    records.append(Scenario.model_validate(item).record())
                else:
                    raise StoreError(f"{path}:{number}: unknown record type {kind!r}")
        return self._import(networks, records)

    def export_parquet(self, directory: Path, selection: Selection | None = None) -> int:
        """Write ``networks.parquet`` and ``scenarios.parquet`` into ``directory``; scenarios."""
        selection = selection or Selection()
        directory.mkdir(parents=True, exist_ok=True)
        params = selection.params()
        networks = self._con.sql(
            f"SELECT {NETWORK_NAMES} FROM networks WHERE version IN "  # noqa: S608 - constant
            f"(SELECT network_version FROM scenarios WHERE {SELECT_WHERE}) ORDER BY version",
            params=params,
        )
        scenarios = self._con.sql(
            f"SELECT {self._scenario_names} FROM scenarios WHERE {SELECT_WHERE} ORDER BY id",  # noqa: S608
            params=params,
        )
        # The relation API writes the files: no path is ever spliced into SQL.
        networks.write_parquet(str(directory / "networks.parquet"))
        scenarios.write_parquet(str(directory / "scenarios.parquet"))
        return self.count(selection)

    def import_parquet(self, directory: Path, *, tags: Sequence[str] = ()) -> int:
        """Read a Parquet export directory (scenarios validated row by row); scenarios added."""
        networks = self._con.execute(
            f"SELECT {NETWORK_NAMES} FROM read_parquet(?)",  # noqa: S608 - constant identifiers
            [str(directory / "networks.parquet")],
        ).fetchall()
        cursor = self._con.cursor()
        records: list[ScenarioRecord] = []
        source = str(directory / "scenarios.parquet")
        columns = {
            row[0]
            for row in self._con.execute(
                "DESCRIBE SELECT * FROM read_parquet(?)", [source]
            ).fetchall()
        }
        # An export made before scenarios had prices has no such column.
        names = SCENARIO_NAMES if "prices" in columns else SCENARIO_NAMES_UNPRICED
        try:
            cursor.execute(
                f"SELECT {names} FROM read_parquet(?)",  # noqa: S608 - constant
                [source],
            )
            while rows := cursor.fetchmany(1_000):
                for row in rows:
                    scenario = Scenario.from_row(row)
                    if tags:
                        scenario = scenario.model_copy(
                            update={"tags": tuple(sorted({*scenario.tags, *tags}))}
                        )
                    records.append(scenario.record())
        finally:
            cursor.close()
        return self._import([checked_network_row(row) for row in networks], records)

    def import_store(self, source: Path, *, tags: Sequence[str] = ()) -> int:
        """Merge another store file (a capture file, say) into this one; scenarios added.

        The source is opened read-only, so it must not be open for writing elsewhere (merge a
        capture file once its writer has closed it).
        """
        with ScenarioStore(source, read_only=True) as other:
            networks = other.connection.execute(
                f"SELECT {NETWORK_NAMES} FROM networks"  # noqa: S608 - constant identifiers
            ).fetchall()
            records = [
                dataclasses.replace(record_from_row(row), tags=tuple(sorted({*row[11], *tags})))
                for rows in other.records(batch=2_000)
                for row in rows
            ]
        return self._import([checked_network_row(row) for row in networks], records)

    def _import(self, networks: list[tuple[Any, ...]], records: list[ScenarioRecord]) -> int:
        """Insert networks and scenarios in one transaction; scenarios added."""
        available = {row[0] for row in networks}
        stored = set(self.network_versions())
        missing = sorted({r.network_version for r in records} - available - stored)
        if missing:
            raise StoreError(f"import references networks it does not carry: {missing}")
        with self._transaction():
            self._insert_networks(networks)
            before = self._count("scenarios")
            rows = [record.row() for record in records]
            for start in range(0, len(rows), INSERT_BATCH):
                batch = rows[start : start + INSERT_BATCH]
                self._con.execute(INSERT_SCENARIOS, [list(c) for c in zip(*batch, strict=True)])
            added = self._count("scenarios") - before
        self._known_networks |= available
        return added
