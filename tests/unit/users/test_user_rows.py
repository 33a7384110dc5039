"""Rows into Users: rows without the required columns are left out, never a TypeError."""

from __future__ import annotations

import logging

import pytest

from cqlstar.users.repository import user_from_row, users_from_rows

STAMP = 1_767_225_600_123  # 2026-01-01T00:00:00.123Z
WHOLE = ("id-1", "Ada", "ada@example.com", 36, STAMP, STAMP)


@pytest.mark.parametrize(
    "remnant",
    [
        ("id-2", "Bob", None, 7, None, STAMP),  # an update's cells that outlived a delete
        ("id-3", None, "c@example.com", 7, STAMP, STAMP),
        ("id-4", "Dee", None, 7, STAMP, STAMP),
        ("id-5", "Eve", "e@example.com", None, STAMP, STAMP),
        ("id-6", "Fay", "f@example.com", 7, STAMP, None),
    ],
)
def test_incomplete_rows_are_skipped_and_logged_once(
    remnant: tuple[object, ...], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "cqlstar.users.repository"):
        users = users_from_rows([WHOLE, remnant, WHOLE])
        assert user_from_row(remnant) is None
    assert [user.id for user in users] == ["id-1", "id-1"]
    assert users[0].created_at == "2026-01-01T00:00:00.123Z"
    reported = [r for r in caplog.records if remnant[0] in getattr(r, "user_ids", [])]
    assert len(reported) == 1


def test_a_page_of_whole_rows_is_kept_whole() -> None:
    rows = [(f"id-{n}", "Ada", "ada@example.com", n, STAMP, STAMP + n) for n in range(50)]
    users = users_from_rows(rows)
    assert [(u.id, u.age) for u in users] == [(f"id-{n}", n) for n in range(50)]
