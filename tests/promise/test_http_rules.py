"""Rules every route shares: JSON-only bodies, opt-in CORS, bounded 422s, deep nesting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from promise.problems import MAX_LISTED_ERRORS
from promise.settings import Settings
from tests.promise.promise_helpers import (
    problem_fields,
    problem_of,
    tiny_app_client,
    tiny_body,
)

# Deeper than the JSON decoder can recurse (the interpreter limit, 1,000 frames by default).
DEPTH = 1000


# --- content types and CORS -------------------------------------------------------------

BODY_ROUTES = [
    ("POST", "/v1/promise"),
    ("POST", "/v1/promise/validate"),
    ("POST", "/v1/inventory/events"),
    ("POST", "/v1/reservations"),
    ("PUT", "/v1/snapshot"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(
    app_client: TestClient[Litestar], method: str, path: str, content_type: str | None
) -> None:
    """Every route with a body refuses a non-JSON or undeclared body as 415 naming JSON."""
    headers = {"Idempotency-Key": "k1"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = app_client.request(method, path, content=json.dumps(tiny_body()), headers=headers)
    problem = problem_of(response, 415)
    assert "application/json" in problem["detail"]
    assert response.headers["accept"] == "application/json"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/promise+json"],
)
def test_json_media_types_are_accepted(app_client: TestClient[Litestar], content_type: str) -> None:
    """application/json, with a charset, and application/*+json all reach the handler."""
    response = app_client.post(
        "/v1/promise/validate",
        content=json.dumps(tiny_body()),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True


def test_a_bodiless_post_needs_no_content_type(app_client: TestClient[Litestar]) -> None:
    """Confirm and release carry no body, so they are not held to the JSON rule."""
    response = app_client.post("/v1/reservations/nope/confirm")
    assert problem_of(response, 404)["type"].endswith("reservation-not-found")


def test_cors_is_off_by_default(app_client: TestClient[Litestar]) -> None:
    """Without PROMISE_CORS_ORIGINS no origin gets a CORS grant."""
    response = app_client.get("/healthz", headers={"Origin": "https://shop.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_cors_grants_only_listed_origins(data_dir: Path) -> None:
    """A listed origin gets the CORS headers (also on preflight); an unlisted one does not."""
    settings = Settings.from_env(
        {"PROMISE_CORS_ORIGINS": "https://shop.example, https://admin.example"}
    )
    assert settings.cors_allow_list() == ("https://shop.example", "https://admin.example")
    with tiny_app_client(data_dir, cors_origins=settings.cors_origins) as client:
        listed = client.get("/healthz", headers={"Origin": "https://shop.example"})
        assert listed.headers["access-control-allow-origin"] == "https://shop.example"
        preflight = client.options(
            "/v1/promise",
            headers={
                "Origin": "https://admin.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code in (200, 204)
        assert preflight.headers["access-control-allow-origin"] == "https://admin.example"
        unlisted = client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in unlisted.headers


# --- bounded error lists ------------------------------------------------------------------


def test_a_422_lists_at_most_50_errors_and_counts_them_all(
    app_client: TestClient[Litestar],
) -> None:
    """400 empty lines make 1,200+ errors: 50 are listed, errors_total and detail count all."""
    body = tiny_body()
    body["cart"]["lines"] = [{} for _ in range(400)]
    problem = problem_of(app_client.post("/v1/promise", json=body), 422)
    assert len(problem["errors"]) == MAX_LISTED_ERRORS
    # Three missing fields per line (pydantic may add one for the list itself).
    total = problem["errors_total"]
    assert total >= 1200
    assert problem["detail"].startswith(f"{total} invalid field(s) (the first 50 listed)")


def test_a_few_errors_are_all_listed(app_client: TestClient[Litestar]) -> None:
    """Under the cap every error is listed and errors_total equals their number."""
    body = tiny_body()
    body["cart"]["lines"][0]["quantity"] = 0
    problem = problem_of(app_client.post("/v1/promise", json=body), 422)
    assert problem["errors_total"] == len(problem["errors"]) < MAX_LISTED_ERRORS
    assert "cart.lines.0.quantity" in problem_fields(problem)
    assert "listed" not in problem["detail"]


# --- nesting depth --------------------------------------------------------------------------

DEEP_BODIES = {
    "array": "[" * DEPTH + "]" * DEPTH,
    "in-cart": '{"cart": {"a": ' + "[" * DEPTH + "]" * DEPTH + "}}",
    "objects": '{"a": ' * DEPTH + "1" + "}" * DEPTH,
}


@pytest.mark.parametrize("shape", sorted(DEEP_BODIES))
@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_deeply_nested_json_is_a_client_error(
    app_client: TestClient[Litestar], shape: str, method: str, path: str
) -> None:
    """JSON nested 1,000 deep answers 400 or 422 as a problem document, never 500."""
    response = app_client.request(
        method,
        path,
        content=DEEP_BODIES[shape],
        headers={"Content-Type": "application/json", "Idempotency-Key": "k1"},
    )
    problem = problem_of(response, (400, 422))
    assert problem["status"] == response.status_code
