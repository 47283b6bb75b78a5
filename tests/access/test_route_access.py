"""Every route × every kind of caller, generated from the OpenAPI document.

The table of operations comes from the published document itself, so a route added without a
row here fails the test, and a route without a declared role is refused to everyone (the
guard fails closed). Each route gets: no credential, a wrong key, an expired token, a valid
caller without the route's role, and a caller with exactly one of its roles.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from litestar import Litestar
from litestar.testing import TestClient

from promise.access.principal import Scope
from promise.app import create_app
from promise.settings import Settings
from tests.auth import bearer, grant
from tests.promise.promise_helpers import (
    PROBLEM_MEDIA_TYPE,
    TINY_SKU,
    tiny_body,
    tiny_event,
    tiny_snapshot,
)

AUDIENCE = "promise-engine-test"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Context:
    """The app under test, its client and one key per role."""

    app: Litestar
    client: TestClient[Any]
    keys: dict[Scope, str]
    signing_key: ec.EllipticCurvePrivateKey

    def as_role(self, role: Scope) -> dict[str, str]:
        """Headers of the key that has exactly ``role``."""
        return bearer(self.keys[role])

    def token(self, *roles: Scope, expires_in_s: int) -> str:
        """A JWT of the configured issuer with ``roles``, expiring in ``expires_in_s``."""
        now = dt.datetime.now(dt.UTC)
        claims = {
            "sub": "svc-test",
            "aud": AUDIENCE,
            "iat": now - dt.timedelta(hours=2),
            "exp": now + dt.timedelta(seconds=expires_in_s),
            "scope": " ".join(role.value for role in roles),
        }
        return jwt.encode(claims, self.signing_key, algorithm="ES256")

    def hold(self) -> str:
        """A fresh one-unit hold by the reserve key; its id."""
        answer = self.client.post(
            "/v1/reservations",
            json={"lines": [{"node_id": "CHI", "sku": TINY_SKU, "quantity": 1}], "channel": "web"},
            headers={**self.as_role(Scope.RESERVE), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert answer.status_code == 201, answer.text
        reservation_id: str = answer.json()["reservation_id"]
        return reservation_id


# What a caller with the right role sends to each operation: (path, request arguments).
Example = Callable[[Context], tuple[str, dict[str, Any]]]
_event_ids = itertools.count()


def _new_event(_ctx: Context) -> tuple[str, dict[str, Any]]:
    """A batch of one new receipt."""
    n = next(_event_ids)
    return "/v1/inventory/events", {"json": {"events": [tiny_event(event_id=f"r{n}", seq=n)]}}


def _recorded_event(ctx: Context) -> tuple[str, dict[str, Any]]:
    """A recorded event, recorded by the inventory key first."""
    path, kwargs = _new_event(ctx)
    done = ctx.client.post(path, headers=ctx.as_role(Scope.INVENTORY), **kwargs)
    assert done.status_code == 200, done.text
    return f"/v1/inventory/events/{kwargs['json']['events'][0]['event_id']}", {}


def _throwaway_key(ctx: Context) -> tuple[str, dict[str, Any]]:
    """The revoke route of a key made for it."""
    made = grant(ctx.app, Scope.PROMISE, name="to revoke")
    return f"/v1/keys/{made[3:19]}/revoke", {}


EXAMPLES: dict[tuple[str, str], Example] = {
    ("post", "/v1/promise"): lambda _: ("/v1/promise", {"json": tiny_body()}),
    ("post", "/v1/promise/validate"): lambda _: ("/v1/promise/validate", {"json": tiny_body()}),
    ("get", "/v1/availability"): lambda _: ("/v1/availability", {"params": {"sku": TINY_SKU}}),
    ("get", "/v1/snapshot"): lambda _: ("/v1/snapshot", {}),
    ("put", "/v1/snapshot"): lambda _: (
        "/v1/snapshot",
        {"content": tiny_snapshot("tiny-v1").model_dump_json()},
    ),
    ("get", "/healthz"): lambda _: ("/healthz", {}),
    ("get", "/readyz"): lambda _: ("/readyz", {}),
    ("get", "/metrics"): lambda _: ("/metrics", {}),
    ("post", "/v1/inventory/events"): _new_event,
    ("get", "/v1/inventory/events/{event_id}"): _recorded_event,
    ("get", "/v1/inventory/positions"): lambda _: (
        "/v1/inventory/positions",
        {"params": {"node_id": "CHI", "sku": TINY_SKU}},
    ),
    ("post", "/v1/reservations"): lambda _: (
        "/v1/reservations",
        {
            "json": {
                "lines": [{"node_id": "CHI", "sku": TINY_SKU, "quantity": 1}],
                "channel": "web",
            },
            "headers": {"Idempotency-Key": str(uuid.uuid4())},
        },
    ),
    ("get", "/v1/reservations/{reservation_id}"): lambda ctx: (
        f"/v1/reservations/{ctx.hold()}",
        {},
    ),
    ("post", "/v1/reservations/{reservation_id}/confirm"): lambda ctx: (
        f"/v1/reservations/{ctx.hold()}/confirm",
        {},
    ),
    ("post", "/v1/reservations/{reservation_id}/release"): lambda ctx: (
        f"/v1/reservations/{ctx.hold()}/release",
        {},
    ),
    ("post", "/v1/reservations/reoptimise"): lambda _: (
        "/v1/reservations/reoptimise",
        {"json": {"time_limit_ms": 200}},
    ),
    ("get", "/v1/keys"): lambda _: ("/v1/keys", {}),
    ("post", "/v1/keys"): lambda _: (
        "/v1/keys",
        {"json": {"name": "made over http", "scopes": ["promise"]}},
    ),
    ("post", "/v1/keys/{key_id}/revoke"): _throwaway_key,
    ("get", "/v1/audit"): lambda _: ("/v1/audit", {}),
    ("get", "/v1/prices"): lambda _: ("/v1/prices", {"params": {"sku": TINY_SKU}}),
    ("put", "/v1/prices"): lambda _: (
        "/v1/prices",
        {"json": {"rows": [{"node_id": "CHI", "sku": TINY_SKU, "cents": 120}]}},
    ),
}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    """An app that takes keys and ES256 tokens, with a key per role."""
    root = tmp_path_factory.mktemp("route-access")
    signing_key = ec.generate_private_key(ec.SECP256R1())
    public_pem = root / "issuer.pem"
    public_pem.write_bytes(
        signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    settings = Settings.from_env(
        {},
        data_dir=root / "data",
        jwt_public_key_file=public_pem,
        jwt_audience=AUDIENCE,
    )
    app = create_app(settings, initial_snapshot=lambda: tiny_snapshot("tiny-v1"))
    with TestClient(app) as client:
        keys = {role: grant(app, role, name=role.value) for role in Scope}
        yield Context(app, client, keys, signing_key)


def _operations(app: Litestar) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every operation the OpenAPI document publishes."""
    document = app.openapi_schema.to_schema()
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def _roles(operation: dict[str, Any]) -> frozenset[Scope] | None:
    """The roles an operation documents (any one suffices); None for a public one."""
    security = operation.get("security")
    assert security, f"{operation.get('operationId')} documents no security at all"
    if security == [{}]:
        return None
    return frozenset(Scope(role) for role in security[0]["bearer"])


def _assert_problem(response: Any, status: int) -> None:
    """A problem document of ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)


def _request(
    ctx: Context, method: str, path: str, auth: dict[str, str], example: dict[str, Any]
) -> Any:
    """Send one request with the ``auth`` headers merged into the example's."""
    kwargs = dict(example)
    merged = {**kwargs.pop("headers", {}), **auth}
    if "content" in kwargs:
        merged.setdefault("Content-Type", "application/json")
    return ctx.client.request(method.upper(), path, headers=merged, **kwargs)


def test_every_published_operation_has_a_row(ctx: Context) -> None:
    """The table covers exactly the published operations: a new route must join it."""
    published = {(method, path) for method, path, _ in _operations(ctx.app)}
    assert published == set(EXAMPLES)


def test_only_health_and_readiness_are_public(ctx: Context) -> None:
    """Every operation but /healthz and /readyz documents the roles that may call it."""
    public = {path for _, path, operation in _operations(ctx.app) if _roles(operation) is None}
    assert public == {"/healthz", "/readyz"}


@pytest.mark.parametrize(("method", "path"), sorted(EXAMPLES))
def test_each_kind_of_caller_gets_what_is_documented(ctx: Context, method: str, path: str) -> None:
    """No credential, wrong key, expired token: 401; wrong role: 403; right role: 2xx."""
    operations = {(m, p): op for m, p, op in _operations(ctx.app)}
    roles = _roles(operations[(method, path)])
    url, kwargs = EXAMPLES[(method, path)](ctx)
    wrong_key = "pe_0123456789abcdef_" + "x" * 43
    if roles is None:
        for headers in ({}, bearer(wrong_key)):
            answer = _request(ctx, method, url, headers, kwargs)
            assert 200 <= answer.status_code < 300, answer.text
        return
    refused = {
        "no credential": {},
        "wrong key": bearer(wrong_key),
        "expired token": bearer(ctx.token(*roles, expires_in_s=-3600)),
        "not a bearer credential": {"Authorization": "Basic dXNlcjpwYXNz"},
    }
    for why, headers in refused.items():
        answer = _request(ctx, method, url, headers, kwargs)
        _assert_problem(answer, 401)
        assert answer.headers["www-authenticate"].startswith("Bearer"), why
    others = sorted(set(Scope) - roles)
    if others:
        answer = _request(ctx, method, url, ctx.as_role(others[0]), kwargs)
        _assert_problem(answer, 403)
        assert answer.json()["type"].endswith(":forbidden")
    right = sorted(roles)[0]
    answer = _request(ctx, method, url, ctx.as_role(right), kwargs)
    assert 200 <= answer.status_code < 300, answer.text
    # A valid token with the role is as good as a key.
    url, kwargs = EXAMPLES[(method, path)](ctx)
    token = bearer(ctx.token(right, expires_in_s=600))
    if right is Scope.RESERVE and "{reservation_id}" in path:
        return  # a token's principal does not own the reserve key's hold (tested elsewhere)
    answer = _request(ctx, method, url, token, kwargs)
    assert 200 <= answer.status_code < 300, answer.text


def test_every_operation_documents_its_refusals_as_problems(ctx: Context) -> None:
    """Secured operations list 401, 403 and 429; those with parameters or a body list 422.

    Every error answer documented is a problem document: Litestar's own 400 (a
    ``{status_code, detail, extra}`` body this service never sends) is not published.
    """
    document = ctx.client.get("/schema/openapi.json", headers=ctx.as_role(Scope.ADMIN)).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            responses = operation["responses"]
            for status, answer in responses.items():
                if int(status) >= 400:
                    assert set(answer["content"]) == {PROBLEM_MEDIA_TYPE}, (where, status)
            if _roles(operation) is not None:
                assert {"401", "403", "429"} <= set(responses), where
            if operation.get("parameters") or "requestBody" in operation:
                assert "422" in responses, where


def test_docs_and_metrics_need_a_credential(tmp_path: Path) -> None:
    """Docs: 401 without a key, any role reads them; metrics: admin or analyst only."""
    closed = create_app(
        Settings.from_env({}, data_dir=tmp_path / "a"),
        initial_snapshot=lambda: tiny_snapshot("tiny-v1"),
    )
    with TestClient(closed) as client:
        _assert_problem(client.get("/schema/openapi.json"), 401)
        _assert_problem(client.get("/metrics"), 401)
        analyst = bearer(grant(closed, Scope.ANALYST))
        assert client.get("/schema/openapi.json", headers=analyst).status_code == 200
        assert client.get("/metrics", headers=analyst).status_code == 200
        _assert_problem(client.get("/metrics", headers=bearer(grant(closed, Scope.PROMISE))), 403)


def test_a_route_that_declares_no_roles_is_nobodys(tmp_path: Path) -> None:
    """Fail closed: a handler added without secured()/public() answers 403 to every caller."""
    from litestar import get  # noqa: PLC0415

    @get("/v1/forgotten", sync_to_thread=False)
    def forgotten() -> dict[str, str]:
        """A route someone forgot to declare."""
        return {"secret": "yes"}

    app = create_app(
        Settings.from_env({}, data_dir=tmp_path / "data"),
        initial_snapshot=lambda: tiny_snapshot("tiny-v1"),
    )
    app.register(forgotten)
    with TestClient(app) as client:
        _assert_problem(client.get("/v1/forgotten"), 401)
        admin = bearer(grant(app))
        _assert_problem(client.get("/v1/forgotten", headers=admin), 403)
