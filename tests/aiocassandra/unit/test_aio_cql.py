"""The statement summaries that name spans."""

from __future__ import annotations

import pytest

from cqlstar.aiocassandra.cql import CqlSummary, summarize


@pytest.mark.parametrize(
    ("text", "operation", "keyspace", "table"),
    [
        ("SELECT id, name FROM users WHERE id = ?", "SELECT", None, "users"),
        ("select * from Cqlstar.Users", "SELECT", "cqlstar", "users"),
        ('SELECT * FROM "MyKs"."Quoted""Table"', "SELECT", "MyKs", 'Quoted"Table'),
        ("  -- a comment\n /* more */ SELECT x FROM ks . t", "SELECT", "ks", "t"),
        ("SELECT count(*) FROM t", "SELECT", None, "t"),
        ("INSERT INTO ks.users (id) VALUES (?) IF NOT EXISTS", "INSERT", "ks", "users"),
        ("UPDATE users SET name = ? WHERE id = ?", "UPDATE", None, "users"),
        ("DELETE name FROM ks.users WHERE id = ?", "DELETE", "ks", "users"),
        ("DELETE FROM users WHERE id = ?", "DELETE", None, "users"),
        ("TRUNCATE TABLE ks.users", "TRUNCATE", "ks", "users"),
        ("TRUNCATE users", "TRUNCATE", None, "users"),
        ("CREATE TABLE IF NOT EXISTS ks.t (k int PRIMARY KEY)", "CREATE TABLE", "ks", "t"),
        ("DROP TABLE t", "DROP TABLE", None, "t"),
        ("ALTER TABLE ks.t ADD v text", "ALTER TABLE", "ks", "t"),
        ("CREATE INDEX IF NOT EXISTS by_name ON ks.users (name)", "CREATE INDEX", "ks", "users"),
        ("CREATE TYPE ks.address (street text)", "CREATE TYPE", "ks", "address"),
        ("CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {}", "CREATE KEYSPACE", "ks", None),
        ("DROP KEYSPACE ks", "DROP KEYSPACE", "ks", None),
        ('USE "Other"', "USE", "Other", None),
        ("BEGIN UNLOGGED BATCH INSERT INTO t (k) VALUES (1); APPLY BATCH", "BATCH", None, None),
        ("GRANT SELECT ON ks.t TO someone", "GRANT", None, None),
        ("", "CQL", None, None),
    ],
)
def test_summaries(text: str, operation: str, keyspace: str | None, table: str | None) -> None:
    summary = summarize(text)
    assert (summary.operation, summary.keyspace, summary.table) == (operation, keyspace, table)
    assert summary.text == text


def test_span_names_use_the_session_keyspace_for_unqualified_tables() -> None:
    assert summarize("SELECT * FROM users").span_name("cqlstar") == "SELECT cqlstar.users"
    assert summarize("SELECT * FROM users").span_name(None) == "SELECT users"
    assert summarize("SELECT * FROM other.users").span_name("cqlstar") == "SELECT other.users"
    assert summarize("DROP KEYSPACE ks").span_name("cqlstar") == "DROP KEYSPACE ks"
    assert summarize("USE ks").span_name(None) == "USE ks"
    assert summarize("GRANT ALL ON ks.t TO r").span_name("cqlstar") == "GRANT"


def test_summaries_are_memoised() -> None:
    text = "SELECT a FROM memo_t WHERE k = ?"
    assert summarize(text) is summarize(text)
    summary = summarize(text)
    assert summary.span_name("ks") is summary.span_name("ks")


def test_namespace() -> None:
    assert CqlSummary("SELECT", None, "t", "").namespace("ks") == "ks"
    assert CqlSummary("SELECT", "other", "t", "").namespace("ks") == "other"
