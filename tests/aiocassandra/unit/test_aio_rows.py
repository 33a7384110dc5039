"""Row construction: attribute access, one cached class per column set, awkward column names."""

from __future__ import annotations

from cqlstar.aiocassandra.rows import row_class, row_factory


def test_rows_are_tuples_with_attributes() -> None:
    rows = row_factory(["id", "name"], [(1, "ada"), (2, "bob")])
    assert rows == [(1, "ada"), (2, "bob")]
    assert rows[0].id == 1
    assert rows[1].name == "bob"
    assert rows[0]._asdict() == {"id": 1, "name": "ada"}


def test_one_class_per_column_set_across_pages() -> None:
    page1 = row_factory(["a", "b"], [(1, 2)])
    page2 = row_factory(["a", "b"], [(3, 4)])
    assert type(page1[0]) is type(page2[0]) is row_class(["a", "b"])
    assert type(row_factory(["b", "a"], [(1, 2)])[0]) is not type(page1[0])


def test_column_names_that_are_not_identifiers() -> None:
    cls = row_class(["count", "writetime(v)", "[applied]", "class", "1st", "a", "A", "a"])
    assert cls._fields == ("count", "writetime_v", "applied", "class_", "col_4", "a", "A", "a_7")


def test_empty_page() -> None:
    assert row_factory(["x"], []) == []
