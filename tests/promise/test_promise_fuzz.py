"""Fuzzing a real server on the demo network.

Schemathesis fuzzes the published OpenAPI schema: every operation gets a bounded number of
generated requests, valid and invalid; no answer may be a 5xx and every answer must match the
schema the app publishes for its status code. Schema-valid bodies rarely name real SKUs and
postal codes, so a second, domain-aware fuzz sends valid carts with varied options and checks
every answer with the independent checker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

import scenarios
from bench.fuzz import fuzz_promise
from models import PromiseRequest, ServiceLevel, Snapshot
from promise.launcher import ServerProcess
from solver.checker import check
from tests.promise.promise_helpers import result_of

# Bounded so that the whole fuzz run stays well under a minute on two cores.
EXAMPLES_PER_OPERATION = 25
# Solves under fuzzing stay short: larger budgets are refused with a 422 before any solve.
FUZZ_MAX_TIME_BUDGET_MS = 100
DOMAIN_EXAMPLES = 30
# Schema-driven promise requests on real SKUs and destinations: about 15 s on two cores.
REALISTIC_EXAMPLES = 200


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: fuzzed snapshot swaps must not disturb the other tests."""
    env = {"PROMISE_MAX_TIME_BUDGET_MS": str(FUZZ_MAX_TIME_BUDGET_MS)}
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("fuzz-server"), workers=1, env=env)
    with server.start():
        yield server


@pytest.fixture(scope="session")
def published_schema(fuzz_server: ServerProcess) -> schemathesis.BaseSchema:
    """The OpenAPI schema the server publishes, loaded over HTTP."""
    return schemathesis.openapi.from_url(f"{fuzz_server.base_url}/schema/openapi.json")


# Generating whole snapshots is slow (and mostly rejected by the schema's own patterns).
EXAMPLES_PUT_SNAPSHOT = 8
# These must be exercised in both modes; others may be impossible to generate for (a GET without
# parameters has no invalid request; hypothesis may give up on whole valid snapshots).
MUST_EXERCISE = {
    "POST /v1/promise",
    "POST /v1/promise/validate",
    "GET /v1/availability",
    "POST /v1/inventory/events",
    "POST /v1/reservations",
}


# schemathesis' pytest plugin (``from_fixture``) does not run under pytest 9, so each
# operation's hypothesis strategy is driven directly.
@pytest.mark.parametrize(
    "mode",
    [
        GenerationMode.POSITIVE,  # requests the schema allows: must answer 2xx or a documented 4xx
        GenerationMode.NEGATIVE,  # requests the schema forbids: must be refused, never a 5xx
    ],
)
def test_no_server_error_and_schema_conformance(
    fuzz_server: ServerProcess, published_schema: schemathesis.BaseSchema, mode: GenerationMode
) -> None:
    """Generated requests never get a 5xx nor an answer that breaks the published schema."""
    results = list(published_schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the published schema has invalid operations"
    assert len(operations) >= 8
    failures: list[str] = []
    not_generated: set[str] = set()
    for operation in operations:
        examples = (
            EXAMPLES_PUT_SNAPSHOT
            if operation.label == "PUT /v1/snapshot"
            else EXAMPLES_PER_OPERATION
        )

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
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
        except AssertionError as exc:  # schemathesis reports check failures as AssertionError
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert not (MUST_EXERCISE & not_generated)
    # The catch-all 500 handler logs at ERROR: fuzzing must never have reached it.
    assert '"level":"ERROR"' not in fuzz_server.log_path.read_text()


def _promise_bodies(snapshot: Snapshot) -> st.SearchStrategy[dict[str, Any]]:
    """Valid promise bodies on ``snapshot`` with every option varied."""
    stocked = sorted({row.sku for row in snapshot.positions() if row.on_hand > row.reserved})
    codes = st.sampled_from(scenarios.postal_codes().codes[:500])
    channels = st.sampled_from([policy.channel for policy in snapshot.policies])
    line = st.fixed_dictionaries(
        {"quantity": st.integers(1, 6), "unit_price": st.integers(0, 30_000)}
    )
    destination = st.one_of(
        codes.map(lambda code: {"postal_code": code}),
        # Inside the contiguous US, where the postal-code dataset resolves every point.
        st.fixed_dictionaries({"lat": st.floats(30.0, 47.0), "lon": st.floats(-120.0, -75.0)}),
    )
    optional = st.fixed_dictionaries(
        {},
        optional={
            "service_levels": st.lists(
                st.sampled_from([level.value for level in ServiceLevel]),
                min_size=1,
                max_size=4,
                unique=True,
            ),
            "max_shipments": st.integers(1, 4),
            "allow_partial": st.booleans(),
            "time_budget_ms": st.integers(1, FUZZ_MAX_TIME_BUDGET_MS),
            "min_margin_pct": st.floats(0, 40),
            "weights": st.fixed_dictionaries(
                {}, optional={"shipping": st.floats(0, 5), "split_penalty": st.integers(0, 5000)}
            ),
            "requested_at": st.datetimes(
                min_value=dt.datetime(2026, 11, 20), max_value=dt.datetime(2026, 12, 31)
            ).map(lambda moment: moment.replace(tzinfo=dt.UTC).isoformat()),
        },
    )

    @st.composite
    def bodies(draw: st.DrawFn) -> dict[str, Any]:
        skus = draw(st.lists(st.sampled_from(stocked), min_size=1, max_size=8, unique=True))
        lines = [{"line_id": f"l{i}", "sku": sku, **draw(line)} for i, sku in enumerate(skus)]
        cart = {"cart_id": "fuzz", "channel": draw(channels), "lines": lines}
        return {"cart": cart, "destination": draw(destination), **draw(optional)}

    return bodies()


def test_valid_carts_with_varied_options_get_checked_answers(
    demo_server: ServerProcess, demo_snapshot: Snapshot
) -> None:
    """Valid carts with any mix of options answer 200 (or a 422 problem), never a 5xx."""
    with httpx.Client(
        base_url=demo_server.base_url, headers=demo_server.auth_headers, timeout=10.0
    ) as client:

        @given(body=_promise_bodies(demo_snapshot))
        @settings(
            max_examples=DOMAIN_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(body: dict[str, Any]) -> None:
            response = client.post("/v1/promise", json=body)
            assert response.status_code in (200, 422), response.text
            if response.status_code == 422:
                assert response.headers["content-type"].startswith("application/problem+json")
                return
            answer = response.json()
            assert answer["snapshot_version"] == demo_snapshot.version
            request = PromiseRequest.model_validate(body)
            report = check(result_of(answer), request, demo_snapshot)
            assert report.ok, report.violations

        exercise()


def _loose_schemas(value: object, path: str = "") -> list[str]:
    """Paths in an OpenAPI document where a union or a list admits anything (``{}``)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("oneOf", "anyOf") and isinstance(item, list) and {} in item:
                found.append(f"{path}/{key}")
            if key == "items" and item == {}:
                found.append(f"{path}/items")
            found.extend(_loose_schemas(item, f"{path}/{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_loose_schemas(item, f"{path}/{index}"))
    return found


def test_published_body_schemas_are_pydantics(fuzz_server: ServerProcess) -> None:
    """Body schemas are pydantic's: list items are typed, unknown fields and bounds are said."""
    document = httpx.get(f"{fuzz_server.base_url}/schema/openapi.json", timeout=10.0).json()
    assert _loose_schemas(document) == []
    schemas = document["components"]["schemas"]
    assert schemas["Cart"]["properties"]["lines"]["items"] == {
        "$ref": "#/components/schemas/CartLine"
    }
    assert schemas["PromiseBody"]["additionalProperties"] is False
    budget = schemas["PromiseBody"]["properties"]["time_budget_ms"]["anyOf"][0]
    assert (budget["minimum"], budget["maximum"]) == (1, 60_000)
    levels = schemas["PromiseBody"]["properties"]["service_levels"]
    assert (levels["minItems"], levels["uniqueItems"]) == (1, True)


def test_schema_driven_promises_mostly_succeed(
    fuzz_server: ServerProcess, demo_snapshot: Snapshot
) -> None:
    """Bodies generated from the published schema, on real SKUs and places, mostly answer 200."""
    report = fuzz_promise(fuzz_server.base_url, demo_snapshot, examples=REALISTIC_EXAMPLES)
    assert report.cases >= REALISTIC_EXAMPLES // 2
    assert report.server_errors == 0, report.failures
    assert report.schema_violations == 0, report.failures
    # Only what the service's own settings refuse remains (time budgets above its maximum).
    assert report.ok_share > 0.6, report.statuses
    assert set(report.statuses) <= {200, 422}
