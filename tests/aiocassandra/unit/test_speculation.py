"""Which statements speculate, and after how long (the plan the driver asks for)."""

from __future__ import annotations

import pytest
from cassandra.query import BatchStatement, SimpleStatement

from cqlstar.aiocassandra.speculation import ReadWriteSpeculativeExecutionPolicy


def _delays(policy: ReadWriteSpeculativeExecutionPolicy, statement: object) -> list[float]:
    plan = policy.new_plan("ks", statement)
    return [plan.next_execution(None) for _ in range(4)]


def test_reads_and_writes_get_their_own_delay() -> None:
    policy = ReadWriteSpeculativeExecutionPolicy(0.05, 1.0, 2)
    assert _delays(policy, SimpleStatement("SELECT v FROM t WHERE k = 1")) == [0.05, 0.05, -1, -1]
    assert _delays(policy, SimpleStatement("  select v from t")) == [0.05, 0.05, -1, -1]
    insert = SimpleStatement("INSERT INTO t (k) VALUES (1) IF NOT EXISTS")
    assert _delays(policy, insert) == [1.0, 1.0, -1, -1]
    assert _delays(policy, BatchStatement()) == [1.0, 1.0, -1, -1]


def test_writes_never_speculate_without_a_write_delay() -> None:
    policy = ReadWriteSpeculativeExecutionPolicy(0.05, None, 2)
    assert _delays(policy, SimpleStatement("DELETE FROM t WHERE k = 1")) == [-1, -1, -1, -1]
    assert _delays(policy, SimpleStatement("SELECT * FROM t")) == [0.05, 0.05, -1, -1]


def test_bound_statements_are_judged_by_their_prepared_text() -> None:
    class Prepared:
        query_string = "SELECT v FROM t WHERE k = ?"

    class Bound:
        prepared_statement = Prepared()

    policy = ReadWriteSpeculativeExecutionPolicy(None, 2.0, 1)
    assert _delays(policy, Bound()) == [-1, -1, -1, -1]


@pytest.mark.parametrize(("read", "write", "attempts"), [(-1, None, 1), (None, -1, 1), (0.1, 1, 0)])
def test_nonsense_is_refused(read: float | None, write: float | None, attempts: int) -> None:
    with pytest.raises(ValueError, match="speculative"):
        ReadWriteSpeculativeExecutionPolicy(read, write, attempts)


def test_plans_count_the_speculative_attempts_they_started() -> None:
    plan = ReadWriteSpeculativeExecutionPolicy(0.05, None, 2).new_plan(
        "ks", SimpleStatement("SELECT 1")
    )
    assert plan.next_execution(None) == 0.05  # the first send: nothing speculative yet
    assert plan.fired == 0
    plan.next_execution(None)  # the timer fired once
    plan.next_execution(None)  # and again
    assert plan.fired == 2
