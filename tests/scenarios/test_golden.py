"""The committed golden suite: size, integrity, determinism and loading into a store."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from models import ServiceLevel
from scenarios import ScenarioStore, Selection, StoreError, demo_snapshot, network_version
from scenarios.golden import (
    BASELINE_FILE,
    GOLDEN_DIR,
    GOLDEN_TAG,
    REQUESTS_FILE,
    build_requests,
    load_golden,
    read_baseline,
    read_suite,
    requests_text,
)
from scenarios.kpis import KPI_NAMES


def test_suite_is_big_enough_and_quotes_ground() -> None:
    """At least 500 scenarios, every one at the ground level, over several channels."""
    suite = read_suite()
    assert len(suite.requests) >= 500
    assert all(r.service_levels == (ServiceLevel.GROUND,) for r in suite.requests)
    assert {r.cart.channel for r in suite.requests} >= {"web", "marketplace", "store_pickup"}
    assert len({r.cart.cart_id for r in suite.requests}) == len(suite.requests)


def test_generator_still_produces_the_committed_suite() -> None:
    """The demo network and the cart generator give back exactly the committed requests.

    When this fails the generators changed: the suite must be regenerated on purpose.
    """
    suite = read_suite()
    snapshot = demo_snapshot()
    assert network_version(snapshot) == suite.meta["network_version"]
    text = requests_text(build_requests(snapshot))
    assert hashlib.sha256(text.encode()).hexdigest() == suite.meta["requests_sha256"]


def test_baseline_matches_the_suite() -> None:
    """The baseline names the committed suite and holds every KPI, with a clean checker."""
    suite = read_suite()
    baseline = read_baseline()
    assert baseline["suite_requests_sha256"] == suite.meta["requests_sha256"]
    assert set(baseline["kpis"]) == set(KPI_NAMES)
    assert baseline["kpis"]["scenarios"] == len(suite.requests)
    assert baseline["kpis"]["checker_failures"] == 0
    assert baseline["kpis"]["errors"] == 0


def test_a_tampered_requests_file_is_refused(tmp_path: Path) -> None:
    """Editing the requests by hand breaks the recorded hash."""
    copy = tmp_path / "golden"
    shutil.copytree(GOLDEN_DIR, copy)
    lines = gzip.decompress((copy / REQUESTS_FILE).read_bytes()).decode().splitlines()
    first = json.loads(lines[0])
    first["cart"]["lines"][0]["quantity"] += 1
    lines[0] = json.dumps(first)
    (copy / REQUESTS_FILE).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(StoreError, match="does not match"):
        read_suite(copy)


def test_load_golden_fills_a_store() -> None:
    """Every scenario lands tagged, with its network and a non-empty slice for stocked SKUs."""
    with ScenarioStore(":memory:") as store:
        ids = load_golden(store)
        assert len(ids) == len(read_suite().requests)
        assert store.count(Selection(tag=GOLDEN_TAG)) == len(ids)
        assert load_golden(store) == ids  # loading twice adds nothing
        assert store.count() == len(ids)
        sample = store.scenario(ids[0])
        assert sample.inventory
        assert {row.sku for row in sample.inventory} <= {
            line.sku for line in sample.request.cart.lines
        }


def test_tests_never_rewrite_the_suite() -> None:
    """Reading and loading the suite leaves the committed files untouched."""
    before = {p.name: p.read_bytes() for p in GOLDEN_DIR.iterdir() if p.is_file()}
    with ScenarioStore(":memory:") as store:
        load_golden(store)
    read_baseline()
    after = {p.name: p.read_bytes() for p in GOLDEN_DIR.iterdir() if p.is_file()}
    assert before == after
    assert BASELINE_FILE in after
