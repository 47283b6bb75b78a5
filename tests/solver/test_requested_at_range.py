"""Order instants the calendar cannot reach are refused as a request error, never a crash."""

from __future__ import annotations

import datetime as dt

import pytest

from scenarios import demo_snapshot, generate_carts
from solver import solve
from solver.errors import InvalidRequestError


@pytest.mark.parametrize(
    "requested_at",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),  # once an OverflowError in the dispatch calendar
        dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.UTC),
    ],
)
def test_requested_at_far_from_today_is_an_invalid_request(requested_at: dt.datetime) -> None:
    """A request at year 1 or 9999 names requested_at as the field at fault."""
    snapshot = demo_snapshot()
    request = generate_carts(snapshot, count=1, seed=3, lines=2)[0]
    with pytest.raises(InvalidRequestError) as refused:
        solve(request.model_copy(update={"requested_at": requested_at}), snapshot)
    assert refused.value.field == ("requested_at",)


def test_requested_at_inside_the_range_is_answered() -> None:
    """The range still admits any plausible checkout instant."""
    snapshot = demo_snapshot()
    request = generate_carts(snapshot, count=1, seed=3, lines=2)[0]
    when = dt.datetime(2199, 6, 1, tzinfo=dt.UTC)
    result = solve(request.model_copy(update={"requested_at": when}), snapshot)
    assert result.requested_at == when
