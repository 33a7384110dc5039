"""Identity wiring for `create_app`: the services, middleware, routes, lifespan and OpenAPI parts
that `CQLSTAR_AUTH` selects. With `oidc` (the default) `build_identity` needs `OIDC_ISSUER`, and
never falls open; with `disabled` it returns None and the lifespan says so loudly at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from litestar import Litestar
from litestar.middleware import DefineMiddleware
from redis.asyncio import Redis

from cqlstar.identity.issuer import IssuerClient, IssuerUnavailable
from cqlstar.identity.keys import SigningKeys
from cqlstar.identity.login import LoginController
from cqlstar.identity.middleware import BearerAuthenticationMiddleware
from cqlstar.identity.revocation import LocalRevocations, RevocationStore, SharedRevocations
from cqlstar.identity.tokens import TokenVerifier
from cqlstar.settings import Settings, SettingsError

log = logging.getLogger(__name__)

REVOCATIONS_LOAD_TIMEOUT_S = 2.0
DISABLED_WARNING = (
    "AUTHENTICATION IS DISABLED (CQLSTAR_AUTH=disabled): every route is open to anyone. "
    "Never run like this where untrusted clients can reach the service."
)


@dataclass
class Identity:
    """The identity services of one app."""

    provider: IssuerClient
    verifier: TokenVerifier
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)

    def middleware(self) -> DefineMiddleware:
        return DefineMiddleware(BearerAuthenticationMiddleware, verifier=self.verifier)

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        # Keys are fetched in the background: the service starts (and serves its open routes)
        # while the issuer is slow or down, and the first token check does not wait for them.
        self._tasks = [asyncio.create_task(self._prefetch_keys())]
        revocations = self.verifier.revocations
        if isinstance(revocations, SharedRevocations):
            # Other processes' logouts arrive through Redis for as long as the app runs.
            self._tasks.append(asyncio.create_task(revocations.run()))
            # Serve only once the sessions logged out so far are known (a new process must not
            # accept them meanwhile), unless Redis does not answer: then start anyway, and say so.
            try:
                await asyncio.wait_for(revocations.subscribed.wait(), REVOCATIONS_LOAD_TIMEOUT_S)
            except TimeoutError:
                log.warning("revocations: Redis did not answer at start; loading in the background")
        try:
            yield
        finally:
            for task in self._tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.provider.aclose()

    async def _prefetch_keys(self) -> None:
        try:
            await self.verifier.keys.refresh()
        except IssuerUnavailable as error:
            log.warning(
                "the identity provider did not answer at start; tokens are checked once it does",
                extra={"error": str(error)},
            )


def build_identity(settings: Settings, redis: Redis | None = None) -> Identity | None:
    """The identity services `settings` ask for, or None when authentication is disabled.

    With a Redis, logouts are shared between processes; without one they hold in this process."""
    if settings.auth == "disabled":
        return None
    if not settings.oidc_issuer:
        raise SettingsError("OIDC_ISSUER is not set and CQLSTAR_AUTH is oidc: refusing to run open")
    revocations: RevocationStore = (
        SharedRevocations(redis) if redis is not None else LocalRevocations()
    )
    provider = IssuerClient(
        settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
    )
    verifier = TokenVerifier(
        issuer=settings.oidc_issuer,
        audience=settings.audience,
        roles_claim=settings.oidc_roles_claim,
        keys=SigningKeys(provider),
        revocations=revocations,
    )
    return Identity(provider=provider, verifier=verifier)


@asynccontextmanager
async def warn_auth_disabled(app: Litestar) -> AsyncIterator[None]:
    log.warning(DISABLED_WARNING)
    yield


IDENTITY_ROUTE_HANDLERS = (LoginController,)
