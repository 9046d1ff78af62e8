"""The OpenAPI document as the server really behaves: its error answers, its path parameters, its auth.

FastAPI documents a ``422`` for every route with parameters — an answer this server never gives (its
validation errors are ``400`` with the one error body, docs/api.md "Errors") — and nothing else. Here:

- a dependency or an endpoint says which error statuses it can answer with :func:`raises`;
  :func:`declared_errors` collects them over a route's whole dependency tree (plus ``400`` for a route
  with parameters or a body, ``413`` for a body under the size limit), and the section routers' route
  class (:class:`~embedded_server.limits.LimitedRoute`) puts them in the route's ``responses``;
- :func:`document` drops FastAPI's ``422`` and its validation schemas, adds the ``Error`` schema and the
  bearer scheme. A new section's routes are described by the same means, with nothing to list here.

The document is a contract for MIOSA-compatible clients and the input of the schema-driven fuzzing in
the test suite (tests/test_openapi.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi

from . import __version__

F = TypeVar("F", bound=Callable[..., Any])

_RAISES = "__oc_raises__"

DESCRIPTIONS = {
    400: "Invalid request: a field, parameter, ID or header is wrong (VALIDATION_ERROR, INVALID_ID, …)",
    401: "Missing or unknown API token (UNAUTHORIZED)",
    403: "Not allowed (FORBIDDEN)",
    404: "No such resource for this tenant (NOT_FOUND); another tenant's is 404 too",
    409: "Conflict with the resource's state (HOST_OFFLINE, HOST_REVOKED, CONFLICT, …)",
    413: "Request body over the limit (PAYLOAD_TOO_LARGE)",
    416: "Range not satisfiable (RANGE_NOT_SATISFIABLE)",
    502: "The host's agent did not answer or failed (AGENT_UNREACHABLE)",
    503: "Not available right now (the message says why)",
    504: "The host's agent did not answer in time",
    507: "No space left on the host (NO_SPACE)",
}
"""What each error status means, in the document's words."""

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
"""The one error body: ``{"error": {"code", "message"}}``."""


def raises(*statuses: int) -> Callable[[F], F]:
    """Declare the error statuses a dependency or an endpoint can answer with (for the document).

    Args:
        statuses: HTTP statuses, each a key of :data:`DESCRIPTIONS`.

    Returns:
        A decorator that returns the function unchanged, marked.
    """

    def mark(function: F) -> F:
        setattr(function, _RAISES, frozenset(getattr(function, _RAISES, frozenset())) | set(statuses))
        return function

    return mark


def declared_errors(dependant: Dependant, *, limited_body: bool) -> set[int]:
    """Every error status a route can answer with: what its endpoint and every dependency declare
    (:func:`raises`), ``400`` when it takes parameters or a body, ``413`` for a body under the limit."""
    statuses: set[int] = set()
    for node in _walk(dependant):
        statuses |= set(getattr(node.call, _RAISES, ()))
        if node.path_params or node.query_params or node.header_params or node.body_params:
            statuses.add(400)
        if node.body_params and limited_body:
            statuses.add(413)
    return statuses


def error_responses(statuses: Iterable[int]) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entries of ``statuses``, each with the ``Error`` body."""
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        status: {"description": DESCRIPTIONS.get(status, "Error"), "content": body}
        for status in sorted(statuses)
    }


def _walk(dependant: Dependant) -> Iterable[Dependant]:
    stack = [dependant]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.dependencies)


def document(app: FastAPI) -> dict[str, Any]:
    """The application's OpenAPI document (made once, then cached on ``app.openapi_schema``)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title="OpenComputers API (oc-server)",
        version=__version__,
        description="The OpenComputers API of the embedded control plane; docs/api.md says more.",
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            if "401" in responses:
                operation["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema


def install(app: FastAPI) -> None:
    """Serve :func:`document` at ``/openapi.json``."""
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
