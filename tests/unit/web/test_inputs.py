"""Request inputs: what each handler declares, strict body decoding, media types, integer text."""

from __future__ import annotations

import tracemalloc
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.serialization import decode_json

from cqlstar.app import create_app
from cqlstar.settings import Settings
from cqlstar.users.schemas import UserBatch, UserCreate, UserUpdate
from cqlstar.web.inputs import (
    INTEGER_TEXT,
    TOO_DEEP,
    declared_inputs,
    decode_json_body,
    is_json_media_type,
)

ONE_MIB = 1024 * 1024
VALID = b'{"name": "Ada", "email": "ada@example.com", "age": 36'


@pytest.fixture(scope="module")
def app() -> Litestar:
    return create_app(Settings(auth="disabled"))


def handler(app: Litestar, operation_id: str) -> HTTPRouteHandler:
    for route in app.routes:
        for candidate in getattr(route, "route_handlers", []):
            if candidate.operation_id == operation_id:
                found: HTTPRouteHandler = candidate
                return found
    raise AssertionError(operation_id)


def padded_with_empty_arrays(size: int) -> bytes:
    """A valid user whose ignored field `x` is `[[],[],...]`, `size` bytes in all."""
    head = VALID + b', "x": ['
    count = (size - len(head) - 2) // 3
    body = head + b",".join([b"[]"] * count) + b"]}"
    return body + b" " * (size - len(body))


# The fence around Litestar's parsed signature: if Litestar changes how it describes a handler's
# parameters, these fail before any request is decoded wrongly.
@pytest.mark.parametrize(
    ("operation_id", "integers"),
    [
        ("listUsers", {"limit"}),
        ("streamUsers", {"limit", "fetch_size", "age_filter"}),
        ("pageUsers", {"fetch_size", "age_filter"}),
        ("getUser", set()),
        ("createUser", set()),
        ("performance_async", {"requests"}),
    ],
)
def test_integer_query_parameters_are_found(
    app: Litestar, operation_id: str, integers: set[str]
) -> None:
    assert declared_inputs(handler(app, operation_id)).integer_query_params == integers


@pytest.mark.parametrize(
    ("operation_id", "body", "expected"),
    [
        ("createUser", VALID + b"}", UserCreate("Ada", "ada@example.com", 36)),
        ("updateUser", b'{"age": 40}', UserUpdate(age=40)),
        ("replaceUser", b'{"name": "Bo"}', UserUpdate(name="Bo")),
        ("createUsers", b"[" + VALID + b"}]", [UserCreate("Ada", "ada@example.com", 36)]),
        (
            "createUsers",
            b'{"users": [' + VALID + b"}]}",
            UserBatch([UserCreate("Ada", "ada@example.com", 36)]),
        ),
    ],
)
def test_bodies_decode_into_the_declared_type(
    app: Litestar, operation_id: str, body: bytes, expected: Any
) -> None:
    decoder = declared_inputs(handler(app, operation_id)).body_decoder
    assert decoder is not None
    assert decode_json_body(decoder, body) == expected


def test_routes_without_a_body_have_no_decoder(app: Litestar) -> None:
    assert declared_inputs(handler(app, "getUser")).body_decoder is None


@pytest.mark.parametrize("count", [0, 101])
def test_the_batch_array_keeps_its_length_bounds(app: Litestar, count: int) -> None:
    decoder = declared_inputs(handler(app, "createUsers")).body_decoder
    assert decoder is not None
    with pytest.raises(ValidationException) as caught:
        decode_json_body(decoder, b"[" + b",".join([VALID + b"}"] * count) + b"]")
    assert "length" in caught.value.extra[0]["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"name": "Ada", "email": "ada@example.com", "age": "3e1"}', "age"),
        (b'{"name": "Ada", "email": "ada@example.com", "age": 30.0}', "age"),
        (b'{"name": "Ada", "email": "ada@example.com", "age": "30"}', "age"),
        (b'{"name": "Ada", "email": "ada@example.com\\n", "age": 3}', "email"),
    ],
)
def test_failures_name_the_value(body: bytes, key: str) -> None:
    with pytest.raises(ValidationException) as caught:
        decode_json_body(msgspec.json.Decoder(UserCreate), body)
    (entry,) = caught.value.extra  # type: ignore[misc]
    assert entry["key"] == key
    assert entry["source"] == "body"
    assert "`$" not in entry["message"]


@pytest.mark.parametrize(
    "body",
    [
        VALID + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        VALID + b', "x": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}",
    ],
)
def test_deep_nesting_is_a_validation_failure(body: bytes) -> None:
    with pytest.raises(ValidationException) as caught:
        decode_json_body(msgspec.json.Decoder(UserCreate), body)
    assert caught.value.detail == TOO_DEEP


def test_ignored_fields_are_skipped_without_building_them() -> None:
    body = padded_with_empty_arrays(ONE_MIB)
    assert len(body) == ONE_MIB
    decoder = msgspec.json.Decoder(UserCreate)
    tracemalloc.start()
    try:
        decode_json_body(decoder, body)
        _, strict_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        # What Litestar does by default: the whole document as Python objects first.
        msgspec.convert(decode_json(body), UserCreate, strict=False)
        _, generic_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert strict_peak < 64 * 1024
    assert generic_peak > 10 * ONE_MIB  # the cost this avoids (about 21 MiB)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (b"application/json", True),
        (b"application/json; charset=utf-8", True),
        (b"Application/JSON", True),
        (b"application/merge-patch+json", True),
        (None, False),
        (b"", False),
        (b"text/plain", False),
        (b"application/x-www-form-urlencoded", False),
        (b"application/jsonx", False),
        (b"text/json+xml", False),
    ],
)
def test_json_media_types(value: bytes | None, ok: bool) -> None:
    assert is_json_media_type(value) is ok


@pytest.mark.parametrize("text", ["0", "5", "-1", "100", "1000000"])
def test_integer_text(text: str) -> None:
    assert INTEGER_TEXT.fullmatch(text)


@pytest.mark.parametrize(
    "text",
    ["", "1e2", "10.0", "+5", "1_0", " 5", "5 ", "05", "\u0663", "0x10", "-", "1.", "\u0661"],
)
def test_not_integer_text(text: str) -> None:
    assert not INTEGER_TEXT.fullmatch(text)
