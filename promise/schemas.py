"""Request and answer bodies of the HTTP API (the domain types plus what the service adds)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from models import BooleanOnly, Frozen, PromiseRequest, PromiseResult, ServiceLevel, Snapshot
from promise.stock.schemas import PromiseHold

__all__ = [
    "ConsumerReport",
    "Health",
    "PromiseAnswer",
    "PromiseBody",
    "Readiness",
    "SnapshotInfo",
    "ValidationAnswer",
]


class PromiseBody(PromiseRequest):
    """Body of ``POST /v1/promise``: a promise request, optionally with its own snapshot."""

    snapshot: Snapshot | None = Field(
        default=None,
        description=(
            "Solve against this snapshot instead of the live one (what-if calls). Refused "
            "(422) unless the service runs with PROMISE_INLINE_SNAPSHOTS=true, and beyond "
            "PROMISE_MAX_INLINE_SNAPSHOT_NODES (500) nodes or PROMISE_MAX_INLINE_SNAPSHOT_ROWS "
            "(100,000) inventory rows."
        ),
    )
    reserve: Annotated[bool, BooleanOnly] = Field(
        default=False,
        description="Also hold the chosen option's allocation (live stock only).",
    )
    reserve_service_level: ServiceLevel | None = Field(
        default=None, description="Option to hold with reserve; default the recommended one."
    )

    def to_request(self) -> PromiseRequest:
        """The promise request without the inline snapshot (fields are already validated)."""
        return PromiseRequest.model_construct(
            **{name: getattr(self, name) for name in PromiseRequest.model_fields}
        )


class PromiseAnswer(PromiseResult):
    """Answer of ``POST /v1/promise``: the engine's result, an id and the snapshot version."""

    promise_id: uuid.UUID = Field(description="Identifies this answer in logs and follow-ups.")
    snapshot_version: str = Field(description="Version of the snapshot the answer was made on.")
    reservation: PromiseHold | None = Field(
        default=None, description="What reserve: true held, or why it could not."
    )

    @classmethod
    def from_result(cls, result: PromiseResult, *, snapshot_version: str) -> PromiseAnswer:
        """Wrap a solver result (already validated) with a fresh id."""
        fields = {name: getattr(result, name) for name in PromiseResult.model_fields}
        return cls.model_construct(
            **fields, promise_id=uuid.uuid4(), snapshot_version=snapshot_version
        )


class ValidationAnswer(Frozen):
    """Answer of ``POST /v1/promise/validate``: the body parsed and passed every limit."""

    valid: Literal[True] = True
    cart_id: str
    lines: int
    inline_snapshot: bool


class SnapshotInfo(Frozen):
    """Version and size of the live snapshot."""

    version: str
    as_of: AwareDatetime
    token: str = Field(description="Identifies the generation and content of this snapshot.")
    generation: int = Field(
        description="Counts the snapshots made live in the authority; holds record it."
    )
    digest: str = Field(description="SHA-256 of the snapshot's JSON as the authority stores it.")
    loaded_at: AwareDatetime
    nodes: int
    services: int
    items: int
    inventory_rows: int
    policies: int
    channels: tuple[str, ...]


class Health(Frozen):
    """The process is up and serving HTTP."""

    status: Literal["ok"] = "ok"
    pid: int


class ConsumerReport(Frozen):
    """How this worker's inventory-event consumer is doing (when it runs one)."""

    state: Literal["connecting", "starting", "running", "failing"]
    detail: str = Field(default="", description="The last failure, while failing.")
    lag: int | None = Field(
        default=None, description="Stream messages the durable consumer has not acknowledged."
    )
    last_batch_at: dt.datetime | None = None
    batches: int = Field(default=0, description="Batches this worker applied since it started.")


class Readiness(Frozen):
    """The worker has a warmed snapshot and takes promises."""

    status: Literal["ready"] = "ready"
    pid: int
    snapshot_version: str
    snapshot_generation: int
    loaded_at: dt.datetime
    consumer: ConsumerReport | None = Field(
        default=None,
        description="The inventory-event consumer's health, when PROMISE_EVENTS_CONSUME is on "
        "(reported only: a failing consumer does not take the worker out of rotation).",
    )
