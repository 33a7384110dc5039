"""What makes two requests with one Idempotency-Key the same request, and whose key it is."""

from __future__ import annotations

import msgspec

from cqlstar.identity.principal import Principal
from cqlstar.users.idempotency import fingerprint, principal_of
from cqlstar.users.schemas import UserBatch, UserCreate

ADA = UserCreate(name="Ada", email="ada@example.com", age=36)


def test_the_same_users_however_sent_are_the_same_request() -> None:
    from_object = msgspec.json.decode(
        b'{"users": [{"age": 36, "email": "ada@example.com", "name": "Ada", "x": [1]}]}',
        type=UserBatch,
    ).users
    assert fingerprint("create users", from_object) == fingerprint("create users", [ADA])


def test_any_difference_in_users_or_operation_is_another_request() -> None:
    base = fingerprint("create users", [ADA])
    assert fingerprint("create user", [ADA]) != base
    assert fingerprint("create users", [ADA, ADA]) != base
    for change in ({"name": "Adb"}, {"email": "adb@example.com"}, {"age": 37}):
        other = msgspec.structs.replace(ADA, **change)
        assert fingerprint("create users", [other]) != base


def test_keys_belong_to_the_principal_or_to_everyone_when_authentication_is_off() -> None:
    assert principal_of(Principal(subject="sub-1")) == "sub-1"
    assert principal_of(None) == ""
