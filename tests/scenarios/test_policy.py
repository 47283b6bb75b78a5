"""Replay policies: TOML parsing, hashing and what applying one changes in a snapshot."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from models import Buffer, Engine, NodeKind
from scenarios.policy import DEFAULT_POLICY, load_policy, parse_policy
from tests.scenarios.replay_cases import small_network

FULL = """
name = "stress"
engine = "nearest"
channels = ["web"]
max_shipments = 1
in_transit_share = 0.5
min_margin_pct = 7.5
carrier_capacity_scale = 0.5
labour_scale = 0.25

[weights]
split_penalty = 0
lateness_per_day = 10

[buffers.store]
units = 3
percent = 20.0

[service_capacity_scale]
ground = 0.5
"""


def test_parses_every_field() -> None:
    """Each TOML key lands in its field."""
    policy = parse_policy(FULL)
    assert policy.name == "stress"
    assert policy.engine is Engine.NEAREST
    assert policy.channels == ("web",)
    assert policy.weights.split_penalty == 0
    assert policy.weights.lateness_per_day == 10
    assert policy.buffers == {NodeKind.STORE: Buffer(units=3, percent=20.0)}
    assert (policy.max_shipments, policy.in_transit_share, policy.min_margin_pct) == (1, 0.5, 7.5)
    assert (policy.carrier_capacity_scale, policy.labour_scale) == (0.5, 0.25)
    assert policy.service_capacity_scale == {"ground": 0.5}


def test_rejects_unknown_keys_and_bad_values() -> None:
    """A typo or an out-of-range value is an error, not a silent default."""
    with pytest.raises(ValidationError):
        parse_policy('max_shipment = 2\nname = "typo"')
    with pytest.raises(ValidationError):
        parse_policy("max_shipments = 0")
    with pytest.raises(ValidationError):
        parse_policy("[weights]\nsplit_penalti = 1")


def test_hash_ignores_layout_but_not_content() -> None:
    """Comments, order and whitespace do not change the hash; a value does."""
    a = parse_policy('name = "p"\nmax_shipments = 2\n[weights]\nsplit_penalty = 10\n')
    b = parse_policy("# same\n[weights]\nsplit_penalty   = 10\n\n[buffers]\n")
    b = b.model_copy(update={"name": "p", "max_shipments": 2})
    c = parse_policy('name = "p"\nmax_shipments = 2\n[weights]\nsplit_penalty = 11\n')
    assert a.digest == b.digest
    assert a.digest != c.digest


def test_load_policy_names_it_after_the_file(tmp_path: Path) -> None:
    """Without a name key, the file's stem names the policy."""
    path = tmp_path / "tight-labour.toml"
    path.write_text("labour_scale = 0.5\n")
    assert load_policy(path).name == "tight-labour"


def test_default_policy_changes_nothing() -> None:
    """Applying the default (or an engine-only) policy returns the very same snapshot."""
    network = small_network()
    assert DEFAULT_POLICY.apply(network) is network
    assert parse_policy('engine = "priority"').apply(network) is network


def test_apply_overrides_channel_policies() -> None:
    """Weights, buffers, max shipments, in-transit share and margin floor change for web only."""
    network = small_network()
    changed = parse_policy(FULL).apply(network)
    web, other = changed.policy("web"), changed.policy("marketplace")
    original_web, original_other = network.policy("web"), network.policy("marketplace")
    assert web is not None
    assert original_web is not None
    assert web.weights.split_penalty == 0
    assert web.weights.handling == original_web.weights.handling  # untouched fields kept
    assert web.buffers[NodeKind.STORE] == Buffer(units=3, percent=20.0)
    assert web.buffers.get(NodeKind.DARK_STORE) == original_web.buffers.get(NodeKind.DARK_STORE)
    assert (web.max_shipments, web.in_transit_share, web.min_margin_pct) == (1, 0.5, 7.5)
    assert other == original_other  # not in `channels`


def test_apply_scales_capacity_and_labour() -> None:
    """Capacities and labour minutes are multiplied and rounded down; unlimited stays unlimited."""
    network = small_network()
    changed = parse_policy(FULL).apply(network)
    for before, after in zip(network.services, changed.services, strict=True):
        scale = 0.5 * (0.5 if before.service_id == "ground" else 1.0)
        if before.daily_capacity is None:
            assert after.daily_capacity is None
        else:
            assert after.daily_capacity == math.floor(before.daily_capacity * scale)
        for node, days in before.remaining_capacity.items():
            for day, left in days.items():
                assert after.remaining_capacity[node][day] == math.floor(left * scale)
    limited = [n for n in network.nodes if n.daily_labour_minutes is not None]
    assert limited, "stores have labour limits"
    scaled = {n.node_id: n for n in changed.nodes}
    for before_node in limited:
        after_node = scaled[before_node.node_id]
        daily = before_node.daily_labour_minutes
        assert daily is not None
        assert after_node.daily_labour_minutes == math.floor(daily * 0.25)
        for day, minutes in before_node.labour_minutes.items():
            assert after_node.labour_minutes[day] == math.floor(minutes * 0.25)
