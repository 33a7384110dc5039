"""`GET /users/stream/pages` signs its tokens with one signer per secret, built once and not per
request, and the tokens it issues still open on the next request."""

from __future__ import annotations

import secrets

import pytest
from litestar import Litestar
from litestar.di import Provide
from litestar.testing import AsyncTestClient
from opentelemetry.trace import NoOpTracer

from cqlstar.services import Services
from cqlstar.settings import Settings
from cqlstar.telemetry import Telemetry
from cqlstar.users import UserController, dependencies
from cqlstar.users.dependencies import provide_page_token_signer
from cqlstar.users.page_tokens import PageTokenSigner
from cqlstar.users.repository import Page, UserRepository
from cqlstar.users.streaming import StreamSlots
from cqlstar.web.dependencies import provide_settings

STATE_AFTER_PAGE = b"\x00cassandra-paging-state\xff"


class FakeRepository(UserRepository):
    """Only `fetch_page`: two pages. A subclass, since the handler's signature checks the type."""

    def __init__(self) -> None:
        self.resumed_from: list[bytes | None] = []

    async def fetch_page(
        self, *, fetch_size: int, min_age: int | None, paging_state: bytes | None
    ) -> Page:
        self.resumed_from.append(paging_state)
        return Page([], STATE_AFTER_PAGE if paging_state is None else None)


class RepositoryHolder:
    def __init__(self, repository: FakeRepository) -> None:
        self.current = repository


class CountingSigner(PageTokenSigner):
    built = 0

    def __init__(self, secret: bytes) -> None:
        super().__init__(secret)
        type(self).built += 1


def settings() -> Settings:
    return Settings(page_token_secret=secrets.token_bytes(32))


def test_one_signer_per_secret() -> None:
    first, other = settings(), settings()

    signer = provide_page_token_signer(first)

    assert provide_page_token_signer(first) is signer
    # Equal settings (a restart, another app in the process) share it; another secret does not.
    assert provide_page_token_signer(Settings(page_token_secret=first.page_token_secret)) is signer
    assert provide_page_token_signer(other) is not signer


async def test_repeated_requests_share_one_signer_and_tokens_round_trip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dependencies, "PageTokenSigner", CountingSigner)
    monkeypatch.setattr(CountingSigner, "built", 0)
    repository = FakeRepository()
    app = Litestar(
        route_handlers=[UserController],
        state=Services(
            settings=settings(),
            cassandra=None,  # type: ignore[arg-type]  # these routes never reach it
            user_repository=RepositoryHolder(repository),  # type: ignore[arg-type]
            telemetry=Telemetry(tracer=NoOpTracer()),
            redis=None,
            rate_limiter=None,  # type: ignore[arg-type]  # no limits in front of these routes
            stream_slots=StreamSlots(4),
        ).state(),
        dependencies={"settings": Provide(provide_settings, sync_to_thread=False)},
    )

    async with AsyncTestClient(app) as client:
        first = (await client.get("/users/stream/pages", params={"fetch_size": 10})).json()
        second = await client.get(
            "/users/stream/pages", params={"fetch_size": 10, "page_state": first["page_state"]}
        )
        forged = await client.get(
            "/users/stream/pages", params={"fetch_size": 10, "page_state": "A" * 60}
        )

    assert first["has_more"] is True
    assert second.status_code == 200, second.text
    assert second.json() == {"users": [], "has_more": False, "page_state": None}
    assert repository.resumed_from == [None, STATE_AFTER_PAGE]  # the token opened to the state
    assert forged.status_code == 400
    assert CountingSigner.built == 1
