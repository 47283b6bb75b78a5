"""A PostgreSQL schema of its own for one test or benchmark run.

Only psycopg is needed (no test tools), so the benchmarks use it too.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg

__all__ = ["temporary_schema"]


@contextlib.contextmanager
def temporary_schema(dsn: str, *, prefix: str) -> Iterator[str]:
    """A fresh schema on ``dsn`` for a test or benchmark run: the DSN that uses it, dropped after.

    Runs sharing one database stay apart, and nothing they wrote outlives them.
    """
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield psycopg.conninfo.make_conninfo(dsn, options=f"-csearch_path={name}")
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
