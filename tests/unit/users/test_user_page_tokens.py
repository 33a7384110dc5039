"""Page tokens: round trip, url-safety, and rejection of anything not issued for the same query."""

from __future__ import annotations

import base64
import re

import pytest

from cqlstar.users.page_tokens import InvalidPageToken, PageTokenSigner

SECRET = b"0123456789abcdef-test-secret"
# A realistic paging state: Cassandra's are opaque binary blobs of a few dozen bytes.
STATE = bytes(range(256))[:48] + b"\x00\xff\x10"


@pytest.fixture
def signer() -> PageTokenSigner:
    return PageTokenSigner(SECRET)


def test_round_trip_returns_the_paging_state(signer: PageTokenSigner) -> None:
    token = signer.issue(STATE, min_age=30, fetch_size=50)
    assert signer.open(token, min_age=30, fetch_size=50) == STATE


def test_round_trip_without_filter(signer: PageTokenSigner) -> None:
    token = signer.issue(STATE, min_age=None, fetch_size=100)
    assert signer.open(token, min_age=None, fetch_size=100) == STATE


def test_token_is_url_safe_and_unpadded(signer: PageTokenSigner) -> None:
    token = signer.issue(STATE, min_age=None, fetch_size=100)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)


def test_a_different_secret_cannot_open_it(signer: PageTokenSigner) -> None:
    token = signer.issue(STATE, min_age=None, fetch_size=100)
    with pytest.raises(InvalidPageToken):
        PageTokenSigner(b"another-secret-of-enough-length").open(
            token, min_age=None, fetch_size=100
        )


@pytest.mark.parametrize(
    ("min_age", "fetch_size"),
    [(31, 50), (None, 50), (0, 50), (30, 51)],
    ids=["other-age", "no-age", "age-zero", "other-fetch-size"],
)
def test_token_is_bound_to_its_query(
    signer: PageTokenSigner, min_age: int | None, fetch_size: int
) -> None:
    token = signer.issue(STATE, min_age=30, fetch_size=50)
    with pytest.raises(InvalidPageToken):
        signer.open(token, min_age=min_age, fetch_size=fetch_size)


def test_no_filter_and_age_zero_are_different_queries(signer: PageTokenSigner) -> None:
    token = signer.issue(STATE, min_age=None, fetch_size=50)
    with pytest.raises(InvalidPageToken):
        signer.open(token, min_age=0, fetch_size=50)


def test_any_flipped_bit_is_detected(signer: PageTokenSigner) -> None:
    raw = base64.urlsafe_b64decode(signer.issue(STATE, min_age=None, fetch_size=100) + "==")
    for position in range(len(raw)):
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        token = base64.urlsafe_b64encode(bytes(tampered)).rstrip(b"=").decode()
        with pytest.raises(InvalidPageToken):
            signer.open(token, min_age=None, fetch_size=100)


def test_a_state_swapped_under_a_valid_mac_is_rejected(signer: PageTokenSigner) -> None:
    good = base64.urlsafe_b64decode(signer.issue(STATE, min_age=None, fetch_size=100) + "==")
    forged = good[:1] + b"forged paging state" + good[-32:]
    token = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    with pytest.raises(InvalidPageToken):
        signer.open(token, min_age=None, fetch_size=100)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "!!!!",
        "A" * 43,
        "not base64 at all \x00",
        base64.urlsafe_b64encode(STATE).decode(),
    ],
)
def test_garbage_is_rejected(signer: PageTokenSigner, token: str) -> None:
    with pytest.raises(InvalidPageToken):
        signer.open(token, min_age=None, fetch_size=100)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        PageTokenSigner(b"short")
