"""The time budget a caller opens once and every query inside it reads."""

from __future__ import annotations

import asyncio

import pytest

from cqlstar.aiocassandra import BudgetExceeded, outside_budget, remaining, time_budget


def test_no_budget_gives_the_cap_back() -> None:
    assert remaining() is None
    assert remaining(7.0) == 7.0


def test_a_budget_caps_the_timeout_and_shrinks() -> None:
    with time_budget(2.0):
        left = remaining(10.0)
        assert left is not None
        assert 1.5 < left <= 2.0
        assert remaining(0.5) == 0.5  # a smaller own timeout wins
    assert remaining(10.0) == 10.0  # gone after the block


def test_a_spent_budget_raises() -> None:
    with time_budget(-1.0), pytest.raises(BudgetExceeded):
        remaining(10.0)


def test_outside_budget_lifts_it_for_its_block_only() -> None:
    with time_budget(-1.0):
        with outside_budget():
            assert remaining(3.0) == 3.0
        with pytest.raises(BudgetExceeded):
            remaining(3.0)


async def test_tasks_started_inside_inherit_it() -> None:
    async def left() -> float | None:
        return remaining()

    with time_budget(5.0):
        task = asyncio.create_task(left())
    seen = await task
    assert seen is not None
    assert 4.0 < seen <= 5.0
