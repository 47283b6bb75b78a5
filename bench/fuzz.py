"""Schemathesis over ``POST /v1/promise`` with realistic SKUs and destinations.

Bodies are generated from the published OpenAPI document (positive mode: every field within
its documented type and bounds); only what no schema can know is drawn from the network:
each line's SKU is a stocked SKU of the served snapshot, the channel one of its channels, line
ids are numbered (they must be unique), the destination is a real postal code or a point in
the contiguous US, floats keep six decimal places and the inline snapshot is left out (those
are off by default). Every answer is checked against the
schema for its status code; the report counts answers per status.

Usage::

    python -m bench.fuzz --json out/fuzz.json [--examples 10000] [--seed 0]

The server is started here (``promise serve`` on the embedded demo network).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import pathlib
import sys
import tempfile
import time
from collections import Counter
from typing import Any, cast

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

import scenarios
from models import EARLIEST_DATE, LATEST_DATE, Snapshot
from promise.launcher import ServerProcess

__all__ = ["FuzzReport", "fuzz_promise", "main", "realistic_promise_cases"]

OPERATION = "POST /v1/promise"
# A failure message is long (it quotes the body); a few are enough to debug from.
KEPT_FAILURES = 5


@dataclasses.dataclass
class FuzzReport:
    """Answers per status and the checks that failed."""

    cases: int = 0
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    server_errors: int = 0
    schema_violations: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok_share(self) -> float:
        """Share of cases answered 200."""
        return self.statuses[200] / self.cases if self.cases else 0.0

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "operation": OPERATION,
            "cases": self.cases,
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "ok_share": round(self.ok_share, 4),
            "server_errors": self.server_errors,
            "schema_violations": self.schema_violations,
            "failures": self.failures,
            "wall_s": round(self.wall_s, 2),
        }


def realistic_promise_cases(
    operation: Any, snapshot: Snapshot
) -> st.SearchStrategy[schemathesis.Case[Any]]:
    """Schema-generated promise cases whose SKUs and destinations exist on ``snapshot``."""
    stocked = sorted({row.sku for row in snapshot.positions() if row.on_hand > row.reserved})
    codes = scenarios.postal_codes().codes[:500]
    destinations = st.one_of(
        st.sampled_from(codes).map(lambda code: {"postal_code": code, "country": "US"}),
        # Inside the contiguous US, where the postal-code dataset resolves every point.
        st.fixed_dictionaries({"lat": st.floats(30.0, 47.0), "lon": st.floats(-120.0, -75.0)}),
    )

    channels = st.sampled_from([policy.channel for policy in snapshot.policies])
    moments = st.datetimes(
        min_value=dt.datetime.combine(EARLIEST_DATE, dt.time()),
        max_value=dt.datetime.combine(LATEST_DATE, dt.time(12)),
        timezones=st.just(dt.UTC),
    ).map(lambda moment: moment.isoformat())

    @st.composite
    def cases(draw: st.DrawFn) -> schemathesis.Case[Any]:
        case: schemathesis.Case[Any] = draw(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
        )
        # The schema makes the body a JSON object with a cart of lines; Any spares the casts.
        body: dict[str, Any] = dict(cast("dict[str, Any]", case.body))
        body.pop("snapshot", None)
        cart: dict[str, Any] = dict(body["cart"], channel=draw(channels))
        cart["lines"] = [
            {**line, "line_id": f"l{i}", "sku": draw(st.sampled_from(stocked))}
            for i, line in enumerate(cart["lines"])
        ]
        body["cart"] = cart
        body["destination"] = draw(destinations)
        if "requested_at" in body:
            # JSON Schema cannot bound a date-time (the range is in the field's description).
            body["requested_at"] = draw(moments)
        case.body = _six_decimals(body)
        return case

    return cases()


def _six_decimals(value: Any) -> Any:
    """``value`` with every float rounded to the six decimal places the service accepts.

    JSON Schema cannot say "at most six decimal places" of a float (``multipleOf: 1e-6``
    fails on binary floats in validators), so the document does not: the fuzz rounds.
    """
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {key: _six_decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_six_decimals(item) for item in value]
    return value


def fuzz_promise(base_url: str, snapshot: Snapshot, *, examples: int, seed: int = 0) -> FuzzReport:
    """Send ``examples`` realistic generated promise requests to ``base_url`` and count."""
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    method, path = OPERATION.split()
    operation = schema[path][method]
    report = FuzzReport()
    started = time.perf_counter()

    @given(case=realistic_promise_cases(operation, snapshot))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=seed == 0,
    )
    def exercise(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=base_url)
        report.cases += 1
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except (AssertionError, BaseExceptionGroup) as exc:
            report.server_errors += 1
            _keep(report, exc)
        try:
            case.validate_response(response, checks=[response_schema_conformance])
        except (AssertionError, BaseExceptionGroup) as exc:
            report.schema_violations += 1
            _keep(report, exc)

    if seed:
        exercise = settings(derandomize=False)(exercise)
    exercise()
    report.wall_s = time.perf_counter() - started
    return report


def _keep(report: FuzzReport, exc: BaseException) -> None:
    """Keep the first few failure messages."""
    if len(report.failures) < KEPT_FAILURES:
        report.failures.append(str(exc)[:2000])


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz against a fresh server and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=pathlib.Path, required=True)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-time-budget-ms", type=int, default=100)
    args = parser.parse_args(argv)
    env = {"PROMISE_MAX_TIME_BUDGET_MS": str(args.max_time_budget_ms)}
    with tempfile.TemporaryDirectory() as data_dir:
        server = ServerProcess(data_dir=pathlib.Path(data_dir), workers=2, env=env)
        with server.start():
            report = fuzz_promise(
                server.base_url, scenarios.demo_snapshot(), examples=args.examples, seed=args.seed
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.as_json().items() if k != "failures"}))
    return 0 if report.server_errors == 0 and report.schema_violations == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
