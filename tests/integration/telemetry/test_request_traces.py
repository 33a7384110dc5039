"""The spans of real requests: one SERVER span named by route, the Cassandra query spans under it,
the caller's trace continued, and no user data anywhere in them."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

pytestmark = pytest.mark.integration

Spans = Callable[[], list[ReadableSpan]]
Client = AsyncTestClient[Litestar]


def server_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is SpanKind.SERVER]


def children_of(parent: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def the_server_span(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    matching = [s for s in server_spans(spans) if s.name == name]
    assert len(matching) == 1, [s.name for s in server_spans(spans)]
    return matching[0]


async def test_read_makes_a_server_span_with_query_spans_under_it(
    traced_client: Client, spans: Spans, marked_user: dict[str, Any]
) -> None:
    created = await traced_client.post("/users", json=marked_user)
    assert created.status_code == 201
    user_id = created.json()["id"]

    response = await traced_client.get(f"/users/{user_id}", headers={"user-agent": "trace-test"})
    assert response.status_code == 200

    finished = spans()
    server = the_server_span(finished, "GET /users/{user_id}")
    attributes = server.attributes or {}
    assert attributes["http.route"] == "/users/{user_id}"
    assert attributes["url.path"] == f"/users/{user_id}"
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.scheme"] == "http"
    assert attributes["user_agent.original"] == "trace-test"
    assert "error.type" not in attributes
    assert server.parent is None

    queries = children_of(server, finished)
    assert queries, "the read made no query span under the request span"
    for query in queries:
        assert query.kind is SpanKind.CLIENT
        assert query.context.trace_id == server.context.trace_id
        assert (query.attributes or {})["db.system.name"] == "cassandra"
    assert any((q.attributes or {}).get("db.operation.name") == "SELECT" for q in queries)
    # The query happened inside the request.
    for query in queries:
        assert server.start_time is not None
        assert server.end_time is not None
        assert query.start_time is not None
        assert query.end_time is not None
        assert server.start_time <= query.start_time <= query.end_time <= server.end_time


async def test_incoming_traceparent_is_continued(traced_client: Client, spans: Spans) -> None:
    trace_id = secrets.token_hex(16)
    parent_id = secrets.token_hex(8)
    response = await traced_client.get(
        "/users", params={"limit": 2}, headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}
    )
    assert response.status_code == 200
    finished = spans()
    server = the_server_span(finished, "GET /users")
    assert format(server.context.trace_id, "032x") == trace_id
    assert server.parent is not None
    assert server.parent.is_remote
    assert format(server.parent.span_id, "016x") == parent_id
    queries = children_of(server, finished)
    assert queries
    assert all(format(q.context.trace_id, "032x") == trace_id for q in queries)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "span_name", "route"),
    [
        ("GET", "/no/such/route", None, 404, "GET", None),
        ("DELETE", "/metrics", None, 405, "DELETE", None),
        (
            "GET",
            "/users/00000000-0000-4000-8000-000000000000",
            None,
            404,
            "GET /users/{user_id}",
            "/users/{user_id}",
        ),
        ("GET", "/users/not-a-uuid", None, 400, "GET /users/{user_id}", "/users/{user_id}"),
        ("POST", "/users", {"name": "", "email": "nope", "age": -1}, 422, "POST /users", "/users"),
        ("GET", "/users", None, 200, "GET /users", "/users"),
    ],
)
async def test_failed_requests_are_named_by_route_template_too(
    traced_client: Client,
    spans: Spans,
    method: str,
    path: str,
    body: Any,
    status: int,
    span_name: str,
    route: str | None,
) -> None:
    response = await traced_client.request(method, path, json=body)
    assert response.status_code == status
    (server,) = server_spans(spans())
    assert server.name == span_name
    attributes = server.attributes or {}
    assert attributes["http.response.status_code"] == status
    assert attributes.get("http.route") == route
    assert attributes["url.path"] == path
    assert "error.type" not in attributes  # 4xx are the client's errors, not the server's


async def test_no_user_data_in_any_span(
    traced_client: Client, spans: Spans, marked_user: dict[str, Any]
) -> None:
    created = await traced_client.post("/users", json=marked_user)
    assert created.status_code == 201
    user_id = created.json()["id"]
    renamed = {"name": marked_user["name"] + " II", "email": "ii." + marked_user["email"]}
    assert (await traced_client.put(f"/users/{user_id}", json=renamed)).status_code == 200
    assert (await traced_client.get(f"/users/{user_id}")).status_code == 200
    batch = [{**marked_user, "name": marked_user["name"] + " III"}]
    assert (await traced_client.post("/users/batch", json=batch)).status_code == 201
    assert (await traced_client.delete(f"/users/{user_id}")).status_code == 204

    finished = spans()
    assert len(server_spans(finished)) == 5
    assert any(s.kind is SpanKind.CLIENT for s in finished)
    secrets_sent = {marked_user["name"], marked_user["email"], renamed["email"]}
    for span in finished:
        texts = [span.name, span.status.description or ""]
        texts += [str(v) for v in (span.attributes or {}).values()]
        for event in span.events:
            texts += [event.name, *(str(v) for v in (event.attributes or {}).values())]
        for text in texts:
            for secret in secrets_sent:
                assert secret not in text, f"{secret!r} leaked into span {span.name!r}: {text!r}"
