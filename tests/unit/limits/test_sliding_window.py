"""The in-process sliding window: the rule both implementations follow, with a clock we move."""

from __future__ import annotations

from cqlstar.limits import Decision, InProcessWindow
from cqlstar.settings import Rate

PER_10S = Rate(3, 10)


def test_at_most_the_limit_pass_in_any_window_and_rejections_are_not_counted() -> None:
    window = InProcessWindow()
    assert window.hit_now("k", PER_10S, 100.0) == Decision(True, 3, 2, 10)
    assert window.hit_now("k", PER_10S, 104.0) == Decision(True, 3, 1, 6)
    assert window.hit_now("k", PER_10S, 105.0) == Decision(True, 3, 0, 5)
    # Full: rejected, told when the oldest (t=100) leaves; knocking again does not extend that.
    assert window.hit_now("k", PER_10S, 106.0) == Decision(False, 3, 0, 4)
    assert window.hit_now("k", PER_10S, 109.5) == Decision(False, 3, 0, 1)
    # t=100 has left at t=110 (the window is the last 10 s, its start excluded): one slot.
    assert window.hit_now("k", PER_10S, 110.0) == Decision(True, 3, 0, 4)
    assert window.hit_now("k", PER_10S, 110.0).allowed is False
    # A sliding window, not a fixed one: at t=114 only t=104 has left.
    assert window.hit_now("k", PER_10S, 114.0) == Decision(True, 3, 0, 1)


def test_keys_count_apart_and_idle_keys_are_swept() -> None:
    window = InProcessWindow()
    assert window.hit_now("a", Rate(1, 1), 0.0).allowed
    assert window.hit_now("b", Rate(1, 1), 0.0).allowed
    assert not window.hit_now("a", Rate(1, 1), 0.5).allowed
    for i in range(InProcessWindow._SWEEP_EVERY):
        window.hit_now(f"other-{i}", Rate(1, 1), 10.0)
    assert "a" not in window._events
    assert "b" not in window._events


def test_retry_after_is_at_least_one_second() -> None:
    assert Decision(False, 1, 0, 0).retry_after_s == 1
    assert Decision(False, 1, 0, 7).retry_after_s == 7
