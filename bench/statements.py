"""The CQL the ceilings issue: the same read by key the service's `GET /users/{id}` makes."""

READ_USER = "SELECT id, name, email, age, created_at, updated_at FROM users WHERE id = ?"

INSERT_USER = (
    "INSERT INTO users (id, name, email, age, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
)

SELECT_IDS = "SELECT id FROM users LIMIT ?"
