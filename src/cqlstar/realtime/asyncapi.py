"""`GET /asyncapi.json`: the `/web` protocol as an AsyncAPI 3.0 document.

Built from the very types the server decodes and encodes with (`cqlstar.realtime.protocol`), through
`msgspec.json.schema_components`, so the document cannot drift from what is validated: each
package's request is its tagged struct, each package's answer a struct made here from the package's
answer and meta types. Roles, status codes and close codes come from the same tables the server
uses. Built once per process, on first request.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import msgspec

from cqlstar import __version__
from cqlstar.realtime.protocol import (
    BROADCAST_PKG_ID,
    MAX_FRAME_BYTES,
    PACKAGES,
    AuthMessage,
    AuthOk,
    CloseCode,
    Package,
    PingMessage,
    PongMessage,
    Status,
    UserEventMessage,
)
from cqlstar.realtime.runtime import AUTH_TIMEOUT_S, DEAD_AFTER_S, PING_AFTER_S

_REF = "#/components/schemas/{name}"

_STATUS_TEXT = {
    Status.OK: "ok",
    Status.ERROR: (
        "error: a failure on the server's or Cassandra's side, a user not found, or the message "
        "rate limit (`msg` says which)"
    ),
    Status.INVALID: (
        "invalid data: not JSON, not an object, unknown `pkg_id`, a bad `req_id`, or `data` that "
        "fails validation (`msg` names the field)"
    ),
    Status.FORBIDDEN: "permission denied: the principal lacks the package's role, or has not authenticated",
}
_CLOSE_TEXT = {
    CloseCode.NORMAL: "normal closure",
    CloseCode.GOING_AWAY: "the service is shutting down",
    CloseCode.POLICY_VIOLATION: "the principal already holds WS_MAX_CONNECTIONS open connections",
    CloseCode.MESSAGE_TOO_BIG: f"a frame over {MAX_FRAME_BYTES // 1024} KiB",
    CloseCode.TRY_AGAIN_LATER: "this reader fell too far behind the broadcast",
    CloseCode.INVALID_TOKEN: (
        "a token failed a check, expired without renewal, or its session was logged out; or a "
        "renewal named another principal"
    ),
    CloseCode.AUTH_TIMEOUT: f"no authentication within {AUTH_TIMEOUT_S:g} s of connecting",
    CloseCode.HEARTBEAT_TIMEOUT: (
        f"nothing received for {DEAD_AFTER_S:g} s, though the server sent a ping after "
        f"{PING_AFTER_S:g} s of silence"
    ),
}


def _answer_type(package: Package) -> type[msgspec.Struct]:
    data: Any = package.answer
    meta: Any = package.meta
    return msgspec.defstruct(
        f"{_camel(package.name)}Answer",
        [
            ("pkg_id", Literal[package.pkg_id]),
            ("req_id", str | None),
            ("status_code", Status),
            ("data", data | None if data is not None else None),
            ("meta", meta | None if meta is not None else None),
            ("msg", str | None),
        ],
        frozen=True,
    )


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


@functools.cache
def asyncapi_document() -> dict[str, Any]:
    packages = list(PACKAGES.values())
    answers = {p.pkg_id: _answer_type(p) for p in packages}
    control = [AuthMessage, PongMessage, AuthOk, PingMessage, UserEventMessage]
    types = [p.request for p in packages] + list(answers.values()) + control
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = dict(zip(types, schemas, strict=True))

    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    channel_messages: dict[str, Any] = {}

    def message(key: str, schema: dict[str, Any], title: str, summary: str) -> dict[str, str]:
        messages[key] = {"name": key, "title": title, "summary": summary, "payload": schema}
        channel_messages[key] = {"$ref": f"#/components/messages/{key}"}
        return {"$ref": f"#/channels/web/messages/{key}"}

    for package in packages:
        request_ref = message(
            f"{package.name}.request",
            schema_of[package.request],
            f"{package.name} (pkg_id {package.pkg_id})",
            f"{package.summary}. Needs the role `{package.role.value}`.",
        )
        answer_ref = message(
            f"{package.name}.answer",
            schema_of[answers[package.pkg_id]],
            f"{package.name} answer",
            "Exactly one per request, with its pkg_id and req_id.",
        )
        operations[package.name] = {
            "action": "receive",
            "channel": {"$ref": "#/channels/web"},
            "title": package.name,
            "summary": package.summary,
            "description": f"Role: `{package.role.value}`.",
            "messages": [request_ref],
            "reply": {"channel": {"$ref": "#/channels/web"}, "messages": [answer_ref]},
        }
    auth_ref = message(
        "auth",
        schema_of[AuthMessage],
        "Authenticate or renew",
        f"Within {AUTH_TIMEOUT_S:g} s of connecting when the handshake carried no token; again "
        "with a fresh token (same principal) before the current one expires.",
    )
    auth_ok_ref = message("auth_ok", schema_of[AuthOk], "Authenticated", "The token was accepted.")
    ping_ref = message(
        "ping",
        schema_of[PingMessage],
        "Are you there?",
        f"Sent after {PING_AFTER_S:g} s without a frame from the client; answer with pong.",
    )
    pong_ref = message("pong", schema_of[PongMessage], "Still here", "The answer to a ping.")
    event_ref = message(
        "user_event",
        schema_of[UserEventMessage],
        f"User changed (pkg_id {BROADCAST_PKG_ID})",
        "Every change to a user, made over HTTP or WebSocket on any process, once per reader "
        "connection (principals with `users:read`).",
    )
    operations["authenticate"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/web"},
        "messages": [auth_ref],
        "reply": {"channel": {"$ref": "#/channels/web"}, "messages": [auth_ok_ref]},
    }
    operations["heartbeat"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/web"},
        "messages": [ping_ref],
        "reply": {"channel": {"$ref": "#/channels/web"}, "messages": [pong_ref]},
    }
    operations["userEvents"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/web"},
        "messages": [event_ref],
    }

    status_lines = "\n".join(f"- `{int(s)}`: {text}" for s, text in _STATUS_TEXT.items())
    close_lines = "\n".join(f"- `{int(c)}`: {text}" for c, text in _CLOSE_TEXT.items())
    role_lines = "\n".join(f"- `{p.pkg_id}` {p.name}: `{p.role.value}`" for p in packages)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "cqlstar WebSocket API",
            "version": __version__,
            "description": (
                "Requests `{pkg_id, req_id, data}` over `/web`, each answered exactly once with "
                "`{pkg_id, req_id, status_code, data, meta, msg}`; the connection stays open "
                "whatever is sent.\n\n"
                f"Packages and roles:\n{role_lines}\n\n"
                f"Status codes:\n{status_lines}\n\n"
                f"Close codes:\n{close_lines}"
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "web": {
                "address": "/web",
                "title": "The WebSocket endpoint",
                "description": (
                    "Authenticate with `Authorization: Bearer <token>` on the handshake, "
                    "`?token=<token>`, or a first `auth` message."
                ),
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {"token": {"type": "string"}},
                        },
                        "headers": {
                            "type": "object",
                            "properties": {"Authorization": {"type": "string"}},
                        },
                    }
                },
            }
        },
        "operations": operations,
        "components": {"schemas": components, "messages": messages},
    }
