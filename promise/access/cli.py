"""``promise keys create | list | revoke``, ``promise audit`` and the development key.

The commands talk to the authority directly (the database of ``PROMISE_DATABASE_URL``, else
the embedded one under ``--data-dir``), so an operator can make the first admin key before any
caller exists; each change is audited under ``cli:<user>``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promise.access.keys import key_id_of, make_key
from promise.access.principal import Limits, Scope
from promise.cli_options import data_dir_option, instant

if TYPE_CHECKING:
    from promise.access.schemas import KeyView
    from promise.stock.sql import StockBackend

__all__ = ["DEV_KEY_FILE", "actor_name", "development_key", "register"]

DEV_KEY_FILE = "dev-api-key"


def actor_name() -> str:
    """Who runs the command, as audit entries name them."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _backend(args: argparse.Namespace) -> StockBackend:
    """The authority the settings name."""
    # Imported here: the stock service pulls in the metrics registry, which `promise serve`
    # must configure before any import of it (see promise.cli).
    from promise.stock.config import StockSettings  # noqa: PLC0415
    from promise.stock.connect import open_backend  # noqa: PLC0415

    return open_backend(StockSettings.from_env(data_dir=args.data_dir))


def _scope(text: str) -> Scope:
    """A role name from the command line."""
    try:
        return Scope(text)
    except ValueError as exc:
        names = ", ".join(scope.value for scope in Scope)
        raise argparse.ArgumentTypeError(f"unknown role {text!r}; roles: {names}") from exc


def _print_keys(views: list[KeyView], as_json: bool) -> None:
    """Keys as JSON lines or a table."""
    if as_json:
        for view in views:
            sys.stdout.write(view.model_dump_json() + "\n")
        return
    sys.stdout.write(f"{'key id':16}  {'state':8}  {'roles':32}  name\n")
    for view in views:
        state = "revoked" if view.revoked_at else "active"
        sys.stdout.write(f"{view.key_id:16}  {state:8}  {' '.join(view.scopes):32}  {view.name}\n")


def _keys_create(args: argparse.Namespace) -> int:
    """Make a key and print it once."""
    from promise.stock.backend import utc_now  # noqa: PLC0415 - see _backend

    made = make_key(
        args.name,
        args.scope,
        created_by=actor_name(),
        limits=Limits(
            rate_per_s=args.rate,
            burst=args.burst,
            max_open_holds=args.max_open_holds,
            max_held_units=args.max_held_units,
        ),
    )
    backend = _backend(args)
    try:
        stored = backend.create_key(made.record, utc_now)
    finally:
        backend.close()
    sys.stderr.write(
        f"made key {stored.key_id} ({' '.join(stored.scopes)}); it is shown once, store it now\n"
    )
    sys.stdout.write(made.plaintext + "\n")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    """List every key."""
    from promise.access.schemas import KeyView, key_view  # noqa: PLC0415

    backend = _backend(args)
    try:
        records = backend.keys()
    finally:
        backend.close()
    _print_keys([KeyView.model_validate(key_view(r)) for r in records], args.json)
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    """Revoke a key by id (or by the key itself)."""
    from promise.access.schemas import KeyView, key_view  # noqa: PLC0415
    from promise.stock.backend import utc_now  # noqa: PLC0415 - see _backend

    parts = key_id_of(args.key)
    key_id = parts[0] if parts is not None else args.key
    backend = _backend(args)
    try:
        record = backend.revoke_key(key_id, actor_name(), utc_now)
    finally:
        backend.close()
    if record is None:
        sys.stderr.write(f"promise keys revoke: no key {key_id!r}\n")
        return 1
    _print_keys([KeyView.model_validate(key_view(record))], args.json)
    return 0


def _audit(args: argparse.Namespace) -> int:
    """Print audit entries as JSON lines, oldest first."""
    from promise.access.schemas import audit_view  # noqa: PLC0415
    from promise.stock.backend import to_us  # noqa: PLC0415 - see _backend

    backend = _backend(args)
    try:
        entries = backend.audit_trail(
            since=None if args.since is None else to_us(args.since),
            principal=args.principal,
            action=args.action,
            limit=args.limit,
        )
    finally:
        backend.close()
    for entry in entries:
        sys.stdout.write(audit_view(entry).model_dump_json() + "\n")
    return 0


def development_key(backend: StockBackend, data_dir: Path) -> str:
    """The local development key (every role), made on first use and kept in the data dir.

    A kept key that the authority no longer knows, or that was revoked, is replaced.
    """
    from promise.stock.backend import utc_now  # noqa: PLC0415 - see _backend

    path = data_dir / DEV_KEY_FILE
    if path.is_file():
        kept = path.read_text(encoding="utf-8").strip()
        parts = key_id_of(kept)
        record = None if parts is None else backend.key(parts[0])
        if record is not None and record.revoked_at is None:
            return kept
    made = make_key("local development", Scope, created_by=actor_name())
    backend.create_key(made.record, utc_now)
    # Only its owner may read it: it is a credential with every role.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(made.plaintext + "\n")
    return made.plaintext


def register(subparsers: Any) -> None:
    """Add ``keys`` and ``audit`` to ``subparsers`` (from ``add_subparsers``)."""
    keys = subparsers.add_parser("keys", help="make, list and revoke API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="make a key; it is printed once")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument(
        "--scope",
        type=_scope,
        action="append",
        required=True,
        help="a role (promise, reserve, inventory, admin, analyst); repeat for several",
    )
    create.add_argument("--rate", type=float, help="requests per second (default: the service's)")
    create.add_argument("--burst", type=int, help="requests at once above the rate")
    create.add_argument("--max-open-holds", type=int, help="open holds at once")
    create.add_argument("--max-held-units", type=int, help="units held at once")
    create.set_defaults(handler=_keys_create)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true", help="JSON lines")
    listing.set_defaults(handler=_keys_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key", help="the key id (or the key itself)")
    revoke.add_argument("--json", action="store_true", help="JSON lines")
    revoke.set_defaults(handler=_keys_revoke)
    for parser in (create, listing, revoke):
        data_dir_option(parser)

    audit = subparsers.add_parser("audit", help="print the audit trail as JSON lines")
    audit.add_argument("--since", type=instant, help="from this ISO 8601 instant")
    audit.add_argument("--principal", help="one principal, e.g. key:0123abcd4567ef89")
    audit.add_argument("--action", help="an action or its prefix, e.g. hold. or snapshot.swap")
    audit.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    data_dir_option(audit)
    audit.set_defaults(handler=_audit)
