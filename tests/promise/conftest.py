"""Real server processes for the end-to-end tests, each started once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

import scenarios
from models import Snapshot
from tests.launcher import ServerProcess
from tests.promise.promise_helpers import (
    E2E_MAX_BODY_BYTES,
    E2E_MAX_CART_LINES,
    E2E_MAX_TIME_BUDGET_MS,
    tiny_app_client,
    tiny_snapshot,
)


@pytest.fixture(scope="session")
def demo_snapshot() -> Snapshot:
    """The embedded demo network (the one the servers serve by default)."""
    return scenarios.demo_snapshot()


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`promise serve --workers 2` on the demo network, with small limits for the error tests."""
    env = {
        "PROMISE_MAX_BODY_BYTES": str(E2E_MAX_BODY_BYTES),
        "PROMISE_MAX_CART_LINES": str(E2E_MAX_CART_LINES),
        "PROMISE_MAX_TIME_BUDGET_MS": str(E2E_MAX_TIME_BUDGET_MS),
        # The inline-snapshot end-to-end test sends one (they are off by default).
        "PROMISE_INLINE_SNAPSHOTS": "true",
        # Prometheus and the docs page on this host read without a key.
        "PROMISE_OPEN_NETWORKS": "127.0.0.1/32",
    }
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("demo-server"), workers=2, env=env)
    with server.start():
        yield server


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`promise serve --workers 2 --snapshot tiny-v1.json`: the server the swap tests swap."""
    root = tmp_path_factory.mktemp("tiny-server")
    snapshot_path = root / "tiny-v1.json"
    snapshot_path.write_text(tiny_snapshot("tiny-v1").model_dump_json())
    server = ServerProcess(data_dir=root / "data", workers=2, snapshot=snapshot_path)
    with server.start():
        yield server


@pytest.fixture
def demo_client(demo_server: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client of the demo server."""
    with httpx.Client(
        base_url=demo_server.base_url, headers=demo_server.auth_headers, timeout=10.0
    ) as client:
        yield client


@pytest.fixture
def tiny_client(tiny_server: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client of the tiny server."""
    with httpx.Client(
        base_url=tiny_server.base_url, headers=tiny_server.auth_headers, timeout=10.0
    ) as client:
        yield client


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data dir for an in-process app."""
    return tmp_path / "data"


@pytest.fixture
def app_client(data_dir: Path) -> Iterator[TestClient[Litestar]]:
    """A started in-process client of an app on the tiny-v1 network, default settings."""
    with tiny_app_client(data_dir) as client:
        yield client
