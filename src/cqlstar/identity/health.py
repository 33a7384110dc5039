"""The identity provider's health check (`cqlstar.system.health.DependencyCheck`): its JWKS, the
key set every token check depends on, fetched through the issuer's discovery document."""

from __future__ import annotations

from typing import Any

from cqlstar.identity.issuer import IssuerClient


class IdentityProviderCheck:
    name = "identity_provider"
    # Down is degraded, not unhealthy: tokens already issued keep verifying with the cached keys.
    critical = False

    def __init__(self, issuer: IssuerClient) -> None:
        self.issuer = issuer

    async def probe(self, timeout: float) -> dict[str, Any]:
        jwks = await self.issuer.jwks(purpose="health")
        return {"issuer": self.issuer.issuer, "signing_keys": len(jwks["keys"])}
