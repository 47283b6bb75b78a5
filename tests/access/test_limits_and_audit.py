"""What a caller may do with its roles: hold limits, ownership, rate, and the audit trail."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from promise.access.principal import Limits, Scope
from promise.app import create_app
from promise.settings import Settings
from promise.stock import StockSettings
from tests.auth import bearer, grant
from tests.promise.promise_helpers import (
    PROBLEM_MEDIA_TYPE,
    TINY_SKU,
    tiny_body,
    tiny_event,
    tiny_snapshot,
)

ROOT = Path(__file__).resolve().parents[2]


def _app(data_dir: Path, **overrides: object) -> Litestar:
    """An app on tiny-v1 (10 units of TINY_SKU at CHI) that re-reads keys at once."""
    settings = Settings.from_env({}, data_dir=data_dir, auth_key_cache_s=0, **overrides)
    return create_app(
        settings,
        initial_snapshot=lambda: tiny_snapshot("tiny-v1"),
        stock_settings=StockSettings(data_dir=data_dir, max_hold_ttl_s=3600),
    )


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Litestar, TestClient[Any]]]:
    """A started app and its client (no credential of its own)."""
    application = _app(tmp_path / "data")
    with TestClient(application) as client:
        yield application, client


def _hold(client: TestClient[Any], key: str, quantity: int, **fields: Any) -> Any:
    """POST one hold of TINY_SKU at CHI under a new Idempotency-Key."""
    body = {
        "lines": [{"node_id": "CHI", "sku": TINY_SKU, "quantity": quantity}],
        "channel": "web",
        **fields,
    }
    headers = {**bearer(key), "Idempotency-Key": str(uuid.uuid4())}
    return client.post("/v1/reservations", json=body, headers=headers)


def _problem(response: Any, status: int, kind: str) -> dict[str, Any]:
    """A problem document of ``status`` and ``kind``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    problem: dict[str, Any] = response.json()
    assert problem["type"].endswith(":" + kind), problem
    return problem


def test_hoarding_needs_the_reserve_role_and_stops_at_the_callers_limit(
    app: tuple[Litestar, TestClient[Any]],
) -> None:
    """No key: 401; promise role: 403; a reserve key stops at its unit and hold limits."""
    application, client = app
    body = {"lines": [{"node_id": "CHI", "sku": TINY_SKU, "quantity": 10}], "channel": "web"}
    anonymous = client.post("/v1/reservations", json=body, headers={"Idempotency-Key": "h"})
    _problem(anonymous, 401, "unauthenticated")
    _problem(_hold(client, grant(application, Scope.PROMISE), 10), 403, "forbidden")
    capped = grant(application, Scope.RESERVE, limits=Limits(max_held_units=4, max_open_holds=3))
    assert _hold(client, capped, 3).status_code == 201
    problem = _problem(_hold(client, capped, 2), 409, "hold-limit")
    assert "4" in problem["detail"]
    assert _hold(client, capped, 1).status_code == 201  # 4 units: exactly the limit
    # The rest of the stock stays promisable to others.
    other = grant(application, Scope.RESERVE)
    assert _hold(client, other, 6).status_code == 201
    # Nothing is left: the next refusal is about stock, not about the caller's limit.
    _problem(_hold(client, other, 1), 409, "insufficient-stock")


def test_a_promise_over_the_callers_hold_limit_answers_without_a_hold(
    app: tuple[Litestar, TestClient[Any]],
) -> None:
    """reserve: true past the caller's limit: the promise stands, held false says why.

    It once answered an undocumented 409 and dropped the promise with it.
    """
    application, client = app
    key = grant(application, Scope.RESERVE, limits=Limits(max_held_units=1))
    answer = client.post(
        "/v1/promise", json={**tiny_body(quantity=2), "reserve": True}, headers=bearer(key)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["options"]
    hold = answer.json()["reservation"]
    assert hold["held"] is False
    assert "limit is 1" in hold["detail"]
    # Within the limit the same promise is held.
    within = client.post(
        "/v1/promise", json={**tiny_body(quantity=1), "reserve": True}, headers=bearer(key)
    )
    assert within.json()["reservation"]["held"] is True, within.text


def test_open_hold_limit_counts_holds_and_a_release_frees_one(
    app: tuple[Litestar, TestClient[Any]],
) -> None:
    """With max_open_holds 2 the third hold is refused until one of the two is released."""
    application, client = app
    key = grant(application, Scope.RESERVE, limits=Limits(max_open_holds=2))
    first = _hold(client, key, 1).json()["reservation_id"]
    assert _hold(client, key, 1).status_code == 201
    _problem(_hold(client, key, 1), 409, "hold-limit")
    released = client.post(f"/v1/reservations/{first}/release", headers=bearer(key))
    assert released.status_code == 200, released.text
    assert _hold(client, key, 1).status_code == 201


def test_a_hold_longer_than_the_maximum_ttl_is_refused(
    app: tuple[Litestar, TestClient[Any]],
) -> None:
    """ttl_s above max_hold_ttl_s is a 422 naming ttl_s; at the maximum it is held."""
    application, client = app
    key = grant(application, Scope.RESERVE)
    problem = _problem(_hold(client, key, 1, ttl_s=7 * 86400), 422, "stock-request")
    assert [e["field"] for e in problem["errors"]] == ["ttl_s"]
    assert _hold(client, key, 1, ttl_s=3600).status_code == 201


def test_swap_and_zeroing_need_their_roles(app: tuple[Litestar, TestClient[Any]]) -> None:
    """A snapshot swap needs admin, inventory events need inventory: else 403, nothing changes."""
    application, client = app
    checkout = bearer(grant(application, Scope.PROMISE, Scope.RESERVE))
    swap = client.put(
        "/v1/snapshot",
        content=tiny_snapshot("tiny-v2").model_dump_json(),
        headers={**checkout, "Content-Type": "application/json"},
    )
    _problem(swap, 403, "forbidden")
    zero = {"events": [tiny_event(event_id="z", type="count", quantity=0)]}
    _problem(client.post("/v1/inventory/events", json=zero, headers=checkout), 403, "forbidden")
    answer = client.post("/v1/promise", json=tiny_body(), headers=checkout)
    assert answer.json()["snapshot_version"] == "tiny-v1"
    assert answer.json()["options"][0]["shipments"][0]["node_id"] == "CHI"


def test_a_text_plain_post_is_415_for_a_caller_and_401_for_a_stranger(
    app: tuple[Litestar, TestClient[Any]],
) -> None:
    """Content types are checked after the credential: strangers learn nothing more."""
    application, client = app
    text = {"Content-Type": "text/plain"}
    payload = '{"events": []}'
    _problem(
        client.post("/v1/inventory/events", content=payload, headers=text), 401, "unauthenticated"
    )
    inventory = bearer(grant(application, Scope.INVENTORY))
    answer = client.post("/v1/inventory/events", content=payload, headers={**text, **inventory})
    assert answer.status_code == 415


def test_holds_belong_to_their_principal(app: tuple[Litestar, TestClient[Any]]) -> None:
    """Another reserve key neither sees nor changes a hold (404); an admin may; keys per caller."""
    application, client = app
    owner, stranger = grant(application, Scope.RESERVE), grant(application, Scope.RESERVE)
    made = _hold(client, owner, 1).json()
    hold_id = made["reservation_id"]
    assert made["principal"].startswith("key:")
    for path in (f"/v1/reservations/{hold_id}", f"/v1/reservations/{hold_id}/release"):
        method = client.get if path.endswith(hold_id) else client.post
        _problem(method(path, headers=bearer(stranger)), 404, "reservation-not-found")
    admin = bearer(grant(application, Scope.ADMIN, Scope.RESERVE))
    assert client.post(f"/v1/reservations/{hold_id}/confirm", headers=admin).status_code == 200
    # One Idempotency-Key used by two callers: two holds, neither replays the other's.
    body = {"lines": [{"node_id": "CHI", "sku": TINY_SKU, "quantity": 1}], "channel": "web"}
    same = {"Idempotency-Key": "shared-key"}
    first = client.post("/v1/reservations", json=body, headers={**bearer(owner), **same})
    second = client.post("/v1/reservations", json=body, headers={**bearer(stranger), **same})
    assert first.status_code == second.status_code == 201
    assert first.json()["reservation_id"] != second.json()["reservation_id"]


def test_a_caller_over_its_rate_gets_429_with_retry_after(tmp_path: Path) -> None:
    """Burst 3 at 0.5/s: three answers, then 429 with Retry-After ≥ 1; other callers unaffected."""
    application = _app(tmp_path / "data")
    with TestClient(application) as client:
        slow = bearer(grant(application, Scope.PROMISE, limits=Limits(rate_per_s=0.5, burst=3)))
        codes = [client.post("/v1/promise/validate", json=tiny_body(), headers=slow).status_code]
        codes += [
            client.post("/v1/promise/validate", json=tiny_body(), headers=slow).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 200, 429]
        limited = client.post("/v1/promise/validate", json=tiny_body(), headers=slow)
        _problem(limited, 429, "rate-limited")
        assert int(limited.headers["retry-after"]) >= 1
        other = bearer(grant(application, Scope.PROMISE))
        assert (
            client.post("/v1/promise/validate", json=tiny_body(), headers=other).status_code == 200
        )


def test_a_revoked_key_is_refused_and_the_trail_says_who_did_what(
    app: tuple[Litestar, TestClient[Any]],
) -> None:
    """Keys made and revoked over HTTP; holds, events and swaps audited under their principal."""
    application, client = app
    admin = bearer(grant(application, Scope.ADMIN, Scope.INVENTORY, Scope.RESERVE))
    made = client.post("/v1/keys", json={"name": "pos", "scopes": ["reserve"]}, headers=admin)
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["key_id"]
    assert key not in client.get("/v1/keys", headers=admin).text  # never listed again
    hold = _hold(client, key, 1).json()["reservation_id"]
    assert client.post(f"/v1/reservations/{hold}/release", headers=bearer(key)).status_code == 200
    events = {"events": [tiny_event(event_id="a1")]}
    assert client.post("/v1/inventory/events", json=events, headers=admin).status_code == 200
    swap = client.put(
        "/v1/snapshot",
        content=tiny_snapshot("tiny-v2").model_dump_json(),
        headers={**admin, "Content-Type": "application/json"},
    )
    assert swap.status_code == 200, swap.text
    revoked = client.post(f"/v1/keys/{key_id}/revoke", headers=admin)
    assert revoked.json()["revoked_at"] is not None
    _problem(_hold(client, key, 1), 401, "unauthenticated")
    trail = client.get("/v1/audit", headers=admin).json()["entries"]
    actions = [(e["action"], e["principal"]) for e in trail]
    principal = f"key:{key_id}"
    # The admin made the key over HTTP: that entry names it.
    admin_principal = next(
        e["principal"] for e in trail if e["action"] == "key.create" and e["subject"] == key_id
    )
    assert ("hold.create", principal) in actions
    assert ("hold.release", principal) in actions
    assert ("events.apply", admin_principal) in actions
    assert ("snapshot.swap", admin_principal) in actions
    assert ("key.revoke", admin_principal) in actions
    swap_entry = next(e for e in trail if e["action"] == "snapshot.swap")
    assert swap_entry["detail"]["version"] == "tiny-v2"
    only_holds = client.get(
        "/v1/audit", params={"action": "hold.", "principal": principal}, headers=admin
    ).json()["entries"]
    assert [e["action"] for e in only_holds] == ["hold.create", "hold.release"]
    analyst = bearer(grant(application, Scope.ANALYST))
    assert client.get("/v1/audit", headers=analyst).status_code == 200
    _problem(client.get("/v1/keys", headers=analyst), 403, "forbidden")


def test_audit_since_takes_an_instant_and_nothing_else(
    app: tuple[Litestar, TestClient[Any]],
) -> None:
    """``since`` is an RFC 3339 instant (any case); a number is a 422, not a Unix time."""
    application, client = app
    admin = bearer(grant(application, Scope.ADMIN))
    made = client.post("/v1/keys", json={"name": "k", "scopes": ["promise"]}, headers=admin)
    assert made.status_code == 201, made.text

    def since(value: str) -> Any:
        return client.get("/v1/audit", params={"since": value}, headers=admin)

    assert "key.create" in [e["action"] for e in since("2000-01-01t00:00:00z").json()["entries"]]
    assert since("2000-01-01T01:00:00+01:00").json()["entries"]
    assert since("2000-01-01T00:00:00").json()["entries"]  # no offset: UTC
    assert since("2200-01-01T00:00:00Z").json()["entries"] == []
    for number in ("-98", "1700000000", "yesterday"):
        problem = _problem(since(number), 422, "invalid-instant")
        assert problem["errors"][0]["field"] == "since"
        assert problem["errors"][0]["source"] == "query"


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m promise.cli`` on ``data_dir``'s authority."""
    return subprocess.run(
        [sys.executable, "-m", "promise.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )


def test_keys_and_audit_from_the_command_line(tmp_path: Path) -> None:
    """Promise keys create/list/revoke and promise audit work on the authority directly."""
    data_dir = tmp_path / "data"
    made = _cli(data_dir, "keys", "create", "--name", "ops", "--scope", "admin")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("pe_")
    listed = _cli(data_dir, "keys", "list")
    assert "ops" in listed.stdout
    assert key not in listed.stdout
    application = _app(data_dir)
    with TestClient(application) as client:
        assert client.get("/v1/keys", headers=bearer(key)).status_code == 200
        revoked = _cli(data_dir, "keys", "revoke", key[3:19])
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked" in revoked.stdout
        _problem(client.get("/v1/keys", headers=bearer(key)), 401, "unauthenticated")
    audit = _cli(data_dir, "audit", "--action", "key.")
    assert audit.returncode == 0, audit.stderr
    lines = audit.stdout.splitlines()
    assert [line.count('"action":"key.') for line in lines] == [1, 1]
    assert '"action":"key.revoke"' in lines[1]
    assert _cli(data_dir, "keys", "revoke", "0" * 16).returncode == 1
    bad_scope = _cli(data_dir, "keys", "create", "--name", "x", "--scope", "root")
    assert bad_scope.returncode == 2
    assert "unknown role" in bad_scope.stderr
