"""The OpenAPI document is the server's real contract, and the server keeps it under fuzzing.

Schemathesis generates requests from the document for every operation (sent to the real server of the
test session, a tenant's token in every request) and checks each answer: never a 5xx, a status the document
lists for that operation, and a body of the documented shape (every error the one ``Error`` body).
Event streams are left out (they never end by design); their routes are checked by the other modules.
The number of examples per operation is bounded (5) so the whole run stays near 20 s on 2 cores.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from embedded_server.app import create_app
from embedded_server.settings import Settings

DATA_DIR = Path(tempfile.mkdtemp(prefix="oc-openapi-"))
APP = create_app(Settings(data_dir=DATA_DIR))
"""The application, for its document only (the requests go to the session's server process)."""
STREAMS = r"(/events|/stream)$"
"""Operations whose answer is an endless SSE stream."""

schema = schemathesis.openapi.from_dict(APP.openapi())


def test_every_path_parameter_and_error_is_described() -> None:
    document = APP.openapi()
    for path, operations in document["paths"].items():
        wanted = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == wanted, (method, path)
            responses = operation["responses"]
            assert "422" not in responses, (method, path)  # the server never answers 422
            if path.startswith("/api/"):
                assert "401" in responses and operation["security"] == [{"bearer": []}], (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    body = response["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/Error"}, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


@schema.exclude(path_regex=STREAMS).parametrize()
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_fuzzed_requests_get_documented_answers(case: Any, server: Any) -> None:
    case.call_and_validate(
        base_url=server.base_url,
        headers=server.headers(),
        timeout=15,
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )


@pytest.fixture(scope="module", autouse=True)
def _close_app() -> Any:
    yield
    APP.state.lifecycle.close()
    APP.state.db.close()
