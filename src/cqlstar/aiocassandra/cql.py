"""A cheap summary of a CQL statement's text: its operation and the keyspace/table it targets.

Telemetry needs `<OPERATION> <keyspace>.<table>` for span names and the `db.operation.name`,
`db.namespace` and `db.collection.name` attributes. This is not a CQL parser: a few anchored regular
expressions read the leading keywords and the first qualified name after `FROM`, `INTO`, `UPDATE`,
`TABLE` and the like. Anything else is summarised by its first keyword alone.

`summarize` is memoised on the statement text, so a prepared statement (whose text never changes)
is read once per process, and so is any literal CQL string the service reuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["CqlSummary", "summarize"]

_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z0-9_]+)'
_QUALIFIED = rf"(?P<first>{_NAME})(?:\s*\.\s*(?P<second>{_NAME}))?"
_IF_EXISTS = r"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
_FLAGS = re.IGNORECASE | re.DOTALL

# Leading whitespace and comments (`-- x`, `// x`, `/* x */`) before the first keyword.
_LEADING = re.compile(r"(?:\s+|--[^\n]*|//[^\n]*|/\*.*?\*/)*", re.DOTALL)

# (operation, pattern, what the qualified name denotes: "table" or "keyspace")
_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("SELECT", re.compile(rf"SELECT\b.*?\bFROM\s+{_QUALIFIED}", _FLAGS), "table"),
    ("INSERT", re.compile(rf"INSERT\s+INTO\s+{_QUALIFIED}", _FLAGS), "table"),
    ("UPDATE", re.compile(rf"UPDATE\s+{_QUALIFIED}", _FLAGS), "table"),
    ("DELETE", re.compile(rf"DELETE\b.*?\bFROM\s+{_QUALIFIED}", _FLAGS), "table"),
    ("BATCH", re.compile(r"BEGIN\s+(?:UNLOGGED\s+|COUNTER\s+)?BATCH\b", _FLAGS), ""),
    ("USE", re.compile(rf"USE\s+{_QUALIFIED}", _FLAGS), "keyspace"),
    ("TRUNCATE", re.compile(rf"TRUNCATE\s+(?:TABLE\s+)?{_QUALIFIED}", _FLAGS), "table"),
)
_DDL = re.compile(
    r"(?P<verb>CREATE|ALTER|DROP)\s+(?:OR\s+REPLACE\s+)?"
    r"(?P<kind>TABLE|COLUMNFAMILY|KEYSPACE|SCHEMA|TYPE|MATERIALIZED\s+VIEW|INDEX|CUSTOM\s+INDEX"
    r"|FUNCTION|AGGREGATE|ROLE|USER|TRIGGER)\b\s*" + _IF_EXISTS,
    _FLAGS,
)
_DDL_TARGET = re.compile(_QUALIFIED, _FLAGS)
_INDEX_TABLE = re.compile(rf".*?\bON\s+{_QUALIFIED}", _FLAGS)
_FIRST_WORD = re.compile(r"[A-Za-z]+")


def _unquote(name: str | None) -> str | None:
    """CQL folds unquoted names to lower case and keeps quoted ones verbatim."""
    if name is None:
        return None
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()


@dataclass(frozen=True, slots=True)
class CqlSummary:
    """What telemetry needs to know about one statement text."""

    operation: str
    keyspace: str | None  # as written in the text; None when unqualified
    table: str | None
    text: str
    # Span names per session keyspace, filled on demand: building the string once per
    # (statement, keyspace) instead of once per call.
    _names: dict[str | None, str] = field(default_factory=dict, compare=False, repr=False)

    def namespace(self, session_keyspace: str | None) -> str | None:
        return self.keyspace or session_keyspace

    def target(self, session_keyspace: str | None) -> str | None:
        """`keyspace.table`, `table`, the keyspace of a keyspace statement, or None."""
        if self.table is None:
            if self.keyspace and (self.operation == "USE" or self.operation.endswith("KEYSPACE")):
                return self.keyspace
            return None
        keyspace = self.keyspace or session_keyspace
        return f"{keyspace}.{self.table}" if keyspace else self.table

    def span_name(self, session_keyspace: str | None) -> str:
        """`<OPERATION> <target>`, or the operation alone; cached per session keyspace."""
        name = self._names.get(session_keyspace)
        if name is None:
            target = self.target(session_keyspace)
            name = f"{self.operation} {target}" if target else self.operation
            if len(self._names) < 64:
                self._names[session_keyspace] = name
        return name


def _qualified(operation: str, match: re.Match[str] | None, text: str) -> CqlSummary:
    """A summary whose target is `[keyspace.]table` as matched by `_QUALIFIED`."""
    if match is None:
        return CqlSummary(operation, None, None, text)
    first, second = match.group("first"), match.group("second")
    if second is None:
        return CqlSummary(operation, None, _unquote(first), text)
    return CqlSummary(operation, _unquote(first), _unquote(second), text)


def _summarize_ddl(ddl: re.Match[str], text: str) -> CqlSummary:
    kind = " ".join(ddl.group("kind").upper().split())
    operation = f"{ddl.group('verb').upper()} {kind}"
    if kind in ("KEYSPACE", "SCHEMA"):
        target = _DDL_TARGET.match(text, ddl.end())
        keyspace = _unquote(target.group("first")) if target else None
        return CqlSummary(operation, keyspace, None, text)
    if kind.endswith("INDEX"):  # the indexed table follows ON
        return _qualified(operation, _INDEX_TABLE.match(text, ddl.end()), text)
    if kind in ("TABLE", "COLUMNFAMILY", "TYPE", "MATERIALIZED VIEW"):
        return _qualified(operation, _DDL_TARGET.match(text, ddl.end()), text)
    return CqlSummary(operation, None, None, text)


@lru_cache(maxsize=4096)
def summarize(text: str) -> CqlSummary:
    """Summarise a statement text (memoised; see the module docstring)."""
    start = _LEADING.match(text)
    pos = start.end() if start else 0
    for operation, pattern, denotes in _PATTERNS:
        match = pattern.match(text, pos)
        if match is None:
            continue
        if denotes == "table":
            return _qualified(operation, match, text)
        keyspace = _unquote(match.group("first")) if denotes == "keyspace" else None
        return CqlSummary(operation, keyspace, None, text)
    ddl = _DDL.match(text, pos)
    if ddl is not None:
        return _summarize_ddl(ddl, text)
    word = _FIRST_WORD.match(text, pos)
    return CqlSummary(word.group(0).upper() if word else "CQL", None, None, text)
