"""Replay policies: TOML files that change how a network is run, not what it holds.

A policy names an engine and overrides, for every channel (or only the listed ones), the
objective weights, buffers per node kind, maximum shipments, in-transit share and margin floor;
it can also scale carrier capacity and store pick labour. ``Policy.apply`` returns a modified
snapshot; the policy's hash (of its normalised content, so comments and key order do not count)
is recorded with every run. Example::

    name = "cheaper-splits"
    engine = "mip"
    max_shipments = 4
    carrier_capacity_scale = 0.8      # every service: 80 % of its packages per day
    labour_scale = 0.5                # stores pick with half their labour minutes

    [weights]                         # any ObjectiveWeights field
    split_penalty = 50

    [buffers.store]                   # per node kind: dc, store, dark_store
    units = 2
    percent = 10.0

    [service_capacity_scale]          # per carrier service id, on top of the global scale
    same_day_courier = 0.5
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import Field

from models import (
    Buffer,
    CarrierService,
    ChannelPolicy,
    Engine,
    Frozen,
    Node,
    NodeKind,
    Percent,
    Share,
    Snapshot,
    WeightOverrides,
)

__all__ = ["DEFAULT_POLICY", "Policy", "load_policy", "parse_policy"]

Scale = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


class Policy(Frozen):
    """An engine plus overrides of channel policies, carrier capacity and labour."""

    name: str = Field(default="default", min_length=1, max_length=64)
    description: str = ""
    engine: Engine = Engine.MIP
    channels: tuple[str, ...] | None = Field(
        default=None, description="Channels the overrides apply to; None means every channel."
    )
    weights: WeightOverrides = WeightOverrides()
    buffers: dict[NodeKind, Buffer] = Field(
        default_factory=dict, description="Buffers replacing the channel's, per node kind."
    )
    max_shipments: Annotated[int, Field(ge=1, le=20)] | None = None
    in_transit_share: Share | None = None
    min_margin_pct: Percent | None = None
    carrier_capacity_scale: Scale = 1.0
    service_capacity_scale: dict[str, Scale] = Field(default_factory=dict)
    labour_scale: Scale = 1.0
    time_budget_ms: Annotated[int, Field(ge=1, le=60_000)] | None = None

    @property
    def digest(self) -> str:
        """Hash of the normalised content (same policy, same hash, whatever the file looks like)."""
        body = self.model_dump_json(exclude={"description"})
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    @property
    def is_identity(self) -> bool:
        """Whether applying the policy leaves every snapshot unchanged."""
        return self.model_dump(exclude={"name", "description", "engine", "time_budget_ms"}) == (
            DEFAULT_POLICY.model_dump(exclude={"name", "description", "engine", "time_budget_ms"})
        )

    def apply(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` with this policy's overrides (the same object when there are none)."""
        if self.is_identity:
            return snapshot
        return snapshot.model_copy(
            update={
                "policies": tuple(self._channel(policy) for policy in snapshot.policies),
                "services": tuple(self._service(service) for service in snapshot.services),
                "nodes": tuple(self._node(node) for node in snapshot.nodes),
            }
        )

    def _channel(self, policy: ChannelPolicy) -> ChannelPolicy:
        """One channel policy with the overrides, re-validated as a whole."""
        if self.channels is not None and policy.channel not in self.channels:
            return policy
        update: dict[str, object] = {"weights": self.weights.apply(policy.weights)}
        if self.buffers:
            update["buffers"] = {**policy.buffers, **self.buffers}
        for name in ("max_shipments", "in_transit_share", "min_margin_pct"):
            value = getattr(self, name)
            if value is not None:
                update[name] = value
        return ChannelPolicy.model_validate({**dict(policy), **update})

    def _service(self, service: CarrierService) -> CarrierService:
        """One carrier service with its daily and remaining capacity scaled (rounded down)."""
        scale = self.carrier_capacity_scale * self.service_capacity_scale.get(
            service.service_id, 1.0
        )
        if scale == 1.0:
            return service
        return service.model_copy(
            update={
                "daily_capacity": _scaled(service.daily_capacity, scale),
                "remaining_capacity": {
                    node: {day: math.floor(left * scale) for day, left in days.items()}
                    for node, days in service.remaining_capacity.items()
                },
            }
        )

    def _node(self, node: Node) -> Node:
        """One node with its labour minutes scaled (rounded down)."""
        if self.labour_scale == 1.0:
            return node
        return node.model_copy(
            update={
                "daily_labour_minutes": _scaled(node.daily_labour_minutes, self.labour_scale),
                "labour_minutes": {
                    day: math.floor(minutes * self.labour_scale)
                    for day, minutes in node.labour_minutes.items()
                },
            }
        )


def _scaled(value: int | None, scale: float) -> int | None:
    """``value × scale`` rounded down; None (unlimited) stays unlimited."""
    return None if value is None else math.floor(value * scale)


DEFAULT_POLICY = Policy()


def parse_policy(text: str) -> Policy:
    """A policy from TOML text (unknown keys are rejected)."""
    return Policy.model_validate(tomllib.loads(text))


def load_policy(path: Path) -> Policy:
    """A policy from a TOML file; its name defaults to the file's stem."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data.setdefault("name", path.stem)
    return Policy.model_validate(data)
