"""How inventory events change the stock of one (node, SKU): the rules, free of storage.

The state of a row is ``(count_seq, count_value, delta_sum)``:

- a **count** (absolute on hand) whose ``seq`` is after the last applied count's becomes the
  new base: ``count_seq = seq``, ``count_value = quantity``, and ``delta_sum`` is recomputed as
  the sum of every recorded delta with a ``seq`` after it (deltas that arrived early keep
  counting; deltas before it are already in the count). A count whose ``seq`` is not after the
  last applied count's is recorded as **stale** and not applied;
- a **delta** (receipt, sale, shipment, adjustment, transfers) with ``seq`` after the last
  applied count is added to ``delta_sum``; one with ``seq`` at or before it is already
  reflected in that count, so it is recorded as **stale** and not applied;
- on hand = ``count_value`` (or the snapshot's on hand while the row has no count) +
  ``delta_sum``, shown floored at 0 (a sale recorded before the receipt it depended on must
  not make a domain row invalid).

So the state is a function of the *set* of recorded events, never of their arrival order:
applying a stream shuffled, with duplicates, or twice gives the state of the clean stream
applied once in order. Only the outcome reported for a late delta (applied or stale) depends on
whether its count had arrived yet.

In-transit events add a lot (keyed by their event_id); a receipt or transfer_in naming that
lot in ``lot_id`` closes it, whichever arrives first.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

from promise.stock.schemas import EventOutcome, EventType, InventoryEvent

__all__ = ["CountState", "after", "digest", "judge"]


@dataclasses.dataclass(frozen=True, slots=True)
class CountState:
    """Event-derived on-hand state of one (node, SKU)."""

    count_seq: int | None = None
    count_value: int = 0
    delta_sum: int = 0

    def on_hand(self, baseline: int) -> int:
        """Units on hand given the snapshot's on hand (unfloored: may be negative)."""
        base = baseline if self.count_seq is None else self.count_value
        return base + self.delta_sum


def judge(event: InventoryEvent, state: CountState) -> tuple[EventOutcome, str | None]:
    """Whether a new (not duplicate) event applies to ``state`` or is stale, and why."""
    if event.type is EventType.IN_TRANSIT:
        return EventOutcome.APPLIED, None
    last = state.count_seq
    if last is not None and event.seq <= last:
        what = "count" if event.type is EventType.COUNT else "delta"
        return (
            EventOutcome.STALE,
            f"{what} with seq {event.seq} is not after the last applied count (seq {last}): "
            "already reflected in it",
        )
    return EventOutcome.APPLIED, None


def after(
    event: InventoryEvent, state: CountState, deltas_after: Callable[[int], int]
) -> CountState:
    """State once an applied event is in; ``deltas_after(seq)`` sums recorded deltas after seq."""
    if event.type is EventType.COUNT:
        return CountState(
            count_seq=event.seq, count_value=event.quantity, delta_sum=deltas_after(event.seq)
        )
    delta = event.delta
    if delta is None:
        return state
    return dataclasses.replace(state, delta_sum=state.delta_sum + delta)


def digest(event: InventoryEvent) -> str:
    """Fingerprint of an event's content, to tell a retry from a reused event_id."""
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()[:32]
