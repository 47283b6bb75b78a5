"""Fixtures of the event backbone tests: the NATS server and streams of each test's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from promise.events.config import EventSettings
from tests.events.events_cases import dropped_after, nats_url, stream_settings
from tests.stock.conftest import open_store, pg_dsn, store_settings  # noqa: F401 - shared store fixtures


@pytest.fixture(scope="session")
def nats() -> str:
    """The local NATS server's URL (skips or fails when unreachable)."""
    return nats_url()


@pytest.fixture
def streams(nats: str) -> Iterator[EventSettings]:
    """Event settings whose streams and consumer are this test's, deleted after it."""
    with dropped_after(stream_settings(nats)) as settings:
        yield settings
