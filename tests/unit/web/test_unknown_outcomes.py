"""Outcomes Cassandra cannot tell (CAS_WRITE_UNKNOWN, a connection lost mid-request) answer 504, not 500."""

from __future__ import annotations

from typing import Any

from cassandra.protocol import ErrorMessage, ServerError
from litestar import Litestar, get
from litestar.testing import TestClient

from cqlstar.web.errors import EXCEPTION_HANDLERS


def _raising(exc: Exception) -> Litestar:
    @get("/")
    async def handler() -> None:
        raise exc

    return Litestar([handler], exception_handlers=EXCEPTION_HANDLERS)


def _answer(exc: Exception) -> Any:
    with TestClient(_raising(exc)) as client:
        return client.get("/")


def test_cas_write_unknown_is_a_gateway_timeout() -> None:
    error = ErrorMessage(
        0x1700, "CAS operation result is unknown - proposal accepted by 1 but not a quorum.", None
    )
    response = _answer(error)
    assert response.status_code == 504
    assert response.json() == {"detail": "Gateway Timeout"}


def test_a_connection_lost_mid_request_is_a_gateway_timeout() -> None:
    from cassandra.connection import ConnectionShutdown

    response = _answer(ConnectionShutdown("[Errno 104] Connection reset by peer"))
    assert response.status_code == 504
    assert response.json() == {"detail": "Gateway Timeout"}


def test_other_server_errors_stay_500_without_details() -> None:
    response = _answer(ServerError(0x0000, "boom in table secret_stuff", None))
    assert response.status_code == 500
    assert "secret_stuff" not in response.text
