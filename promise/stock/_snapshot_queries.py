"""The live snapshot in the authority: bodies stored once per digest, one row per generation.

The live generation is the 'snapshot' counter of ``stock_meta``, read in the same statement as
the stock version; holds and events record the generation they were judged under.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from promise.stock._rows import Cursor, RowQueries
from promise.stock.backend import Clock, LivePointer, snapshot_digest
from promise.stock.outbox import ALL_NODES, Change

__all__ = ["RETAINED_SNAPSHOTS", "SnapshotQueries"]

# Snapshot bodies of this many latest generations are kept (a live one is never dropped).
RETAINED_SNAPSHOTS = 8


class SnapshotQueries(RowQueries):
    """Storing a snapshot's JSON, making it live and loading the live one."""

    @staticmethod
    def _pointer_of(row: Sequence[Any]) -> LivePointer:
        """A pointer from a ``snapshot_history`` row."""
        return LivePointer(
            generation=int(row[0]),
            digest=str(row[1]),
            version=str(row[2]),
            made_live_at=int(row[3]),
            origin=str(row[4]),
        )

    def _pointer(self, cur: Cursor, generation: int) -> LivePointer | None:
        """The history row of ``generation`` (None for generation 0)."""
        row = self._run(
            cur,
            "SELECT generation, digest, version, made_live_at, origin FROM snapshot_history "
            "WHERE generation = ?",
            (generation,),
        ).fetchone()
        return None if row is None else self._pointer_of(row)

    def load_live_snapshot(self) -> tuple[LivePointer, bytes] | None:
        """The live snapshot's pointer and JSON, read together (None before the first)."""

        def work(cur: Cursor) -> tuple[LivePointer, bytes] | None:
            pointer = self._pointer(cur, self._live_generation(cur, ""))
            if pointer is None:
                return None
            row = self._run(
                cur, "SELECT body FROM snapshot_bodies WHERE digest = ?", (pointer.digest,)
            ).fetchone()
            return pointer, zlib.decompress(bytes(row[0]))

        return self._read(work)

    def publish_snapshot(
        self,
        body: bytes,
        version: str,
        origin: str,
        clock: Clock,
        *,
        only_if_none: bool = False,
        actor: str | None = None,
    ) -> LivePointer:
        """Store a snapshot's JSON and make it live as the next generation; the live pointer.

        With ``only_if_none`` the snapshot is made live only when none is (start-up seeding)
        and the pointer returned is whichever is live after the call.
        """
        digest = snapshot_digest(body)
        packed = zlib.compress(body, 6)  # outside the transaction: it takes a while

        def work(cur: Cursor, now: int) -> LivePointer:
            current = self._live_generation(cur, self.for_update)
            if only_if_none and current > 0:
                pointer = self._pointer(cur, current)
                assert pointer is not None
                return pointer
            self._run(
                cur,
                "INSERT INTO snapshot_bodies (digest, version, body, raw_bytes, stored_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING",
                (digest, version, packed, len(body), now),
            )
            pointer = LivePointer(current + 1, digest, version, now, origin)
            self._run(
                cur,
                "INSERT INTO snapshot_history (generation, digest, version, made_live_at, origin) "
                "VALUES (?, ?, ?, ?, ?)",
                (pointer.generation, digest, version, now, origin),
            )
            self._run(
                cur,
                "UPDATE stock_meta SET value = ? WHERE key = 'snapshot'",
                (pointer.generation,),
            )
            # Bodies no recent generation names go; the history rows stay as the audit trail.
            self._run(
                cur,
                "DELETE FROM snapshot_bodies WHERE digest NOT IN (SELECT digest FROM "
                "snapshot_history WHERE generation > ?)",
                (pointer.generation - RETAINED_SNAPSHOTS,),
            )
            self._record(
                cur,
                now,
                [
                    Change(
                        kind="snapshot",
                        node_id=ALL_NODES,
                        msg_id=f"snapshot:{pointer.generation}",
                        body={
                            "snapshot": {
                                "generation": pointer.generation,
                                "version": version,
                                "digest": digest,
                                "origin": origin,
                            }
                        },
                    )
                ],
            )
            self._audit(
                cur,
                now,
                actor,
                action="snapshot.swap",
                subject=str(pointer.generation),
                detail={"version": version, "digest": digest, "bytes": len(body), "origin": origin},
            )
            return pointer

        return self._write((), clock, work)
