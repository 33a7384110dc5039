"""The in-process revocation store: a key is refused until its time, then forgotten."""

from __future__ import annotations

from cqlstar.identity.revocation import LocalRevocations, session_key, token_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_revoked_session_is_refused_until_its_time_then_forgotten() -> None:
    clock = Clock()
    store = LocalRevocations(clock)
    assert not store.is_revoked((session_key("s1"),))
    await store.revoke(session_key("s1"), until=1300.0)
    assert store.is_revoked((session_key("s1"),))
    assert store.is_revoked((token_key("t9"), session_key("s1")))
    assert not store.is_revoked((session_key("s2"), token_key("t9")))
    clock.now = 1300.0
    assert not store.is_revoked((session_key("s1"),))
    await store.revoke(token_key("t1"), until=2000.0)  # any write forgets what has expired
    assert len(store) == 1


async def test_a_later_revocation_of_the_same_key_extends_an_earlier_one_never_shortens() -> None:
    clock = Clock()
    store = LocalRevocations(clock)
    await store.revoke(session_key("s1"), until=1500.0)
    await store.revoke(session_key("s1"), until=1100.0)
    clock.now = 1200.0
    assert store.is_revoked((session_key("s1"),))
