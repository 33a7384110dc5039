"""Decoding frames: one msgspec pass for a good request, and for a bad one what can be echoed."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest

from cqlstar.realtime.protocol import (
    PACKAGES,
    AuthMessage,
    CreateUser,
    GetPaginatedUsers,
    GetUser,
    GetUsers,
    Invalid,
    PongMessage,
    UpdateUser,
    UserEvent,
    UserEventKind,
    UserEventMessage,
    decode_frame,
)
from cqlstar.users.schemas import UserCreate, UserUpdate

REQ = str(uuid.uuid4())


def frame(**fields: object) -> str:
    return json.dumps(fields)


def test_each_package_decodes_to_its_own_type() -> None:
    uid = str(uuid.uuid4())
    assert isinstance(decode_frame(frame(pkg_id=1, req_id=REQ)), GetUsers)
    assert isinstance(decode_frame(frame(pkg_id=2, req_id=REQ, data={})), GetPaginatedUsers)
    create = decode_frame(
        frame(pkg_id=3, req_id=REQ, data={"name": "A", "email": "a@example.com", "age": 3})
    )
    assert isinstance(create, CreateUser)
    assert isinstance(create.data, UserCreate)
    get = decode_frame(frame(pkg_id=4, req_id=REQ, data={"id": uid}))
    assert isinstance(get, GetUser)
    assert get.data.user_id == uuid.UUID(uid)
    update = decode_frame(frame(pkg_id=5, req_id=REQ, data={"id": uid, "age": 4}))
    assert isinstance(update, UpdateUser)
    assert isinstance(update.data, UserUpdate)
    assert update.data.age == 4
    assert update.data.name is msgspec.UNSET
    assert set(PACKAGES) == {1, 2, 3, 4, 5, 6}


def test_defaults_of_the_contract() -> None:
    request = decode_frame(frame(pkg_id=1, req_id=REQ))
    assert isinstance(request, GetUsers)
    assert (request.data.limit, request.data.age_filter) == (10, None)
    paged = decode_frame(frame(pkg_id=2, req_id=REQ))
    assert isinstance(paged, GetPaginatedUsers)
    assert (paged.data.fetch_size, paged.data.page_state) == (100, None)


def test_numbers_are_read_strictly_as_in_the_http_api() -> None:
    def create(age: object) -> object:
        body = {"name": "A", "email": "a@ex.com", "age": age}
        return decode_frame(frame(pkg_id=3, req_id=REQ, data=body))

    accepted = create(36)
    assert isinstance(accepted, CreateUser)
    assert accepted.data.age == 36
    for refused in ("36", 36.0, True, 36.5, "old"):
        bad = create(refused)
        assert isinstance(bad, Invalid)
        assert bad.msg.startswith("data.age:")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("nope", Invalid(None, None, "Not valid JSON")),
        (b"\xff\xfe", Invalid(None, None, "Not valid JSON")),
        ("[]", Invalid(None, None, "A message must be a JSON object")),
        (frame(pkg_id=7, req_id=REQ), Invalid(7, REQ, "Unknown pkg_id 7")),
        (frame(pkg_id=True, req_id=REQ), None),
        # Deeper than msgspec's recursion allowance (which skipped fields use too): a RecursionError
        # before, which ended the connection with 4500.
        ('{"a":' * 10_000 + "1" + "}" * 10_000, Invalid(None, None, "JSON nests too deeply")),
        (
            frame(pkg_id=1, req_id=REQ)[:-1] + ', "data": ' + "[" * 30_000 + "]" * 30_000 + "}",
            Invalid(None, None, "JSON nests too deeply"),
        ),
    ],
)
def test_invalid_frames(raw: str | bytes, expected: Invalid | None) -> None:
    decoded = decode_frame(raw)
    assert isinstance(decoded, Invalid)
    if expected is not None:
        assert decoded == expected
    else:
        assert decoded.pkg_id is None
        assert decoded.req_id == REQ


def test_req_id_is_echoed_only_when_it_is_a_uuid() -> None:
    for bad in ("x", 5, None, REQ.replace("-", ""), "{" + REQ + "}"):
        decoded = decode_frame(frame(pkg_id=4, req_id=bad, data={"id": REQ}))
        assert isinstance(decoded, Invalid)
        assert decoded.req_id is None
        assert decoded.pkg_id == 4
        assert decoded.msg.startswith("req_id:")


def test_control_messages() -> None:
    assert decode_frame(frame(type="auth", token="t")) == AuthMessage(token="t")
    assert decode_frame(frame(type="pong")) == PongMessage()
    missing = decode_frame(frame(type="auth"))
    assert isinstance(missing, Invalid)
    assert "token" in missing.msg


def test_broadcast_message_field_order_and_values() -> None:
    encoded = msgspec.json.encode(
        UserEventMessage(data=UserEvent(UserEventKind.DELETED, "u1", None))
    )
    assert encoded == (
        b'{"pkg_id":100,"req_id":"00000000-0000-0000-0000-000000000000","status_code":0,'
        b'"data":{"event":"deleted","user_id":"u1","user":null},"meta":null,"msg":null}'
    )


def test_user_ids_are_read_as_the_http_api_reads_them() -> None:
    """Only the canonical 8-4-4-4-12 text, as `/users/{id}` takes it: the other spellings that
    `uuid.UUID` (and msgspec) accept would give one user several ids."""
    uid = uuid.uuid4()
    for spelling in (str(uid), str(uid).upper()):
        get = decode_frame(frame(pkg_id=4, req_id=REQ, data={"id": spelling}))
        assert isinstance(get, GetUser)
        assert get.data.user_id == uid
    for spelling in (uid.hex, "{" + str(uid) + "}", "urn:uuid:" + str(uid), "x"):
        for pkg_id in (4, 5, 6):
            bad = decode_frame(frame(pkg_id=pkg_id, req_id=REQ, data={"id": spelling, "age": 3}))
            assert bad == Invalid(
                pkg_id, REQ, "data.id: Expected a UUID (8-4-4-4-12 hexadecimal digits)"
            ), spelling
