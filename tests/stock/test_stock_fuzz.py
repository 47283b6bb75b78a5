"""Fuzzing the stock endpoints of a real server: no 5xx, every answer as the schema says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from promise.launcher import ServerProcess
from tests.stock.stock_cases import network, stock_server

# Bounded so the run stays within a few seconds on two cores.
EXAMPLES_PER_OPERATION = 25
MUST_EXERCISE = {"POST /v1/inventory/events", "POST /v1/reservations"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The service on the test network with an embedded stock store."""
    root: Path = tmp_path_factory.mktemp("stock-fuzz")
    snapshot_file = root / "snapshot.json"
    snapshot_file.write_text(network().model_dump_json())
    env = {"PROMISE_STOCK_PATH": str(root / "stock.sqlite3"), "PROMISE_LOG_LEVEL": "ERROR"}
    with stock_server(root, snapshot_file, env).start() as started:
        yield started


@pytest.mark.parametrize(
    "mode",
    [
        GenerationMode.POSITIVE,  # what the schema allows: 2xx or a documented 4xx
        GenerationMode.NEGATIVE,  # what it forbids: refused, never a 5xx
    ],
)
def test_no_server_error_and_schema_conformance(
    server: ServerProcess, mode: GenerationMode
) -> None:
    """Generated requests never get a 5xx nor an answer that breaks the published schema."""
    schema = schemathesis.openapi.from_url(f"{server.base_url}/schema/openapi.json")
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results)
    failures: list[str] = []
    not_generated: set[str] = set()
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        try:
            exercise()
        except Unsatisfiable:
            not_generated.add(operation.label)
        except AssertionError as exc:  # schemathesis reports check failures this way
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert not (MUST_EXERCISE & not_generated)
    assert "unhandled error" not in server.log()
