"""`GET /openapi.json` answers the document built once, as `/docs/openapi.json` does: the route is
open and not limited, and building the document took about 12 ms a request (measured), so a flood
of it was a cheap way to keep a worker busy."""

from __future__ import annotations

import pytest
from litestar.openapi.spec import OpenAPI
from litestar.testing import TestClient

from cqlstar.app import create_app
from cqlstar.settings import Settings


def test_the_document_is_built_once_and_served_as_docs_serves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds = 0
    to_schema = OpenAPI.to_schema

    def counted(self: OpenAPI) -> dict[str, object]:
        nonlocal builds
        builds += 1
        return to_schema(self)

    monkeypatch.setattr(OpenAPI, "to_schema", counted)
    # No `with`: the lifespan (Cassandra, the issuer) is not started; this route needs neither.
    client = TestClient(create_app(Settings(oidc_issuer="http://127.0.0.1:1/realms/none")))
    first = client.get("/openapi.json")
    assert first.status_code == 200
    built = builds
    for _ in range(3):
        again = client.get("/openapi.json")
        assert again.status_code == 200
        assert again.content == first.content
    assert builds == built
    assert client.get("/docs/openapi.json").json() == first.json()
    assert first.headers["content-type"].startswith("application/vnd.oai.openapi+json")
