"""The app in-process: readiness before warm-up, overload, the snapshot store, settings, CLI."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

import solver
from models import NO_PRICES, InventoryTable, PromiseRequest, PromiseResult, Snapshot, StockPrices
from promise.access.principal import Scope
from promise.app import create_app
from promise.cli import main
from promise.service import warm_request
from promise.settings import Settings, SettingsError
from promise.stock._snapshot_queries import RETAINED_SNAPSHOTS
from promise.stock.snapshots import LiveSnapshot, SnapshotStore
from promise.stock.sqlite import SqliteStockBackend
from solver.checker import check
from tests.auth import authorized_client, bearer, grant
from tests.promise.promise_helpers import (
    TINY_SKU,
    metric_value,
    result_of,
    shipping_nodes,
    tiny_body,
    tiny_snapshot,
)

# Bounded waits for conditions that a background thread brings about.
DEADLINE_S = 30.0
POLL_S = 0.02


def _settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for an in-process app on ``data_dir``."""
    return Settings.from_env({}, data_dir=data_dir, **overrides)


def _poll_ready(client: TestClient[Litestar]) -> httpx.Response:
    """Poll /readyz until it answers 200 or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_S
    response = client.get("/readyz")
    while response.status_code != 200 and time.monotonic() < deadline:
        time.sleep(POLL_S)
        response = client.get("/readyz")
    return response


def test_not_ready_until_the_snapshot_is_loaded_and_warm(data_dir: Path) -> None:
    """Warming in the background: /readyz and /v1/promise answer 503 + Retry-After; 200 once warm.

    Served workers warm before they listen (tests/promise/test_startup.py); an in-process app
    may still warm in the background, and must then refuse until it is ready.
    """
    release = threading.Event()

    def slow_snapshot() -> Snapshot:
        release.wait(DEADLINE_S)
        return tiny_snapshot("tiny-v1")

    app = create_app(_settings(data_dir), initial_snapshot=slow_snapshot, warm_in_background=True)
    with authorized_client(app) as client:
        before = client.get("/readyz")
        assert before.status_code == 503
        assert before.headers["retry-after"] == "1"
        assert before.headers["content-type"].startswith("application/problem+json")
        assert client.post("/v1/promise", json=tiny_body()).status_code == 503
        assert client.get("/healthz").status_code == 200
        release.set()
        after = _poll_ready(client)
        assert after.status_code == 200
        assert after.json()["snapshot_version"] == "tiny-v1"
        answer = client.post("/v1/promise", json=tiny_body())
        assert answer.status_code == 200
        assert shipping_nodes(answer.json()) == {"CHI"}


def test_overload_answers_503_instead_of_queueing(data_dir: Path) -> None:
    """With one solve slot and no queue, a second concurrent promise gets 503 + Retry-After."""
    entered = threading.Event()
    release = threading.Event()

    def held_solve(
        request: PromiseRequest,
        network: solver.PreparedNetwork | Snapshot,
        *,
        params: solver.SolveParams | None = None,
        prices: StockPrices = NO_PRICES,
    ) -> PromiseResult:
        if request.cart.cart_id == "held":
            entered.set()
            release.wait(DEADLINE_S)
        return solver.solve(request, network, params=params, prices=prices)

    settings = _settings(data_dir, max_concurrent_solves=1, max_queued_solves=0, retry_after_s=3)
    app = create_app(settings, initial_snapshot=lambda: tiny_snapshot("tiny-v1"), solve=held_solve)

    async def scenario() -> tuple[httpx.Response, httpx.Response, str]:
        # One event loop for the app and both requests, so they really run concurrently.
        # httpx types ASGI apps with plain dicts, Litestar with TypedDicts: same protocol.
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with (
            app.lifespan(),
            httpx.AsyncClient(
                transport=transport, base_url="http://app", headers=bearer(grant(app))
            ) as client,
        ):
            deadline = time.monotonic() + DEADLINE_S
            while (await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline
                await anyio.sleep(POLL_S)
            held: list[httpx.Response] = []

            async def first() -> None:
                held.append(await client.post("/v1/promise", json=tiny_body("held")))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(first)
                assert await anyio.to_thread.run_sync(entered.wait, DEADLINE_S)
                refused = await client.post("/v1/promise", json=tiny_body("second"))
                release.set()
            metrics = (await client.get("/metrics")).text
            return held[0], refused, metrics

    held, refused, metrics = anyio.run(scenario)
    assert held.status_code == 200
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "3"
    assert refused.json()["type"].endswith("overloaded")
    assert metric_value(metrics, "promise_overload_rejections_total") == 1


def test_snapshot_the_engine_fails_on_is_not_made_live(data_dir: Path) -> None:
    """A valid snapshot whose warm-up solve crashes is refused with a 422; the old one stays."""

    def fragile_solve(
        request: PromiseRequest,
        network: solver.PreparedNetwork | Snapshot,
        *,
        params: solver.SolveParams | None = None,
        prices: StockPrices = NO_PRICES,
    ) -> PromiseResult:
        prepared = solver.prepare(network) if isinstance(network, Snapshot) else network
        if prepared.snapshot.version == "tiny-v2":
            raise RuntimeError("engine bug")
        return solver.solve(request, prepared, params=params, prices=prices)

    app = create_app(
        _settings(data_dir), initial_snapshot=lambda: tiny_snapshot("tiny-v1"), solve=fragile_solve
    )
    with authorized_client(app) as client:
        assert _poll_ready(client).status_code == 200
        refused = client.put(
            "/v1/snapshot",
            content=tiny_snapshot("tiny-v2").model_dump_json(),
            headers={"content-type": "application/json"},
        )
        assert refused.status_code == 422
        assert refused.json()["type"].endswith("snapshot-rejected")
        assert client.get("/v1/snapshot").json()["version"] == "tiny-v1"
        assert client.post("/v1/promise", json=tiny_body()).json()["snapshot_version"] == "tiny-v1"


def test_swap_reaches_another_worker_once(tmp_path: Path) -> None:
    """Two stores on one authority (two workers): a swap in one is loaded once by the other."""
    warmed: list[str] = []
    reloads: list[LiveSnapshot] = []
    backends = [SqliteStockBackend(tmp_path / "stock.sqlite3") for _ in range(2)]

    def store(backend: SqliteStockBackend) -> SnapshotStore:
        return SnapshotStore(
            backend,
            initial=lambda: tiny_snapshot("tiny-v1"),
            warm=lambda prepared: warmed.append(prepared.snapshot.version),
            on_reload=reloads.append,
        )

    async def scenario() -> tuple[list[str], list[str], list[int]]:
        writer, reader = store(backends[0]), store(backends[1])
        await writer.start()
        await reader.start()
        swapped = await writer.replace(tiny_snapshot("tiny-v2"))
        seen_by_reader = [(await reader.sync()).snapshot.version for _ in range(3)]
        seen_by_writer = [(await writer.sync()).snapshot.version for _ in range(3)]
        generations = [swapped.generation, reader.current().generation]
        return seen_by_reader, seen_by_writer, generations

    try:
        seen_by_reader, seen_by_writer, generations = anyio.run(scenario)
    finally:
        for backend in backends:
            backend.close()
    assert seen_by_reader == ["tiny-v2"] * 3
    assert seen_by_writer == ["tiny-v2"] * 3
    assert generations == [2, 2]
    assert len(reloads) == 1
    # The writer seeds v1, the reader loads it, the writer warms v2 before it goes live, and
    # the reader warms it once when it catches up.
    assert warmed == ["tiny-v1", "tiny-v1", "tiny-v2", "tiny-v2"]


def test_a_store_started_later_serves_the_swap_not_its_start_up_snapshot(tmp_path: Path) -> None:
    """Starting another server (or restarting one) never reverts a swap it did not see."""
    path = tmp_path / "stock.sqlite3"

    async def scenario() -> tuple[str, int, str]:
        first = SnapshotStore(
            SqliteStockBackend(path), initial=lambda: tiny_snapshot("tiny-v1"), warm=lambda _s: None
        )
        await first.start()
        await first.replace(tiny_snapshot("tiny-v2"))
        later = SnapshotStore(
            SqliteStockBackend(path), initial=lambda: tiny_snapshot("tiny-v1"), warm=lambda _s: None
        )
        live = await later.start()
        return live.snapshot.version, live.generation, (await first.sync()).snapshot.version

    assert anyio.run(scenario) == ("tiny-v2", 2, "tiny-v2")


def test_authority_keeps_recent_snapshot_bodies_and_every_generation(tmp_path: Path) -> None:
    """Old bodies are dropped beyond the retained generations; history keeps every swap."""
    backend = SqliteStockBackend(tmp_path / "stock.sqlite3")
    swaps = RETAINED_SNAPSHOTS + 4

    async def scenario() -> LiveSnapshot:
        base = tiny_snapshot("tiny-v1")
        store = SnapshotStore(backend, initial=lambda: base, warm=lambda _s: None)
        await store.start()
        for n in range(1, swaps + 1):
            await store.replace(base.model_copy(update={"version": f"tiny-v1.{n}"}))
        return await store.sync()

    try:
        live = anyio.run(scenario)
        conn = backend._conn()  # counting rows the API does not expose
        bodies = conn.execute("SELECT count(*) FROM snapshot_bodies").fetchone()[0]
        history = conn.execute("SELECT count(*) FROM snapshot_history").fetchone()[0]
    finally:
        backend.close()
    assert live.snapshot.version == f"tiny-v1.{swaps}"
    assert live.generation == swaps + 1
    assert bodies == RETAINED_SNAPSHOTS
    assert history == swaps + 1


def test_inline_snapshot_works_in_process(data_dir: Path) -> None:
    """The validate floor and an inline-snapshot promise through the in-process app."""
    app = create_app(
        _settings(data_dir, inline_snapshots=True),
        initial_snapshot=lambda: tiny_snapshot("tiny-v1"),
    )
    body = {**tiny_body(), "snapshot": tiny_snapshot("tiny-v2").model_dump(mode="json")}
    with authorized_client(app) as client:
        assert _poll_ready(client).status_code == 200
        floor = client.post("/v1/promise/validate", json=body)
        assert floor.json() == {
            "valid": True,
            "cart_id": "tiny-cart",
            "lines": 1,
            "inline_snapshot": True,
        }
        answer = client.post("/v1/promise", json=body).json()
    assert answer["snapshot_version"] == "tiny-v2"
    assert shipping_nodes(answer) == {"DAL"}
    assert result_of(answer).cart_id == "tiny-cart"


def _refused_field(response: httpx.Response) -> list[str | int]:
    """The one field a 422 problem names."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert len(errors) == 1
    loc: list[str | int] = errors[0]["loc"]
    return loc


def test_inline_snapshots_are_for_admins_by_default(data_dir: Path) -> None:
    """Without PROMISE_INLINE_SNAPSHOTS only an admin's body may carry a snapshot."""
    app = create_app(_settings(data_dir), initial_snapshot=lambda: tiny_snapshot("tiny-v1"))
    body = {**tiny_body(), "snapshot": tiny_snapshot("tiny-v2").model_dump(mode="json")}
    with authorized_client(app, Scope.PROMISE) as client:
        assert _poll_ready(client).status_code == 200
        for path in ("/v1/promise", "/v1/promise/validate"):
            assert _refused_field(client.post(path, json=body)) == ["snapshot"]
        # The same body without its snapshot is answered on the live network.
        assert client.post("/v1/promise", json=tiny_body()).status_code == 200
        # An admin's what-if call is solved on the snapshot it carries.
        admin = bearer(grant(app, Scope.PROMISE, Scope.ADMIN))
        answer = client.post("/v1/promise", json=body, headers=admin)
        assert answer.status_code == 200, answer.text
        assert answer.json()["snapshot_version"] == "tiny-v2"


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"max_inline_snapshot_nodes": 1}, ["snapshot", "nodes"]),
        ({"max_inline_snapshot_rows": 0}, ["snapshot"]),
    ],
)
def test_inline_snapshots_over_the_limits_are_refused_at_once(
    data_dir: Path, limits: dict[str, int], field: list[str]
) -> None:
    """An inline snapshot over the node or row limit is a 422 naming the field, within 1 s."""
    settings = _settings(data_dir, inline_snapshots=True, **limits)
    app = create_app(settings, initial_snapshot=lambda: tiny_snapshot("tiny-v1"))
    inline = tiny_snapshot("tiny-v2")
    assert len(inline.nodes) > 1
    assert inline.row_count > 0
    body = {**tiny_body(), "snapshot": inline.model_dump(mode="json")}
    with authorized_client(app) as client:
        assert _poll_ready(client).status_code == 200
        started = time.perf_counter()
        response = client.post("/v1/promise", json=body)
        assert time.perf_counter() - started < 1.0
    assert _refused_field(response) == field


def test_columnar_snapshot_is_warmed_and_counted(data_dir: Path) -> None:
    """A snapshot holding its inventory as columns is warmed, served and counted like rows."""
    rows = tiny_snapshot("tiny-v2")
    table = InventoryTable(
        node_id=tuple(r.node_id for r in rows.inventory),
        sku=tuple(r.sku for r in rows.inventory),
        on_hand=tuple(r.on_hand for r in rows.inventory),
        reserved=tuple(r.reserved for r in rows.inventory),
        safety_stock=tuple(r.safety_stock for r in rows.inventory),
        unit_cost=tuple(r.unit_cost for r in rows.inventory),
    )
    columnar = rows.model_copy(update={"inventory": (), "inventory_table": table})
    request = warm_request(columnar)
    assert request is not None
    assert [line.sku for line in request.cart.lines] == [TINY_SKU]
    app = create_app(_settings(data_dir), initial_snapshot=lambda: columnar)
    with authorized_client(app) as client:
        assert _poll_ready(client).status_code == 200
        assert client.get("/v1/snapshot").json()["inventory_rows"] == 1
        assert shipping_nodes(client.post("/v1/promise", json=tiny_body()).json()) == {"DAL"}


def test_settings_from_environment() -> None:
    """PROMISE_* variables are parsed and validated; to_env round-trips."""
    settings = Settings.from_env(
        {"PROMISE_PORT": "9001", "PROMISE_LOG_LEVEL": "debug", "PROMISE_WORKERS": "3"}
    )
    assert (settings.port, settings.log_level, settings.workers) == (9001, "DEBUG", 3)
    assert Settings.from_env(settings.to_env()) == settings
    with pytest.raises(SettingsError, match="PROMISE_PORT"):
        Settings.from_env({"PROMISE_PORT": "not-a-port"})
    with pytest.raises(SettingsError, match="default_time_budget_ms"):
        Settings.from_env(
            {"PROMISE_DEFAULT_TIME_BUDGET_MS": "900", "PROMISE_MAX_TIME_BUDGET_MS": "100"}
        )


def test_cli_exports_the_demo_snapshot(tmp_path: Path, demo_snapshot: Snapshot) -> None:
    """`promise snapshot-export PATH` writes the demo network as loadable JSON."""
    path = tmp_path / "demo.json"
    assert main(["snapshot-export", str(path)]) == 0
    loaded = Snapshot.model_validate_json(path.read_bytes())
    assert loaded.version == demo_snapshot.version
    assert loaded.row_count == demo_snapshot.row_count


def test_cli_demo_prints_a_checked_answer(
    capsys: pytest.CaptureFixture[str], demo_snapshot: Snapshot
) -> None:
    """`promise demo` prints a request and an answer that passes the checker."""
    assert main(["demo"]) == 0
    out = json.loads(capsys.readouterr().out)
    request = PromiseRequest.model_validate(out["request"])
    result = PromiseResult.model_validate(out["answer"])
    assert len(request.cart.lines) >= 3
    assert result.options
    assert check(result, request, demo_snapshot).ok


def test_a_refused_model_is_logged_with_the_request_id_and_counted(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A model made invalid on purpose is logged at ERROR with the request id and counted.

    The answer itself stands: the greedy fallback, flagged unproven.
    """
    import importlib  # noqa: PLC0415 - the solver modules patched below

    mip = importlib.import_module("solver.mip")
    level = importlib.import_module("solver.solve")
    real = mip._objective

    def broken(coef: object, v: object, m: Any) -> None:
        """Write the objective, then a variable whose domain is empty."""
        real(coef, v, m)
        m.proto.variables.add().domain.extend((5, 1))

    monkeypatch.setattr(mip, "_objective", broken)
    # No proof without a model, so every level reaches CP-SAT.
    monkeypatch.setattr(level, "_proven", lambda *args: False)
    app = create_app(_settings(data_dir), initial_snapshot=lambda: tiny_snapshot("tiny-v1"))
    with authorized_client(app) as client, caplog.at_level(logging.ERROR):
        assert _poll_ready(client).status_code == 200
        response = client.post(
            "/v1/promise", json=tiny_body("broken"), headers={"X-Request-ID": "req-broken-1"}
        )
        metrics = client.get("/metrics").text
    assert response.status_code == 200
    answer = response.json()
    assert answer["solver"]["model_errors"]
    assert all(option["proven"] is False for option in answer["options"])
    errors = [r for r in caplog.records if r.getMessage() == "solver model error"]
    assert errors
    assert all(getattr(r, "request_id", None) == "req-broken-1" for r in errors)
    assert metric_value(metrics, "promise_solver_model_errors_total") == len(
        answer["solver"]["model_errors"]
    )


def test_weights_beyond_exact_integers_are_a_422_naming_the_weight(data_dir: Path) -> None:
    """Revenue weight 1,000 on a 10^11-cent line of 10,000 units: a 422 on weights.revenue."""
    body = tiny_body("huge", quantity=10_000)
    body["cart"]["lines"][0]["unit_price"] = 10**11
    body["weights"] = {"revenue": 1000}
    app = create_app(_settings(data_dir), initial_snapshot=lambda: tiny_snapshot("tiny-v1"))
    with authorized_client(app) as client:
        assert _poll_ready(client).status_code == 200
        response = client.post("/v1/promise", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = [error["field"] for error in response.json()["errors"]]
    assert fields == ["weights.revenue"]
