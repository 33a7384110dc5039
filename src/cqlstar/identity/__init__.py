"""Who is calling: login at the identity provider, local token checks, and roles per route."""

from cqlstar.identity.principal import Principal, Role

__all__ = ["Principal", "Role"]
