"""The Users bodies: the contract's constraints hold at decode time, and timestamps format one way."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from cqlstar.users.schemas import (
    _TIMESTAMP_CACHE_SIZE,
    EMAIL_PATTERN,
    NAME_PATTERN,
    BatchItems,
    User,
    UserBatch,
    UserCreate,
    UserUpdate,
    _timestamp_texts,
    format_timestamp,
    format_timestamps,
    utc_now_ms,
)

VALID = {"name": "Ada Lovelace", "email": "ada@example.com", "age": 36}
# 254 characters, the upper bound: a full 64-character local part and 61-character labels.
LONGEST_EMAIL = "a" * 64 + "@" + ".".join(["c" * 61] * 3) + ".exa"


def decode(body: dict[str, Any], type_: Any = UserCreate) -> Any:
    return msgspec.json.decode(msgspec.json.encode(body), type=type_)


def test_valid_user_decodes() -> None:
    assert decode(VALID) == UserCreate("Ada Lovelace", "ada@example.com", 36)


def test_unknown_fields_are_ignored() -> None:
    assert decode({**VALID, "id": "x", "role": "admin"}) == UserCreate(**VALID)


@pytest.mark.parametrize("missing", ["name", "email", "age"])
def test_every_field_is_required(missing: str) -> None:
    body = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(msgspec.ValidationError, match=f"missing required field `{missing}`"):
        decode(body)


@pytest.mark.parametrize("name", ["A", "x" * 100, " padded ", "Zoë 李"])
def test_names_within_bounds(name: str) -> None:
    assert decode({**VALID, "name": name}).name == name


@pytest.mark.parametrize(
    "name", ["", "x" * 101, "   ", "\t\n", "\x1c", "\x85", "\ufeff", "\u3000\u00a0", " \n"]
)
def test_names_out_of_bounds(name: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.name"):
        decode({**VALID, "name": name})


@pytest.mark.parametrize(
    "email",
    [
        "a@b.io",
        "first.last+tag@sub.example.co.uk",
        "o'brien@example.org",
        "x" * 64 + "@example.com",
        "a@" + "b" * 63 + ".com",
        LONGEST_EMAIL,
    ],
)
def test_valid_emails(email: str) -> None:
    assert decode({**VALID, "email": email}).email == email


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "@example.com",
        "a@",
        "a@localhost",
        "a b@example.com",
        "a@exa mple.com",
        "a@@example.com",
        "a@-example.com",
        "a@example-.com",
        "a@example..com",
        "x" * 65 + "@example.com",
        "a@" + "b" * 64 + ".com",
        # 255 characters: one over the limit, otherwise well formed.
        LONGEST_EMAIL + "m",
        # Python's `$` also matches before a final newline.
        "a@b.co\n",
        "ada@example.com\n",
        # A dot-atom local part: no dot at either edge, never two in a row.
        ".ada@example.com",
        "ada.@example.com",
        "ada..lovelace@example.com",
        ".@example.com",
    ],
)
def test_invalid_emails(email: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.email"):
        decode({**VALID, "email": email})


def test_email_length_bound_is_exact() -> None:
    assert len(LONGEST_EMAIL) == 254


@pytest.mark.parametrize("age", [0, 1, 150])
def test_ages_within_bounds(age: int) -> None:
    assert decode({**VALID, "age": age}).age == age


@pytest.mark.parametrize("age", [-1, 151, 36.5, "36", True, None])
def test_ages_out_of_bounds_or_not_integers(age: object) -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.age"):
        decode({**VALID, "age": age})


def test_update_keeps_unsent_fields_unset() -> None:
    update = decode({"age": 40}, UserUpdate)
    assert update.age == 40
    assert update.name is msgspec.UNSET
    assert update.email is msgspec.UNSET


def test_update_needs_at_least_one_field() -> None:
    with pytest.raises(msgspec.ValidationError, match="at least one of name, email, age"):
        decode({}, UserUpdate)
    with pytest.raises(msgspec.ValidationError, match="at least one of name, email, age"):
        decode({"unknown": 1}, UserUpdate)


def test_update_fields_carry_the_create_constraints() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.age"):
        decode({"age": 151}, UserUpdate)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.email"):
        decode({"email": "nope"}, UserUpdate)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.name"):
        decode({"name": None}, UserUpdate)


@pytest.mark.parametrize("count", [1, 100])
def test_batch_sizes_within_bounds(count: int) -> None:
    items = msgspec.convert([VALID] * count, BatchItems)
    assert len(items) == count
    assert len(decode({"users": [VALID] * count}, UserBatch).users) == count


@pytest.mark.parametrize("count", [0, 101])
def test_batch_sizes_out_of_bounds(count: int) -> None:
    with pytest.raises(msgspec.ValidationError, match="length"):
        msgspec.convert([VALID] * count, BatchItems)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.users"):
        decode({"users": [VALID] * count}, UserBatch)


def test_batch_error_names_the_item_index() -> None:
    items = [VALID, VALID, VALID, {**VALID, "email": "bad"}]
    with pytest.raises(msgspec.ValidationError, match=r"\$\[3\]\.email"):
        msgspec.convert(items, BatchItems)


def epoch_ms(value: datetime) -> int:
    return (value - EPOCH) // timedelta(milliseconds=1)


EPOCH = datetime(1970, 1, 1)


def test_timestamps_always_show_three_fractional_digits_in_utc() -> None:
    assert format_timestamp(epoch_ms(datetime(2026, 11, 22, 10, 0, 0, 123000))) == (
        "2026-11-22T10:00:00.123Z"
    )
    assert format_timestamp(epoch_ms(datetime(2026, 11, 22, 10, 0, 0))) == (
        "2026-11-22T10:00:00.000Z"
    )
    assert format_timestamp(epoch_ms(datetime(2026, 1, 2, 3, 4, 5, 9000))) == (
        "2026-01-02T03:04:05.009Z"
    )
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    # Before the epoch the milliseconds still count forwards from the start of the second.
    assert format_timestamp(-1) == "1969-12-31T23:59:59.999Z"
    assert format_timestamp(epoch_ms(datetime(1, 1, 1))) == "0001-01-01T00:00:00.000Z"
    assert format_timestamp(epoch_ms(datetime(9999, 12, 31, 23, 59, 59, 999000))) == (
        "9999-12-31T23:59:59.999Z"
    )


def test_timestamps_agree_with_datetime_formatting_and_the_caches_stay_bounded() -> None:
    # Enough distinct values (and seconds) to overflow both caches several times over.
    start = epoch_ms(datetime(2026, 11, 22, 10, 0, 0))
    values = [start + n * 997 for n in range(20_000)] + [start + n for n in range(3000)]
    for value in values:
        reference = (EPOCH + timedelta(milliseconds=value)).isoformat(timespec="milliseconds")
        assert format_timestamp(value) == reference + "Z"
        assert len(_timestamp_texts) <= _TIMESTAMP_CACHE_SIZE
        assert len(_timestamp_texts._seconds) <= _TIMESTAMP_CACHE_SIZE
    assert list(format_timestamps(values[:50])) == [format_timestamp(v) for v in values[:50]]


def test_now_is_whole_milliseconds_since_the_epoch() -> None:
    before = time.time_ns() // 1_000_000
    now = utc_now_ms()
    assert isinstance(now, int)
    assert before <= now <= time.time_ns() // 1_000_000
    # Formatted, it reads as the current UTC time.
    formatted = datetime.fromisoformat(format_timestamp(now).replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - formatted).total_seconds()) < 5


def test_user_encodes_with_contract_field_names_and_order() -> None:
    user = User(
        "3f1c1d2e-8a4b-4c5d-9e6f-001122334455",
        "Ada",
        "ada@example.com",
        36,
        "2026-11-22T10:00:00.123Z",
        "2026-11-22T10:00:00.123Z",
    )
    assert msgspec.json.encode(user) == (
        b'{"id":"3f1c1d2e-8a4b-4c5d-9e6f-001122334455","name":"Ada","email":"ada@example.com",'
        b'"age":36,"created_at":"2026-11-22T10:00:00.123Z","updated_at":"2026-11-22T10:00:00.123Z"}'
    )


# Strings on which Python's and ECMA-262's regex dialects could disagree: every kind of whitespace
# either dialect knows, line ends at the edges, non-ASCII letters and digits.
DIALECT_PROBES = [
    "Ada",
    " x ",
    "a",
    "\u0663",
    "Zo\u00eb",
    *(chr(c) for c in range(0x20)),
    *"\x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\ufeff\u180e\u200b",
    "ada@example.com",
    "ada@example.com\n",
    "\nada@example.com",
    "ada@example.com\r",
    "first.last+tag@sub.example.co.uk",
    ".ada@example.com",
    "ada..l@example.com",
    "a@b.c\u0663",
    "\u0430@example.com",
]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node for an ECMA-262 regex engine")
@pytest.mark.parametrize("pattern", [EMAIL_PATTERN, NAME_PATTERN])
def test_patterns_mean_the_same_in_python_and_ecma(pattern: str) -> None:
    """JSON Schema readers apply the OpenAPI document's patterns as ECMA-262 regexes, with or
    without the `u` flag; msgspec applies them with Python's `re.search`."""
    script = (
        "const [pattern, probes] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const plain = new RegExp(pattern), unicode = new RegExp(pattern, 'u');"
        "console.log(JSON.stringify(probes.map(p => [plain.test(p), unicode.test(p)])));"
    )
    out = subprocess.run(
        ["node", "-e", script],
        input=json.dumps([pattern, DIALECT_PROBES]),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ecma = json.loads(out)
    python = [bool(re.search(pattern, probe)) for probe in DIALECT_PROBES]
    assert [plain for plain, _ in ecma] == python
    assert [unicode for _, unicode in ecma] == python
