"""One migration runner for every store: DuckDB scenarios, SQLite and PostgreSQL live stock.

A store's schema is a numbered list of :class:`Migration` s. The runner records each applied
number in a ``schema_version`` table and applies the pending ones in order, each in its own
transaction, so a migration is either wholly in or wholly out. It refuses a store whose
version is newer than the code (an older binary must not write a newer schema).

Concurrency is the caller's half of the contract: it runs :func:`migrate` while holding the
store's own exclusive lock (a file lock for SQLite, a session advisory lock for PostgreSQL;
DuckDB lets one process write a file), so servers started at the same instant migrate once
and the rest find the work done. Migrations are written so that the first one also adopts a
store created before the runner existed (``CREATE ... IF NOT EXISTS``).
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = [
    "Migration",
    "MigrationError",
    "MigrationSession",
    "StatementSession",
    "migrate",
    "schema_version",
]

log = logging.getLogger(__name__)

VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version "
    "(version INTEGER PRIMARY KEY, applied TIMESTAMPTZ NOT NULL)"
)


class MigrationError(RuntimeError):
    """The store's schema cannot be brought to this code's version."""


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change: statements run in one transaction."""

    number: int
    summary: str
    statements: tuple[str, ...]


class MigrationSession(Protocol):
    """A connection of the store being migrated, as the runner drives it."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (empty for statements without rows)."""
        ...

    def begin(self) -> None:
        """Start a transaction."""
        ...

    def commit(self) -> None:
        """Commit the open transaction."""
        ...

    def rollback(self) -> None:
        """Roll back the open transaction."""
        ...


class StatementSession(abc.ABC):
    """A session whose transactions are plain SQL statements; a driver adapter runs them."""

    begin_statement = "BEGIN"

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (empty for statements without rows)."""

    def begin(self) -> None:
        """Start a transaction."""
        self.execute(self.begin_statement)

    def commit(self) -> None:
        """Commit the open transaction."""
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction."""
        self.execute("ROLLBACK")


def _check_numbers(migrations: Sequence[Migration]) -> None:
    """Migrations are numbered 1, 2, ... in order: a gap or a repeat is a coding error."""
    numbers = [m.number for m in migrations]
    if numbers != list(range(1, len(migrations) + 1)):
        raise MigrationError(f"migrations must be numbered 1..{len(migrations)}, got {numbers}")


def schema_version(session: MigrationSession) -> int:
    """The highest migration recorded in the store (0 for a store without the table)."""
    session.begin()
    try:
        session.execute(VERSION_TABLE)
        rows = session.execute("SELECT coalesce(max(version), 0) FROM schema_version")
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return int(rows[0][0])


def migrate(
    session: MigrationSession,
    migrations: Sequence[Migration],
    *,
    store: str,
    upto: int | None = None,
) -> int:
    """Apply the pending migrations (up to ``upto``) under the caller's lock; the new version."""
    _check_numbers(migrations)
    current = schema_version(session)
    if current > len(migrations):
        raise MigrationError(
            f"{store} schema version {current} is newer than this code knows ({len(migrations)})"
        )
    target = len(migrations) if upto is None else upto
    for migration in migrations[current:target]:
        session.begin()
        try:
            for statement in migration.statements:
                session.execute(statement)
            session.execute(
                "INSERT INTO schema_version (version, applied) VALUES (?, ?)",
                (migration.number, dt.datetime.now(dt.UTC).isoformat()),
            )
            session.commit()
        except BaseException:
            session.rollback()
            raise
        log.info(
            "schema migrated",
            extra={
                "store": store,
                "schema_version": migration.number,
                "summary": migration.summary,
            },
        )
    return max(current, target)
