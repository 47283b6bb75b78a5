"""API keys, the audit trail and hold limits per principal, kept in the authority.

Keys live beside stock so that every worker on every host sees the same ones; the audit trail
is written in the same transaction as the change it records, so a change is never without its
entry. Only a SHA-256 of each key's secret is stored: the secrets are 256 random bits, so a
slow password hash would add latency without adding safety.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from promise.access.records import AuditEntry, HoldUsage, KeyRecord
from promise.stock.backend import Clock, Key
from promise.stock.errors import HoldLimitError

__all__ = [
    "ACCESS_SCHEMA",
    "AccessQueries",
    "Charges",
    "SqlPrimitives",
    "where_clause",
]

T = TypeVar("T")
# Usage changes gathered in one transaction: principal -> [open holds, held units].
Charges = dict[str, list[int]]

ACCESS_SCHEMA = (
    """CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL,
        secret_sha256 TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at BIGINT,
        rate_per_s DOUBLE PRECISION,
        burst BIGINT,
        max_open_holds BIGINT,
        max_held_units BIGINT)""",
    """CREATE TABLE audit_log (
        entry_id TEXT PRIMARY KEY,
        at BIGINT NOT NULL,
        principal TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL)""",
    "CREATE INDEX audit_log_at ON audit_log (at)",
    "CREATE INDEX audit_log_principal ON audit_log (principal, at)",
    # What each principal holds, kept by every transaction that places, releases, consumes or
    # expires a hold of it; the row is locked just before the state version (always last), so
    # a principal's concurrent holds queue only for that moment and never pass its limits.
    """CREATE TABLE principal_usage (
        principal TEXT PRIMARY KEY,
        open_holds BIGINT NOT NULL DEFAULT 0,
        held_units BIGINT NOT NULL DEFAULT 0)""",
    "ALTER TABLE stock_holds ADD COLUMN principal TEXT",
    "CREATE INDEX stock_holds_principal ON stock_holds (principal, status)",
)


_KEY_COLUMNS = (
    "key_id, name, scopes, secret_sha256, created_at, created_by, revoked_at, rate_per_s, "
    "burst, max_open_holds, max_held_units"
)


def _key_of(row: Sequence[Any]) -> KeyRecord:
    """A key record from a row of ``_KEY_COLUMNS``."""
    return KeyRecord(
        key_id=str(row[0]),
        name=str(row[1]),
        scopes=tuple(str(row[2]).split()),
        secret_sha256=str(row[3]),
        created_at=int(row[4]),
        created_by=str(row[5]),
        revoked_at=None if row[6] is None else int(row[6]),
        rate_per_s=None if row[7] is None else float(row[7]),
        burst=None if row[8] is None else int(row[8]),
        max_open_holds=None if row[9] is None else int(row[9]),
        max_held_units=None if row[10] is None else int(row[10]),
    )


def where_clause(terms: Sequence[tuple[str, Sequence[Any]] | None]) -> tuple[str, list[Any]]:
    """``WHERE`` with the given conditions ANDed (None ones left out; "" for none), and params."""
    given = [term for term in terms if term is not None]
    if not given:
        return "", []
    clause = " AND ".join(condition for condition, _ in given)
    return f"WHERE {clause} ", [param for _, params in given for param in params]


class SqlPrimitives(abc.ABC):
    """The transaction primitives a SQL backend provides (see ``SqlStockBackend``)."""

    @abc.abstractmethod
    def _write(self, keys: Sequence[Key], clock: Clock, work: Callable[[Any, int], T]) -> T:
        """Run ``work(cursor, now)`` in a write transaction holding the rows of ``keys``."""

    @abc.abstractmethod
    def _read(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` in a read transaction that sees one consistent state."""

    @abc.abstractmethod
    def _sql(self, text: str) -> str:
        """The statement in the driver's placeholder style."""

    def _run(self, cur: Any, text: str, params: Sequence[Any] = ()) -> Any:
        """Execute one statement."""
        cur.execute(self._sql(text), tuple(params))
        return cur


class AccessQueries(SqlPrimitives):
    """Keys, audit entries and per-principal hold usage in the authority's database."""

    # --- audit ----------------------------------------------------------------------------

    def _audit(
        self,
        cur: Any,
        now: int,
        principal: str | None,
        *,
        action: str,
        subject: str,
        detail: Mapping[str, Any],
    ) -> None:
        """Record a change inside the transaction that makes it (no principal: no entry)."""
        if principal is None:
            return
        self._run(
            cur,
            "INSERT INTO audit_log (entry_id, at, principal, action, subject, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                str(uuid.uuid4()),
                now,
                principal,
                action,
                subject,
                json.dumps(detail, separators=(",", ":"), sort_keys=True),
            ),
        )

    def audit_trail(
        self,
        *,
        since: int | None = None,
        principal: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit entries, oldest first, filtered by time, principal and action prefix."""
        where, params = where_clause(
            [
                None if since is None else ("at >= ?", (since,)),
                None if principal is None else ("principal = ?", (principal,)),
                None if action is None else ("action LIKE ?", (action.replace("%", "") + "%",)),
            ]
        )
        params.append(limit)

        def work(cur: Any) -> list[AuditEntry]:
            rows = self._run(
                cur,
                "SELECT entry_id, at, principal, action, subject, detail FROM audit_log "  # noqa: S608 - only constant clauses and ? markers
                f"{where}ORDER BY at, entry_id LIMIT ?",
                params,
            ).fetchall()
            return [
                AuditEntry(
                    entry_id=str(r[0]),
                    at=int(r[1]),
                    principal=str(r[2]),
                    action=str(r[3]),
                    subject=str(r[4]),
                    detail=json.loads(r[5]),
                )
                for r in rows
            ]

        return self._read(work)

    # --- keys -----------------------------------------------------------------------------

    def create_key(self, record: KeyRecord, clock: Clock) -> KeyRecord:
        """Store a new key and its audit entry; the record with the authority's time."""

        def work(cur: Any, now: int) -> KeyRecord:
            stored = dataclasses.replace(record, created_at=now)
            self._run(
                cur,
                f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant column list
                (
                    stored.key_id,
                    stored.name,
                    " ".join(stored.scopes),
                    stored.secret_sha256,
                    now,
                    stored.created_by,
                    None,
                    stored.rate_per_s,
                    stored.burst,
                    stored.max_open_holds,
                    stored.max_held_units,
                ),
            )
            self._audit(
                cur,
                now,
                stored.created_by,
                action="key.create",
                subject=stored.key_id,
                detail={"name": stored.name, "scopes": list(stored.scopes)},
            )
            return stored

        return self._write([], clock, work)

    def _key(self, cur: Any, key_id: str) -> KeyRecord | None:
        """The key with this id in the open transaction."""
        row = self._run(
            cur,
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?",  # noqa: S608 - constant column list
            (key_id,),
        ).fetchone()
        return None if row is None else _key_of(row)

    def key(self, key_id: str) -> KeyRecord | None:
        """The key with this id, revoked or not (None when there is none)."""
        return self._read(lambda cur: self._key(cur, key_id))

    def keys(self) -> list[KeyRecord]:
        """Every key, oldest first."""

        def work(cur: Any) -> list[KeyRecord]:
            rows = self._run(
                cur,
                f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id",  # noqa: S608 - constant column list
            ).fetchall()
            return [_key_of(row) for row in rows]

        return self._read(work)

    def revoke_key(self, key_id: str, actor: str, clock: Clock) -> KeyRecord | None:
        """Revoke a key (a revoked one stays revoked as it was); None when unknown."""

        def work(cur: Any, now: int) -> KeyRecord | None:
            self._run(
                cur,
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (now, key_id),
            )
            if cur.rowcount == 1:
                self._audit(cur, now, actor, action="key.revoke", subject=key_id, detail={})
            return self._key(cur, key_id)

        return self._write([], clock, work)

    # --- hold usage -----------------------------------------------------------------------

    def _charge(
        self,
        cur: Any,
        principal: str,
        holds: int,
        units: int,
        *,
        max_open_holds: int | None = None,
        max_held_units: int | None = None,
    ) -> HoldUsage:
        """Add to a principal's usage; over a given limit, raise (the transaction rolls back)."""
        self._run(
            cur,
            "INSERT INTO principal_usage (principal) VALUES (?) ON CONFLICT (principal) DO NOTHING",
            (principal,),
        )
        row = self._run(
            cur,
            "UPDATE principal_usage SET open_holds = open_holds + ?, held_units = held_units + ? "
            "WHERE principal = ? RETURNING open_holds, held_units",
            (holds, units, principal),
        ).fetchone()
        usage = HoldUsage(open_holds=int(row[0]), held_units=int(row[1]))
        if max_open_holds is not None and holds > 0 and usage.open_holds > max_open_holds:
            raise HoldLimitError(
                f"this caller has {usage.open_holds - holds} open holds; its limit is "
                f"{max_open_holds}: release some, or let them be consumed, first"
            )
        if max_held_units is not None and units > 0 and usage.held_units > max_held_units:
            raise HoldLimitError(
                f"this caller holds {usage.held_units - units} units and asks for {units} more; "
                f"its limit is {max_held_units}"
            )
        return usage

    def _settle(self, cur: Any, charges: Charges) -> None:
        """Apply the usage changes a transaction gathered, in principal order (lock order)."""
        for principal in sorted(charges):
            holds, units = charges[principal]
            if holds or units:
                self._charge(cur, principal, holds, units)

    def usage(self, principal: str) -> HoldUsage:
        """What a principal holds now (lapsed soft holds count until the sweeper expires them)."""

        def work(cur: Any) -> HoldUsage:
            row = self._run(
                cur,
                "SELECT open_holds, held_units FROM principal_usage WHERE principal = ?",
                (principal,),
            ).fetchone()
            return HoldUsage(0, 0) if row is None else HoldUsage(int(row[0]), int(row[1]))

        return self._read(work)
