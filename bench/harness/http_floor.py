"""The HTTP floor: the service's own app stack answering a constant body, without touching Cassandra.

`create_floor_app` is `cqlstar.app:create_app` itself (same middleware, exception handlers,
telemetry, msgspec serialisation, lifespan) with one more route, `GET /bench/floor`, that returns a
user-shaped Struct. What the service's `get_user` costs beyond this floor is the database read and the
work around it; what this floor costs is granian, Litestar and the middleware. Served with:

    python -m cqlstar --factory bench.harness.http_floor:create_floor_app
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from litestar import Litestar, get

from cqlstar.app import create_app

FLOOR_PATH = "/bench/floor"


class FloorUser(msgspec.Struct, frozen=True):
    """Shaped like a stored user, so the encoder does the same amount of work as for `get_user`."""

    id: uuid.UUID
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    email: str
    age: Annotated[int, msgspec.Meta(ge=0, le=150)]
    created_at: dt.datetime
    updated_at: dt.datetime


_STAMP = dt.datetime(2025, 1, 1, 12, 0, 0, 123000, tzinfo=dt.UTC)
_FLOOR_USER = FloorUser(
    id=uuid.UUID("00000000-0000-4000-8000-000000000000"),
    name="Floor User",
    email="floor@example.com",
    age=42,
    created_at=_STAMP,
    updated_at=_STAMP,
)


@get(
    FLOOR_PATH,
    operation_id="BenchFloor",
    summary="Constant user-shaped body",
    opt={"operation": "answer the floor"},
    include_in_schema=False,
)
async def floor() -> FloorUser:
    """A constant answer: measures everything but the database."""
    return _FLOOR_USER


def create_floor_app() -> Litestar:
    app = create_app()
    app.register(floor)
    return app
