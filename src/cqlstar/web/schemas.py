"""Response bodies every domain shares: the error shapes `cqlstar.web.errors` produces, and a plain
message."""

from __future__ import annotations

import msgspec


class ErrorDetail(msgspec.Struct, frozen=True):
    """The body of every error answer except validation failures."""

    detail: str


class ValidationIssue(msgspec.Struct, frozen=True):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorDetail(msgspec.Struct, frozen=True):
    """422: one item per invalid value; `loc` starts with where it came from (body, query)."""

    detail: list[ValidationIssue]


class Message(msgspec.Struct, frozen=True):
    message: str
