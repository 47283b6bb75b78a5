"""An OpenAPI document whose body schemas are pydantic's own.

Litestar rebuilds pydantic models field by field and loses what the service enforces: a
``tuple[X, ...]`` item becomes ``oneOf: [X, {}]`` (anything goes), constraints on optional
fields vanish and ``extra="forbid"`` is not said. Clients and fuzzers driven by that document
mostly send requests the service refuses. Here every request and response body that is a
pydantic model is described by ``pydantic.json_schema.models_json_schema`` instead: request
bodies in validation mode, answers in serialization mode, so the document is what the models
accept and emit. Parameters and everything else stay as Litestar generates them, but for one
entry: Litestar adds a 400 ``{status_code, detail, extra}`` JSON answer to every route with
parameters, which this service never sends (invalid parameters are 422 problem documents, see
``promise.app``); it is dropped, and each route lists the problem documents it does answer.

:func:`published_json` is the document as committed in ``tests/promise/openapi.json``
(``python -m promise.cli openapi`` prints it), so that a change to the public contract is a
visible diff in review.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from litestar import Litestar, Request
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.routes import HTTPRoute
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

__all__ = [
    "ExactJsonRenderPlugin",
    "ExactSwaggerRenderPlugin",
    "exact_document",
    "published_json",
]

REF_PREFIX = "#/components/schemas/"
# Body key: (path, method, "request") or (path, method, status code).
BodyKey = tuple[str, str, str]


def _model(annotation: object) -> type[BaseModel] | None:
    """The pydantic model a handler annotation names, if it names one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _bodies(app: Litestar) -> Iterator[tuple[BodyKey, type[BaseModel], JsonSchemaMode]]:
    """Every pydantic body of every documented route, with the mode that describes it."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            for method in handler.http_methods:
                where = (route.path_format or "/", method.lower())
                data = handler.parsed_data_field
                request_model = _model(data.annotation) if data is not None else None
                if request_model is not None:
                    yield (*where, "request"), request_model, "validation"
                answer = _model(handler.parsed_fn_signature.return_type.annotation)
                if answer is not None:
                    yield (*where, str(handler.status_code)), answer, "serialization"
                for status, spec in (handler.responses or {}).items():
                    container = _model(spec.data_container)
                    if container is not None:
                        yield (*where, str(status)), container, "serialization"


def _body_schemas(operation: dict[str, Any], part: str) -> Iterator[dict[str, Any]]:
    """The schema objects of one operation's request body or one status's response."""
    if part == "request":
        holder = operation.get("requestBody", {})
    else:
        holder = operation.get("responses", {}).get(part, {})
    for media in holder.get("content", {}).values():
        if isinstance(media.get("schema"), dict):
            yield media["schema"]


def _refs(value: object) -> Iterator[str]:
    """Component names referenced anywhere inside ``value``."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            yield ref.removeprefix(REF_PREFIX)
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _is_litestar_validation_answer(response: object) -> bool:
    """Whether an answer is Litestar's generic validation 400 (not a problem document)."""
    if not isinstance(response, dict):
        return False
    content = response.get("content") or {}
    schema = content.get("application/json", {}).get("schema", {})
    properties = set(schema.get("properties", {})) if isinstance(schema, dict) else set()
    return set(content) == {"application/json"} and properties == {"status_code", "detail", "extra"}


def _drop_litestar_validation_answers(document: dict[str, Any]) -> None:
    """Remove the 400 Litestar documents for every route with parameters (never sent here)."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            if _is_litestar_validation_answer(responses.get("400")):
                del responses["400"]


def exact_document(app: Litestar, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (Litestar's) with pydantic's schemas for every pydantic body."""
    out = copy.deepcopy(document)
    _drop_litestar_validation_answers(out)
    bodies = list(_bodies(app))
    pairs = list(dict.fromkeys((model, mode) for _, model, mode in bodies))
    refs, definitions = models_json_schema(pairs, ref_template=REF_PREFIX + "{model}")
    for (path, method, part), model, mode in bodies:
        operation = out.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        for schema in _body_schemas(operation, part):
            schema.clear()
            schema.update(refs[(model, mode)])
    components: dict[str, Any] = out.setdefault("components", {}).setdefault("schemas", {})
    components.update(definitions.get("$defs", {}))
    # Litestar's versions of replaced models (and their parts) are no longer referenced.
    reachable: set[str] = set()
    pending = list(_refs({key: value for key, value in out.items() if key != "components"}))
    while pending:
        name = pending.pop()
        if name not in reachable and name in components:
            reachable.add(name)
            pending.extend(_refs(components[name]))
    out["components"]["schemas"] = {
        name: schema for name, schema in sorted(components.items()) if name in reachable
    }
    return out


def published_json() -> str:
    """The document an app with default settings publishes, as deterministic JSON text.

    Keys are sorted and text is ASCII, so it depends on neither dict order, hash seed nor locale.
    """
    from promise.app import create_app  # noqa: PLC0415 - the app imports this module
    from promise.events.config import EventSettings  # noqa: PLC0415
    from promise.settings import Settings  # noqa: PLC0415
    from promise.stock.config import StockSettings  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="promise-openapi-") as scratch:
        # Only the routes matter: the app is built, never started, on an empty scratch store.
        data_dir = Path(scratch)
        app = create_app(
            Settings(data_dir=data_dir),
            stock_settings=StockSettings(data_dir=data_dir),
            event_settings=EventSettings(),
        )
        try:
            document = exact_document(app, app.openapi_schema.to_schema())
        finally:
            app.state.service.stock.backend.close()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


class _ExactRendering:
    """Renders the exact document (computed once per app) instead of Litestar's."""

    _document: dict[str, Any] | None = None

    def exact(self, request: Request[Any, Any, Any], document: dict[str, Any]) -> dict[str, Any]:
        """The exact document of the app serving ``request``."""
        if self._document is None:
            self._document = exact_document(request.app, document)
        return self._document


class ExactJsonRenderPlugin(JsonRenderPlugin, _ExactRendering):
    """``/openapi.json`` with pydantic's body schemas."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """Render the exact document as JSON."""
        return super().render(request, self.exact(request, openapi_schema))


class ExactSwaggerRenderPlugin(SwaggerRenderPlugin, _ExactRendering):
    """The Swagger page (it embeds the document; Scalar's page loads ``/openapi.json``)."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """Render the Swagger page over the exact document."""
        return super().render(request, self.exact(request, openapi_schema))
