"""The golden suite: a fixed set of scenarios on the demo network and its baseline KPIs.

Committed under ``scenarios/golden/`` in compact form:

- ``suite.json``: how the suite was made (network generator parameters and the network's
  content version, cart generator channels, counts and seeds, the quoted level) and the SHA-256
  of the requests file's content;
- ``requests.jsonl.gz``: one promise request per line;
- ``baseline.json``: the KPIs of the suite replayed with the default engine and policy.

The network is not stored: the generator is deterministic, so it is rebuilt from its parameters
and checked against the recorded content version; each scenario's inventory slice is cut from
it. Nothing here rewrites these files except :func:`regenerate`, run on purpose
(``python -m scenarios.cli golden --regenerate``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Final

from models import Engine, PromiseRequest, ServiceLevel, Snapshot
from scenarios._codecs import network_version
from scenarios._records import RunInfo, ScenarioRecorder
from scenarios._schema import StoreError
from scenarios._store import ScenarioStore
from scenarios.carts import generate_carts
from scenarios.day_gate import day_kpis, write_day_baseline
from scenarios.kpis import kpis
from scenarios.network import DEFAULT_AS_OF, demo_snapshot, generate_network
from scenarios.policy import DEFAULT_POLICY, Policy
from scenarios.replay import code_version, prestart, replay

__all__ = [
    "GATE_TIME_BUDGET_MS",
    "GOLDEN_DIR",
    "GOLDEN_TAG",
    "GoldenSuite",
    "build_requests",
    "load_golden",
    "read_baseline",
    "read_suite",
    "regenerate",
    "replay_golden",
    "requests_text",
]

log = logging.getLogger(__name__)

GOLDEN_DIR: Final = Path(__file__).with_name("golden")
GOLDEN_TAG: Final = "golden"
SUITE_FILE: Final = "suite.json"
REQUESTS_FILE: Final = "requests.jsonl.gz"
BASELINE_FILE: Final = "baseline.json"
REGENERATE_COMMAND: Final = "python -m scenarios.cli golden --regenerate"
# Solve budget of baseline and gate replays. The gate judges answer quality, which must not
# depend on how loaded the CI machine is: with a generous budget the MIP proves its answers
# instead of timing out into feasible or fallback ones. Latency has its own benchmark.
GATE_TIME_BUDGET_MS: Final = 2_000

# What a regenerated suite is made of: the demo network, a channel mix that exercises buffers,
# margin floors and single-shipment pickup, the ground level (as the quality benchmark), and
# every tenth cart allowing partial fulfilment.
_NETWORK: Final[dict[str, Any]] = {
    "nodes": 200,
    "skus": 2_000,
    "seed": 7,
    "as_of": DEFAULT_AS_OF.isoformat(),
}
_CARTS: Final[tuple[dict[str, Any], ...]] = (
    {"channel": "web", "count": 400, "seed": 20_261},
    {"channel": "app", "count": 80, "seed": 20_262},
    {"channel": "marketplace", "count": 80, "seed": 20_263},
    {"channel": "store_pickup", "count": 40, "seed": 20_264},
)
_LEVELS: Final[tuple[ServiceLevel, ...]] = (ServiceLevel.GROUND,)
_PARTIAL_EVERY: Final = 10


@dataclasses.dataclass(frozen=True, slots=True)
class GoldenSuite:
    """The suite as committed: how it was made and its requests."""

    meta: dict[str, Any]
    requests: tuple[PromiseRequest, ...]

    def network(self) -> Snapshot:
        """The suite's network, rebuilt and checked against the recorded version."""
        params = self.meta["network"]
        as_of = dt.datetime.fromisoformat(params["as_of"])
        if (params["nodes"], params["skus"], params["seed"], as_of) == (
            200,
            2_000,
            7,
            DEFAULT_AS_OF,
        ):
            snapshot = demo_snapshot()
        else:
            snapshot = generate_network(
                nodes=params["nodes"], skus=params["skus"], seed=params["seed"], as_of=as_of
            )
        if network_version(snapshot) != self.meta["network_version"]:
            raise StoreError(
                "the demo network generator changed: its network no longer matches the golden "
                f"suite ({self.meta['network_version']}); review the change, then run "
                f"{REGENERATE_COMMAND}"
            )
        return snapshot


def requests_text(requests: list[PromiseRequest]) -> str:
    """The requests file's content: one request per line."""
    return "".join(request.model_dump_json(exclude_none=True) + "\n" for request in requests)


def build_requests(snapshot: Snapshot) -> list[PromiseRequest]:
    """The suite's requests, deterministic from the generator parameters."""
    requests: list[PromiseRequest] = []
    for spec in _CARTS:
        carts = generate_carts(
            snapshot, count=spec["count"], seed=spec["seed"], channel=spec["channel"]
        )
        for k, cart in enumerate(carts):
            requests.append(
                cart.model_copy(
                    update={"service_levels": _LEVELS, "allow_partial": k % _PARTIAL_EVERY == 0}
                )
            )
    return requests


def read_suite(directory: Path = GOLDEN_DIR) -> GoldenSuite:
    """Read the committed suite, checking the requests file against its recorded hash."""
    meta = json.loads((directory / SUITE_FILE).read_text(encoding="utf-8"))
    text = gzip.decompress((directory / REQUESTS_FILE).read_bytes()).decode()
    if hashlib.sha256(text.encode()).hexdigest() != meta["requests_sha256"]:
        raise StoreError(f"{directory / REQUESTS_FILE} does not match {SUITE_FILE}")
    requests = tuple(PromiseRequest.model_validate_json(line) for line in text.splitlines())
    if len(requests) != meta["scenarios"]:
        raise StoreError(f"{REQUESTS_FILE} holds {len(requests)} requests, not {meta['scenarios']}")
    return GoldenSuite(meta=meta, requests=requests)


def read_baseline(directory: Path = GOLDEN_DIR) -> dict[str, Any]:
    """The committed baseline: run facts and KPIs."""
    baseline: dict[str, Any] = json.loads((directory / BASELINE_FILE).read_text(encoding="utf-8"))
    return baseline


def load_golden(store: ScenarioStore, directory: Path = GOLDEN_DIR) -> list[str]:
    """Put the suite's network and scenarios (tagged ``golden``) in ``store``; their ids."""
    suite = read_suite(directory)
    recorder = ScenarioRecorder.of(suite.network())
    store.add_network(recorder)
    records = [
        recorder.record(
            request,
            tags=(GOLDEN_TAG,),
            scenario_id=request.cart.cart_id,
            captured_at=recorder.snapshot.as_of,
        )
        for request in suite.requests
    ]
    store.add_records(records)
    return [record.scenario_id for record in records]


def replay_golden(
    directory: Path,
    *,
    engine: Engine | str | None = None,
    policy: Policy | None = None,
    workers: int | None,
    time_budget_ms: int,
    progress: bool,
) -> tuple[dict[str, float], RunInfo]:
    """Replay the suite of ``directory`` in a store in memory; the run's KPIs and record."""
    with ScenarioStore(":memory:") as store:
        load_golden(store, directory)
        run_id = replay(
            store,
            GOLDEN_TAG,
            engine=engine,
            policy=policy,
            workers=workers,
            time_budget_ms=time_budget_ms,
            progress=progress,
        )
        return kpis(store, run_id), store.run(run_id)


def regenerate(
    directory: Path = GOLDEN_DIR, *, workers: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Rebuild the suite's files and replay it for a new baseline; the baseline written.

    Only for deliberate changes (a new generator, a changed engine whose new KPIs are wanted).
    """
    directory.mkdir(parents=True, exist_ok=True)
    if workers is None or workers > 1:
        prestart()
    as_of = dt.datetime.fromisoformat(_NETWORK["as_of"])
    snapshot = generate_network(
        nodes=_NETWORK["nodes"], skus=_NETWORK["skus"], seed=_NETWORK["seed"], as_of=as_of
    )
    requests = build_requests(snapshot)
    text = requests_text(requests)
    meta = {
        "format": 1,
        "description": "Golden scenarios on the demo network at the ground level (golden.py)",
        "network": _NETWORK,
        "network_version": network_version(snapshot),
        "network_label": snapshot.version,
        "carts": list(_CARTS),
        "levels": [level.value for level in _LEVELS],
        "partial_every": _PARTIAL_EVERY,
        "scenarios": len(requests),
        "requests_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    # mtime=0: the same requests give the same bytes, so an unchanged suite shows no diff.
    (directory / REQUESTS_FILE).write_bytes(gzip.compress(text.encode(), mtime=0))
    (directory / SUITE_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    values, info = replay_golden(
        directory, workers=workers, time_budget_ms=GATE_TIME_BUDGET_MS, progress=progress
    )
    baseline = {
        "format": 1,
        "suite_requests_sha256": meta["requests_sha256"],
        "network_version": meta["network_version"],
        "engine": info.engine,
        "policy": DEFAULT_POLICY.name,
        "policy_hash": DEFAULT_POLICY.digest,
        "code_version": code_version(),
        "time_budget_ms": GATE_TIME_BUDGET_MS,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "kpis": {name: round(value, 6) for name, value in values.items()},
    }
    (directory / BASELINE_FILE).write_text(json.dumps(baseline, indent=2) + "\n", encoding="utf-8")
    write_day_baseline(
        directory, day_kpis(), code_version=baseline["code_version"], created=baseline["created"]
    )
    log.info("golden suite regenerated", extra={"scenarios": len(requests), "run_id": info.run_id})
    return baseline
