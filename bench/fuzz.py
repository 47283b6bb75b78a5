"""Schemathesis over every operation of the published document, with a credential.

Every operation of ``/schema/openapi.json`` is fuzzed in both generation modes: positive
(requests the document allows) and negative (requests it forbids). The run authenticates the
way a client does: the document's bearer scheme is given a fuzzing key, an API key of every
role with generous but finite limits, so that negative cases which drop or garble the
``Authorization`` header are sent without it (and must get a documented 401) while every other
case carries it.

Schema-valid requests rarely name anything that exists, so positive cases are shaped where no
schema can know better: promise and validate carts draw their SKUs, channels and destinations
from the served network, time budgets and cart sizes stay within the service's settings;
availability and position queries name real SKUs and nodes; holds and events are made
coherent; and path ids (reservations, events, keys) are drawn from ids seeded before the run
or harvested from earlier answers. Everything else is the document's own generation.

Checks on every answer (all about the server, none about the fuzzer's luck):

* ``not_a_server_error``: no 5xx;
* ``response_schema_conformance``: the body matches the schema documented for its status;
* ``status_code_conformance``: the status is documented for the operation;
* ``content_type_conformance``: the media type is the documented one (problem+json errors);
* ``response_headers_conformance``: documented headers are present and valid;
* ``negative_data_rejection``: a request the document forbids gets a 4xx, never a 2xx;
* ``ignored_auth`` (on each operation's first 2xx): the same request without a credential,
  and with a garbled one, is refused.

Left out: ``positive_data_acceptance`` (a schema-valid request may rightly name an unknown SKU
or reservation: 404/409/422; the report's 2xx shares measure that instead),
``max_response_time`` (latency is ``bench.http_load``'s), ``object_level_authorization``
(it needs several identities set up through schemathesis' own auth flows; holds belonging to
their principal are tested in ``tests/access``), and the checks that only apply to cases of
schemathesis' coverage or stateful phases (``missing_required_header``,
``unsupported_method``, ``use_after_free``, ``ensure_resource_availability``), which these
hypothesis strategies do not produce.

``PUT /v1/snapshot`` runs last: a generated snapshot that happens to be valid replaces the
demo network, and nothing may run on the smaller one afterwards. One positive snapshot case in
``SNAPSHOT_RESEND_EVERY`` re-sends the demo network itself (under a new version), so the swap
is exercised for real.

Usage::

    python -m bench.fuzz --json out/fuzz.json [--examples 10000] [--seed 0]

The server is started here (``promise serve --workers 2`` on the embedded demo network).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.errors import SerializationError
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import scenarios
from bench.fuzz_cases import (
    PROMISE,
    SNAPSHOT_PUT,
    VALIDATE,
    Network,
    Operation,
    ServiceLimits,
    cases_of,
)
from bench.fuzz_report import FuzzReport, OperationReport, format_table
from promise.access.principal import Scope
from promise.access.rules import SECURITY_SCHEME
from solver.errors import PROBLEM_TYPE_PREFIX
from tests.launcher import ServerProcess

__all__ = [
    "DEFAULT_WEIGHTS",
    "allocate",
    "fuzz_api",
    "load_schema",
    "main",
    "make_fuzz_key",
    "seed_resources",
]

MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Relative share of the cases per operation, (positive, negative). Promise carries the most:
# it is what the service is for, and its positive cases must mostly answer 200 even counted
# together with its negative ones. Snapshots are slow to generate and to swap.
DEFAULT_WEIGHTS: dict[str, tuple[float, float]] = {
    PROMISE: (14.0, 3.0),
    VALIDATE: (3.0, 2.0),
    "GET /v1/availability": (3.0, 2.0),
    "GET /healthz": (0.2, 0.2),
    "GET /readyz": (0.2, 0.2),
    "GET /metrics": (0.5, 0.5),
    "GET /v1/snapshot": (0.5, 0.5),
    SNAPSHOT_PUT: (0.6, 0.6),
    "POST /v1/inventory/events": (3.0, 2.0),
    "GET /v1/inventory/events/{event_id}": (1.5, 1.0),
    "GET /v1/inventory/positions": (2.0, 1.0),
    "POST /v1/reservations": (4.0, 2.0),
    "GET /v1/reservations/{reservation_id}": (1.5, 1.0),
    "POST /v1/reservations/{reservation_id}/confirm": (1.5, 1.0),
    "POST /v1/reservations/{reservation_id}/release": (1.5, 1.0),
    "GET /v1/keys": (0.5, 0.5),
    "POST /v1/keys": (1.5, 1.0),
    "POST /v1/keys/{key_id}/revoke": (1.5, 1.0),
    "GET /v1/audit": (1.5, 1.0),
    "GET /v1/prices": (1.0, 1.0),
    "PUT /v1/prices": (1.5, 1.0),
}
# An operation the table does not know yet (a new route) is fuzzed all the same.
NEW_OPERATION_WEIGHT = (1.5, 1.0)
SEEDED = 5  # reservations, events and keys made before the run
# A failure message is long (it quotes the body); a few per check are enough to debug from.
KEPT_FAILURES = 3
REQUEST_TIMEOUT_S = 60.0
CHECKS: tuple[CheckFunction, ...] = (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    negative_data_rejection,
)


# --- the run ----------------------------------------------------------------------------------


def allocate(
    labels: list[str], total: int, weights: dict[str, tuple[float, float]] | None = None
) -> dict[tuple[str, GenerationMode], int]:
    """Cases to generate per operation and mode: ``total`` shared out by weight (at least 1)."""
    table = DEFAULT_WEIGHTS if weights is None else weights
    shares = {
        (label, mode): table.get(label, NEW_OPERATION_WEIGHT)[index]
        for label in labels
        for index, mode in enumerate(MODES)
    }
    scale = total / sum(shares.values())
    return {key: max(1, math.ceil(share * scale)) for key, share in shares.items()}


def load_schema(base_url: str, key: str) -> schemathesis.BaseSchema:
    """The document the server publishes, fetched and fuzzed with ``key`` as its bearer."""
    document = httpx.get(
        f"{base_url}/schema/openapi.json",
        headers={"Authorization": f"Bearer {key}"},
        timeout=REQUEST_TIMEOUT_S,
    )
    document.raise_for_status()
    # Given to the document's security scheme (not as a fixed header), so that negative cases
    # which drop or garble the credential really are sent without it.
    config = SchemathesisConfig.from_dict(
        {"base-url": base_url, "auth": {"openapi": {SECURITY_SCHEME: {"bearer": key}}}}
    )
    return schemathesis.openapi.from_dict(document.json(), config=config)


def make_fuzz_key(base_url: str, admin_headers: dict[str, str]) -> str:
    """A key of every role with generous but finite limits, made through the admin API.

    Finite because the fuzz holds stock: the held-unit limit bounds what it can take from the
    network its promises run on (under a tenth of the demo network's units), and the rate
    limit is far above what one client sends.
    """
    answer = httpx.post(
        f"{base_url}/v1/keys",
        headers=admin_headers,
        json={
            "name": "fuzz",
            "scopes": [scope.value for scope in Scope],
            "rate_per_s": 5_000.0,
            "burst": 10_000,
            "max_open_holds": 10_000,
            "max_held_units": 50_000,
        },
        timeout=REQUEST_TIMEOUT_S,
    )
    answer.raise_for_status()
    return str(answer.json()["key"])


def seed_resources(base_url: str, key: str, network: Network) -> None:
    """Make a few reservations, events and keys, so that path ids can name existing ones."""
    headers = {"Authorization": f"Bearer {key}"}
    now = dt.datetime.now(dt.UTC).isoformat()
    with httpx.Client(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        events = [
            {
                "event_id": f"fuzz-seed-{i}",
                "node_id": node_id,
                "sku": sku,
                "type": "receipt",
                "quantity": 1,
                "occurred_at": now,
                "seq": 1,
            }
            for i, (node_id, sku) in enumerate(network.positions[:SEEDED])
        ]
        answer = client.post("/v1/inventory/events", json={"events": events})
        answer.raise_for_status()
        network.harvest("POST /v1/inventory/events", answer.status_code, answer.json())
        for i, (node_id, sku) in enumerate(network.positions[-SEEDED:]):
            answer = client.post(
                "/v1/reservations",
                headers={"Idempotency-Key": f"fuzz-seed-{i}"},
                json={
                    "lines": [{"node_id": node_id, "sku": sku, "quantity": 1}],
                    "channel": network.channels[0],
                    "ttl_s": network.limits.max_hold_ttl_s,
                },
            )
            answer.raise_for_status()
            network.harvest("POST /v1/reservations", answer.status_code, answer.json())
            answer = client.post(
                "/v1/keys", json={"name": f"fuzz-victim-{i}", "scopes": ["analyst"]}
            )
            answer.raise_for_status()
            network.harvest("POST /v1/keys", answer.status_code, answer.json())
    if min(map(len, (network.event_ids, network.reservation_ids, network.key_ids))) < SEEDED:
        raise RuntimeError("seeding the fuzz run made fewer resources than asked")


def _ordered(operations: list[Operation]) -> list[Operation]:
    """The document's order, but the snapshot swap last (it may replace the network)."""
    return sorted(operations, key=lambda operation: operation.label == SNAPSHOT_PUT)


def _keep(report: OperationReport, kind: str, exc: BaseException) -> None:
    """Keep the first few failure messages of each kind."""
    kept = report.failures.setdefault(kind, [])
    if len(kept) < KEPT_FAILURES:
        kept.append(str(exc)[:3000])


def _json_body(response: schemathesis.Response) -> Any:
    """The answer's JSON, or None."""
    try:
        return json.loads(response.content)
    except ValueError:
        return None


@dataclasses.dataclass
class _Run:
    """One fuzz run: where it sends, what it knows and what it counted."""

    base_url: str
    network: Network
    session: requests.Session
    seed: int
    report: FuzzReport = dataclasses.field(default_factory=FuzzReport)

    def send(
        self, case: schemathesis.Case[Any], entry: OperationReport, mode: GenerationMode
    ) -> None:
        """Send one case, count its answer and run every check on it."""
        try:
            response = case.call(
                base_url=self.base_url, session=self.session, timeout=REQUEST_TIMEOUT_S
            )
        except SerializationError:
            return  # a case requests cannot send (it never reached the server)
        except requests.RequestException as exc:
            entry.transport_errors += 1
            _keep(entry, "transport", exc)
            return
        status = response.status_code
        entry.cases[mode.value] += 1
        entry.statuses[status] += 1
        ok = 200 <= status < 300
        if ok and mode is GenerationMode.POSITIVE:
            entry.positive_2xx += 1
        checks = list(CHECKS)
        if ok and entry.operation not in self.report.auth_checked:
            # Enforcement is the operation's, so one confirmation per run will do.
            self.report.auth_checked.append(entry.operation)
            checks.append(ignored_auth)
        transport_kwargs = {"base_url": self.base_url, "timeout": REQUEST_TIMEOUT_S}
        for check in checks:
            try:
                case.validate_response(response, checks=[check], transport_kwargs=transport_kwargs)
            except (AssertionError, BaseExceptionGroup) as exc:
                entry.check_failures[check.__name__] += 1
                if check is not_a_server_error:
                    entry.server_errors += 1
                elif check is response_schema_conformance:
                    entry.schema_violations += 1
                _keep(entry, check.__name__, exc)
        body = _json_body(response)
        self.network.harvest(entry.operation, status, body)
        if status >= 400 and isinstance(body, dict):
            kind = str(body.get("type", "?")).removeprefix(PROBLEM_TYPE_PREFIX)
            entry.problems[f"{status} {mode.value} {kind}"] += 1

    def run_mode(
        self,
        operation: Operation,
        entry: OperationReport,
        mode: GenerationMode,
        examples: int,
        *,
        round_: int = 0,
    ) -> None:
        """Generate and send up to ``examples`` cases of one operation in one mode.

        A later ``round_`` draws other cases than the first (hypothesis' derandomized runs
        always draw the same ones), still reproducibly.
        """
        seed = self.seed + round_

        @given(case=cases_of(operation, mode, self.network))
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=seed == 0,
        )
        def exercise(case: schemathesis.Case[Any]) -> None:
            self.send(case, entry, mode)

        test = hypothesis_seed(seed)(exercise) if seed else exercise
        try:
            test()
        except Unsatisfiable:
            # No request of this mode exists (a route without parameters has no invalid
            # request but one without its credential, and a public one not even that).
            entry.not_generated.append(mode.value)


def fuzz_api(
    base_url: str,
    key: str,
    network: Network,
    *,
    examples: int,
    weights: dict[str, tuple[float, float]] | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> FuzzReport:
    """Fuzz every operation in both modes, ``examples`` cases in all; checked and counted."""
    schema = load_schema(base_url, key)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    if len(operations) != len(results):
        raise RuntimeError("the published document has operations schemathesis cannot read")
    budget = allocate([operation.label for operation in operations], examples, weights)
    started = time.perf_counter()
    with requests.Session() as session:
        run = _Run(base_url=base_url, network=network, session=session, seed=seed)

        def fuzz(operation: Operation, mode: GenerationMode, wanted: int, round_: int = 0) -> None:
            label = operation.label
            entry = run.report.operations.setdefault(label, OperationReport(operation=label))
            entry.requested += wanted
            mode_started = time.perf_counter()
            run.run_mode(operation, entry, mode, wanted, round_=round_)
            elapsed = time.perf_counter() - mode_started
            entry.wall_s += elapsed
            if progress is not None:
                statuses = dict(sorted(entry.statuses.items()))
                progress(
                    f"{label} {mode.value}: {entry.cases[mode.value]} cases, "
                    f"{statuses}, {dict(entry.check_failures)}, {elapsed:.1f} s"
                )

        ordered = _ordered(operations)
        for operation in ordered:
            if operation.label == SNAPSHOT_PUT:
                # Operations with few distinct requests (no parameters) cannot use their whole
                # share: promise cases make up the rest, before the swap that may end the network.
                swap = sum(budget[(SNAPSHOT_PUT, mode)] for mode in MODES)
                promise = next((op for op in ordered if op.label == PROMISE), None)
                shortfall = examples - run.report.cases - swap
                if promise is not None and shortfall > 0:
                    fuzz(promise, GenerationMode.POSITIVE, shortfall, round_=1)
            for mode in MODES:
                fuzz(operation, mode, budget[(operation.label, mode)])
    run.report.wall_s = time.perf_counter() - started
    return run.report


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz against a fresh server and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=pathlib.Path, required=True)
    parser.add_argument("--examples", type=int, default=10_000, help="cases over every operation")
    parser.add_argument("--seed", type=int, default=0, help="0: hypothesis' derandomized run")
    parser.add_argument("--max-time-budget-ms", type=int, default=100)
    args = parser.parse_args(argv)
    limits = ServiceLimits(max_time_budget_ms=args.max_time_budget_ms)
    env = {"PROMISE_MAX_TIME_BUDGET_MS": str(limits.max_time_budget_ms)}
    with tempfile.TemporaryDirectory() as data_dir:
        server = ServerProcess(data_dir=pathlib.Path(data_dir), workers=2, env=env)
        with server.start():
            key = make_fuzz_key(server.base_url, server.auth_headers)
            network = Network.of(scenarios.demo_snapshot(), limits)
            seed_resources(server.base_url, key, network)
            report = fuzz_api(
                server.base_url,
                key,
                network,
                examples=args.examples,
                seed=args.seed,
                progress=lambda line: print(line, file=sys.stderr, flush=True),
            )
            errors_logged = '"level":"ERROR"' in server.log_path.read_text()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    document = report.as_json() | {"server_logged_errors": errors_logged}
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(format_table(report))
    summary = {k: v for k, v in document.items() if k != "operations"}
    print(json.dumps(summary))
    return 0 if report.clean and not errors_logged else 1


if __name__ == "__main__":
    sys.exit(main())
