"""Row objects: tuples with attribute access by column name, built cheaply.

The driver's own `named_tuple_factory` builds a new namedtuple *class* for every page it decodes,
which costs far more than the rows themselves on small pages. Here one class is built per distinct
column-name tuple and cached for the life of the process; a page is then turned into rows with
`tuple.__new__` mapped over the decoded tuples, with no per-row Python frame.

`row_factory` runs on the driver's I/O thread. The cache is a plain dict: a lookup or insert is
atomic under the GIL, and a race between two threads building the same class at once only means
one of two equivalent classes wins.
"""

from __future__ import annotations

import keyword
import re
from collections import namedtuple
from collections.abc import Sequence
from functools import partial
from typing import Any

__all__ = ["Row", "row_class", "row_factory"]

# A row is a namedtuple instance; its fields depend on the query, so statically it is a tuple.
Row = tuple[Any, ...]

_NOT_IDENTIFIER = re.compile(r"[^0-9a-zA-Z_]+")
# Past this many distinct column sets something generates queries dynamically; stop caching so the
# cache cannot grow without bound (rows still build, only slower).
_MAX_CACHED_CLASSES = 4096

_makers: dict[tuple[str, ...], partial[Row]] = {}


def _field_name(column: str, position: int, taken: set[str]) -> str:
    """A valid, unique namedtuple field for a column name such as `count` or `writetime(v)`."""
    name = _NOT_IDENTIFIER.sub("_", column).strip("_")
    if not name or name[0].isdigit():
        name = f"col_{position}"
    elif keyword.iskeyword(name):
        name = f"{name}_"
    while name in taken:
        name = f"{name}_{position}"
    taken.add(name)
    return name


def row_class(column_names: Sequence[str]) -> type[Row]:
    """The cached namedtuple class for these column names."""
    cls: type[Row] = _maker(tuple(column_names)).args[0]
    return cls


def _maker(key: tuple[str, ...]) -> partial[Row]:
    maker = _makers.get(key)
    if maker is None:
        taken: set[str] = set()
        fields = [_field_name(column, i, taken) for i, column in enumerate(key)]
        cls = namedtuple("Row", fields)  # type: ignore[misc]
        # tuple.__new__ skips namedtuple's Python-level __new__ and its length check: the driver
        # always hands over exactly one value per column.
        maker = partial(tuple.__new__, cls)
        if len(_makers) < _MAX_CACHED_CLASSES:
            _makers[key] = maker
    return maker


def row_factory(column_names: list[str], rows: list[tuple[Any, ...]]) -> list[Row]:
    """The driver row factory: decoded tuples of one page into a list of rows."""
    return list(map(_maker(tuple(column_names)), rows))
