"""The service's side of Cassandra: its schema and the one long-lived connection it keeps."""

from cqlstar.database.connection import CassandraConnection, CassandraUnavailable

__all__ = ["CassandraConnection", "CassandraUnavailable"]
