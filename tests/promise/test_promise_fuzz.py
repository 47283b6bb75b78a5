"""Fuzzing a real server on the demo network, authenticated as a client would be.

Schemathesis fuzzes every operation of the published OpenAPI document in both modes with a
fuzzing key (``bench.fuzz``, a smaller pass than the benchmark's): no answer may be a 5xx,
every answer must match what the document says of its status (code, media type, body), a
request the document forbids must be refused, and routes must refuse callers without the
credential. Positive cases are shaped to name real SKUs, places and ids, so every operation
must also answer some of them with a 2xx: a fuzz that only collects 4xx tests nothing but
validation. A second, domain-aware fuzz sends valid carts with varied options and checks every
answer with the independent checker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scenarios
from bench.fuzz import fuzz_api, make_fuzz_key, seed_resources
from bench.fuzz_cases import PROMISE, Network, ServiceLimits
from bench.fuzz_report import FuzzReport
from models import PromiseRequest, ServiceLevel, Snapshot
from solver.checker import Reference, check
from tests.launcher import ServerProcess
from tests.promise.promise_helpers import result_of

# Solves under fuzzing stay short: larger budgets are refused with a 422 before any solve.
FUZZ_MAX_TIME_BUDGET_MS = 100
# Cases over every operation and both modes: about 45 s on two cores with the server's start
# (the benchmark sends ten thousand); enough for each operation's shaped cases to reach a 2xx,
# which the tests below assert.
FUZZ_EXAMPLES = 400
DOMAIN_EXAMPLES = 30


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: fuzzed snapshot swaps, keys and holds must not disturb other tests."""
    env = {"PROMISE_MAX_TIME_BUDGET_MS": str(FUZZ_MAX_TIME_BUDGET_MS)}
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("fuzz-server"), workers=1, env=env)
    with server.start():
        yield server


@pytest.fixture(scope="module")
def fuzz_report(fuzz_server: ServerProcess, demo_snapshot: Snapshot) -> FuzzReport:
    """One authenticated schemathesis pass over every operation, both modes."""
    limits = ServiceLimits(max_time_budget_ms=FUZZ_MAX_TIME_BUDGET_MS)
    key = make_fuzz_key(fuzz_server.base_url, fuzz_server.auth_headers)
    network = Network.of(demo_snapshot, limits)
    seed_resources(fuzz_server.base_url, key, network)
    return fuzz_api(fuzz_server.base_url, key, network, examples=FUZZ_EXAMPLES)


def test_the_fuzz_covers_every_published_operation(
    fuzz_server: ServerProcess, fuzz_report: FuzzReport
) -> None:
    """Every operation of the document got cases, and all of them the number asked for."""
    document = httpx.get(
        f"{fuzz_server.base_url}/schema/openapi.json",
        headers=fuzz_server.auth_headers,
        timeout=10.0,
    ).json()
    published = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    assert set(fuzz_report.operations) == published
    assert all(entry.total > 0 for entry in fuzz_report.operations.values())
    # Operations without parameters have few distinct requests; promise cases make up the rest.
    assert fuzz_report.cases >= FUZZ_EXAMPLES


def test_no_server_error_and_no_schema_violation(
    fuzz_server: ServerProcess, fuzz_report: FuzzReport
) -> None:
    """No 5xx, no answer outside the documented schema, status, media type or headers."""
    failures = {
        label: entry.failures for label, entry in fuzz_report.operations.items() if entry.failures
    }
    assert fuzz_report.server_errors == 0, failures
    assert fuzz_report.schema_violations == 0, failures
    # status_code_conformance, content_type_conformance, negative_data_rejection, ignored_auth...
    assert not fuzz_report.check_failures, failures
    assert fuzz_report.clean, failures
    # The catch-all 500 handler and refused solver models log at ERROR: never reached.
    assert '"level":"ERROR"' not in fuzz_server.log_path.read_text()


def test_every_operation_answers_some_cases_with_a_2xx(fuzz_report: FuzzReport) -> None:
    """Not only refusals: each operation's shaped positive cases reach its success answer."""
    never = [label for label, entry in fuzz_report.operations.items() if entry.ok_share == 0]
    assert never == []
    # Each first 2xx went through ignored_auth: on a secured route, replayed without the
    # credential and with a garbled one, it must be refused.
    assert set(fuzz_report.auth_checked) == set(fuzz_report.operations)


def test_promise_cases_mostly_answer_200(fuzz_report: FuzzReport) -> None:
    """Generated promise bodies on real SKUs and places mostly solve, counting invalid ones."""
    promise = fuzz_report.operations[PROMISE]
    assert promise.share_200 > 0.5, promise.statuses
    assert promise.positive_ok_share > 0.75, promise.problems
    # Both modes ran: refusals are documented problems, never a 5xx.
    assert {"positive", "negative"} <= set(promise.cases)
    assert all(status < 500 for status in promise.statuses)


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
    reference = Reference.of(demo_snapshot)
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
            report = check(result_of(answer), request, reference)
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
    document = httpx.get(
        f"{fuzz_server.base_url}/schema/openapi.json",
        headers=fuzz_server.auth_headers,
        timeout=10.0,
    ).json()
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
