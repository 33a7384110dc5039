"""The CQL the ceilings issue: the same read by key the service's `GET /users/{id}` makes."""

from cqlstar.users.repository import SELECT_USER_BY_ID

# Imported, not copied: a ceiling that read other columns or types (uuid and datetime objects where
# the service reads text and epoch milliseconds) would measure different decoding work.
READ_USER = SELECT_USER_BY_ID

INSERT_USER = (
    "INSERT INTO users (id, name, email, age, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
)

SELECT_IDS = "SELECT id FROM users LIMIT ?"
