"""Row objects: tuples with attribute access by column name, built cheaply.

The driver's own `named_tuple_factory` builds a new namedtuple *class* for every page it decodes,
which costs far more than the rows themselves on small pages. Here one class is built per distinct
column-name tuple and cached for the life of the process; a page is then turned into rows by mapping
`tuple.__new__` over (class, decoded tuple) pairs: a C-level loop with no per-row Python frame, and
no namedtuple `__new__` (a Python function) either.

`row_factory` runs on the driver's I/O thread. The cache is a plain dict: a lookup or insert is
atomic under the GIL, and a race between two threads building the same class at once only means
one of two equivalent classes wins.
"""

from __future__ import annotations

import keyword
import re
from collections import namedtuple
from collections.abc import Sequence
from itertools import repeat
from typing import Any

__all__ = ["Row", "row_class", "row_factory"]

# A row is a namedtuple instance; its fields depend on the query, so statically it is a tuple.
Row = tuple[Any, ...]

_NOT_IDENTIFIER = re.compile(r"[^0-9a-zA-Z_]+")
# Past this many distinct column sets something generates queries dynamically; stop caching so the
# cache cannot grow without bound (rows still build, only slower).
_MAX_CACHED_CLASSES = 4096

_classes: dict[tuple[str, ...], type[Row]] = {}

# tuple.__new__(cls, values) skips the namedtuple's Python-level __new__ and its length check: the
# driver always hands over exactly one value per column.
_new_tuple = tuple.__new__


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
    return _class_for(tuple(column_names))


def _class_for(key: tuple[str, ...]) -> type[Row]:
    cached = _classes.get(key)
    if cached is not None:
        return cached
    taken: set[str] = set()
    fields = [_field_name(column, i, taken) for i, column in enumerate(key)]
    cls: type[Row] = namedtuple("Row", fields)  # type: ignore[misc]
    if len(_classes) < _MAX_CACHED_CLASSES:
        _classes[key] = cls
    return cls


def row_factory(column_names: list[str], rows: list[tuple[Any, ...]]) -> list[Row]:
    """The driver row factory: decoded tuples of one page into a list of rows."""
    # map() with two iterables calls tuple.__new__(cls, row) straight from C; `repeat` hands the
    # class to every call without a functools.partial in between (about a sixth cheaper per row).
    return list(map(_new_tuple, repeat(_class_for(tuple(column_names))), rows))
