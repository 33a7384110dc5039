"""The Users resource: `/users` routes, their schemas, and the Cassandra statements behind them."""

from cqlstar.users.controller import UserController
from cqlstar.users.dependencies import UserRepositoryHolder

__all__ = ["UserController", "UserRepositoryHolder"]
