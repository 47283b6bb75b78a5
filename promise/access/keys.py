"""API keys: how they look, how they are made, and how a presented one is checked.

A key reads ``pe_<key id>_<secret>``: the id (16 hex digits) finds the stored record, the
secret (256 random bits, URL-safe base64) proves possession. The authority stores only the
secret's SHA-256, so its database leaks no usable key; a fast hash is enough because the
secret is random, not a password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from promise.access.principal import Limits, Principal, Scope
from promise.access.records import KeyRecord

__all__ = [
    "KEY_PREFIX",
    "NewKey",
    "key_id_of",
    "key_principal",
    "make_key",
    "matches",
    "principal_of",
    "secret_digest",
]

KEY_PREFIX = "pe_"
_ID_HEX = 16
_SECRET_BYTES = 32
# Longer than any key this module makes, so a megabyte header is refused before hashing.
MAX_KEY_LENGTH = 128


class NewKey:
    """A freshly made key: the record to store and the plaintext, shown to its owner once."""

    __slots__ = ("plaintext", "record")

    def __init__(self, plaintext: str, record: KeyRecord) -> None:
        """Keep both halves."""
        self.plaintext = plaintext
        self.record = record


def secret_digest(secret: str) -> str:
    """The stored form of a key's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def make_key(
    name: str,
    scopes: Iterable[Scope],
    *,
    created_by: str,
    limits: Limits | None = None,
) -> NewKey:
    """A new random key with ``scopes`` (created_at is set by the authority when stored)."""
    key_id = secrets.token_hex(_ID_HEX // 2)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    limits = limits or Limits()
    record = KeyRecord(
        key_id=key_id,
        name=name,
        scopes=tuple(sorted({scope.value for scope in scopes})),
        secret_sha256=secret_digest(secret),
        created_at=0,
        created_by=created_by,
        rate_per_s=limits.rate_per_s,
        burst=limits.burst,
        max_open_holds=limits.max_open_holds,
        max_held_units=limits.max_held_units,
    )
    return NewKey(f"{KEY_PREFIX}{key_id}_{secret}", record)


def key_id_of(presented: str) -> tuple[str, str] | None:
    """The (key id, secret) of a presented key, or None when it is not shaped like one."""
    if len(presented) > MAX_KEY_LENGTH or not presented.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = presented[len(KEY_PREFIX) :].partition("_")
    if not sep or len(key_id) != _ID_HEX or not secret:
        return None
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret


def matches(record: KeyRecord, secret: str) -> bool:
    """Whether ``secret`` is the record's (in constant time)."""
    return hmac.compare_digest(record.secret_sha256, secret_digest(secret))


def key_principal(key_id: str) -> str:
    """The principal id of a key (what holds and audit entries record)."""
    return f"key:{key_id}"


def principal_of(record: KeyRecord) -> Principal:
    """The principal a stored key authenticates as."""
    known = {scope.value for scope in Scope}
    return Principal(
        id=key_principal(record.key_id),
        kind="key",
        scopes=frozenset(Scope(s) for s in record.scopes if s in known),
        name=record.name,
        limits=Limits.of(record),
    )
