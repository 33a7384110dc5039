"""The `/web` message protocol: what a client sends, what it gets back, and how a frame is read.

One msgspec tagged struct per package, tagged by `pkg_id`: a well-formed request is decoded and
validated in one pass (`decode_frame`), straight into the types the handlers take. The `data` types
are, or are built from, the HTTP API's own (`cqlstar.users.schemas`): `UserCreate` as it is, the
update as `UserUpdate` plus the id (so "at least one field" is the same check), ages as `Age`. The
bounds that HTTP declares as query parameters (`limit`, `fetch_size`) are declared here, where the
contract gives the WebSocket its own (`fetch_size` goes to 1000, not 5000).

A frame that does not decode is read a second time, leniently (`_Envelope`), only to echo the
`pkg_id` and `req_id` the client sent and to tell a control message (`{"type": "auth"}`,
`{"type": "pong"}`) from a bad request. The fast path is one decode; only bad frames pay for two.

Decisions where the contract is silent (also in the AsyncAPI document):
- `pkg_id` is echoed whenever it is an integer, even an unknown one; `req_id` only when it is a UUID
  in its canonical text form (any case), and then exactly as sent.
- A user's `id` in `data` is, like `/users/{id}`, the canonical text form only (any case).
- Unknown fields in a request or in its `data` are ignored, as in the HTTP API.
- Binary frames are answered with status 2: the protocol is JSON text.
- JSON nested deeper than msgspec's recursion allowance (which guards skipped fields as well) is
  answered with status 2 `JSON nests too deeply`, as the HTTP API answers such a body with 422;
  nothing can be echoed from it.
"""

from __future__ import annotations

import uuid
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Final, Literal

import msgspec

from cqlstar.identity.principal import Role
from cqlstar.users.schemas import Age, User, UserCreate, UserUpdate

# Over this many bytes, a frame is refused with close code 1009 (the contract's 64 KiB).
MAX_FRAME_BYTES: Final = 64 * 1024

# The canonical 8-4-4-4-12 text of a UUID, either case (what `str(uuid)` and browsers'
# `crypto.randomUUID()` produce).
UUID_PATTERN: Final = (
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
RequestId = Annotated[
    str,
    msgspec.Meta(
        pattern=UUID_PATTERN,
        extra_json_schema={
            "description": "Chosen by the client; echoed in the answer",
            "extra": {"format": "uuid"},
        },
    ),
]
# Broadcast events carry this req_id: no request asked for them.
BROADCAST_REQ_ID: Final = "00000000-0000-0000-0000-000000000000"
BROADCAST_PKG_ID: Final = 100


class Status(IntEnum):
    """An answer's `status_code`."""

    OK = 0
    ERROR = 1  # our side or Cassandra's failed, a user was not found, or the rate limit
    INVALID = 2  # not JSON, not an object, unknown pkg_id, bad req_id, data failing validation
    FORBIDDEN = 3  # the principal lacks the package's role (or has not authenticated yet)


class CloseCode(IntEnum):
    """Why the server closed a connection (always after accepting it, so the client sees the code)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the service is shutting down
    POLICY_VIOLATION = 1008  # the principal already holds WS_MAX_CONNECTIONS connections
    MESSAGE_TOO_BIG = 1009  # a frame over 64 KiB
    TRY_AGAIN_LATER = 1013  # this reader fell too far behind the broadcast
    INVALID_TOKEN = 4001  # a token failed a check, expired, was logged out, or changed principal
    AUTH_TIMEOUT = 4002  # no authentication within 5 s of connecting
    HEARTBEAT_TIMEOUT = 4003  # nothing received for HEARTBEAT_TIMEOUT_S, a ping included: peer dead


# ---- package data ------------------------------------------------------------------------------

ListLimit = Annotated[int, msgspec.Meta(ge=1, le=100, description="How many users (1 to 100)")]
FetchSize = Annotated[int, msgspec.Meta(ge=10, le=1000, description="Users per page (10 to 1000)")]
PageState = Annotated[
    str,
    msgspec.Meta(
        max_length=4096, description="The previous page's `page_state`, to get the next one"
    ),
]
# The canonical text only, as `/users/{id}` takes it (`cqlstar.users.controller.parse_user_id`):
# `uuid.UUID`, and msgspec's UUID type, also take 32 bare hex digits, which gave one user two ids.
UserIdField = Annotated[
    str,
    msgspec.Meta(
        pattern=UUID_PATTERN,
        description="The user's id",
        extra_json_schema={"format": "uuid"},
    ),
]


class GetUsersData(msgspec.Struct, frozen=True):
    limit: ListLimit = 10
    age_filter: Age | None = None


class GetPaginatedUsersData(msgspec.Struct, frozen=True):
    fetch_size: FetchSize = 100
    age_filter: Age | None = None
    page_state: PageState | None = None


class UserRef(msgspec.Struct, frozen=True):
    """`{"id"}`: the user a package reads or deletes."""

    id: UserIdField

    @property
    def user_id(self) -> uuid.UUID:
        return uuid.UUID(self.id)


class UpdateUserData(UserUpdate, frozen=True, kw_only=True):
    """`UserUpdate` (at least one of name, email, age, checked by its own `__post_init__`) plus the
    id. A `UserUpdate`, so the repository takes it as it is."""

    id: UserIdField

    @property
    def user_id(self) -> uuid.UUID:
        return uuid.UUID(self.id)


# ---- requests: one tagged struct per package ----------------------------------------------------


class _Request(msgspec.Struct, frozen=True, tag_field="pkg_id"):
    req_id: RequestId


class GetUsers(_Request, frozen=True, tag=1):
    data: GetUsersData = msgspec.field(default_factory=GetUsersData)


class GetPaginatedUsers(_Request, frozen=True, tag=2):
    data: GetPaginatedUsersData = msgspec.field(default_factory=GetPaginatedUsersData)


class CreateUser(_Request, frozen=True, tag=3):
    data: UserCreate


class GetUser(_Request, frozen=True, tag=4):
    data: UserRef


class UpdateUser(_Request, frozen=True, tag=5):
    data: UpdateUserData


class DeleteUser(_Request, frozen=True, tag=6):
    data: UserRef


Request = GetUsers | GetPaginatedUsers | CreateUser | GetUser | UpdateUser | DeleteUser


class Package(msgspec.Struct, frozen=True):
    """One row of the contract's package table."""

    pkg_id: int
    name: str
    role: Role
    request: type[_Request]
    # What `data` holds in a successful answer, and in `meta` (for the AsyncAPI document).
    answer: Any
    meta: Any = None
    summary: str = ""


class PagingMeta(msgspec.Struct, frozen=True):
    has_more: bool
    page_state: str | None


PACKAGES: Final[dict[int, Package]] = {
    p.pkg_id: p
    for p in (
        Package(1, "GET_USERS", Role.USERS_READ, GetUsers, list[User], None, "List users"),
        Package(
            2,
            "GET_PAGINATED_USERS",
            Role.USERS_READ,
            GetPaginatedUsers,
            list[User],
            PagingMeta,
            "Read users a page at a time; the same page tokens as GET /users/stream/pages",
        ),
        Package(3, "CREATE_USER", Role.USERS_WRITE, CreateUser, User, None, "Create a user"),
        Package(4, "GET_USER", Role.USERS_READ, GetUser, User, None, "Get a user"),
        Package(5, "UPDATE_USER", Role.USERS_WRITE, UpdateUser, User, None, "Update a user"),
        Package(6, "DELETE_USER", Role.USERS_WRITE, DeleteUser, None, None, "Delete a user"),
    )
}
PACKAGE_OF: Final[dict[type[_Request], Package]] = {p.request: p for p in PACKAGES.values()}


# ---- answers and server messages ----------------------------------------------------------------


class Answer(msgspec.Struct, frozen=True, omit_defaults=False):
    """The one answer every request gets (and the shape of broadcast events)."""

    pkg_id: int | None
    req_id: str | None
    status_code: Status
    data: Any = None
    meta: Any = None
    msg: str | None = None


class UserEventKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class UserEvent(msgspec.Struct, frozen=True):
    """A broadcast's `data`: what changed. `user` is null for a deletion."""

    event: UserEventKind
    user_id: str
    user: User | None


class UserEventMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A broadcast, as readers receive it (pkg_id 100, the zero req_id, status 0)."""

    pkg_id: Literal[100] = BROADCAST_PKG_ID
    req_id: Literal["00000000-0000-0000-0000-000000000000"] = BROADCAST_REQ_ID
    status_code: Literal[0] = 0
    data: UserEvent
    meta: None = None
    msg: None = None


class AuthMessage(msgspec.Struct, frozen=True, tag_field="type", tag="auth"):
    """Authenticates a connection that sent no token on the handshake, or renews the token."""

    token: str


class PongMessage(msgspec.Struct, frozen=True, tag_field="type", tag="pong"):
    """The answer to a server `ping`; any other frame proves liveness as well."""


class AuthOk(msgspec.Struct, frozen=True, tag_field="type", tag="auth_ok"):
    pass


class PingMessage(msgspec.Struct, frozen=True, tag_field="type", tag="ping"):
    pass


ControlMessage = AuthMessage | PongMessage


# ---- decoding --------------------------------------------------------------------------------


class _Envelope(msgspec.Struct):
    """Any JSON object, read leniently to echo what it can and to find control messages."""

    pkg_id: Any = None
    req_id: Any = None
    type: Any = None
    token: Any = None


class Invalid(msgspec.Struct, frozen=True):
    """A frame that is not a valid request: answered with status 2 and `msg`."""

    pkg_id: int | None
    req_id: str | None
    msg: str


TOO_DEEP: Final = "JSON nests too deeply"

# Strict, as the HTTP API decodes its bodies (`cqlstar.web.inputs`): JSON types as the schema says,
# so "36", 36.0 and booleans are not ages.
_request_decoder: msgspec.json.Decoder[Request] = msgspec.json.Decoder(Request)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_control_decoder: msgspec.json.Decoder[ControlMessage] = msgspec.json.Decoder(ControlMessage)


def decode_frame(frame: str | bytes) -> Request | ControlMessage | Invalid:  # noqa: PLR0911
    """A request, a control message, or why the frame is neither (with what can be echoed)."""
    try:
        return _request_decoder.decode(frame)
    except msgspec.DecodeError as error:  # ValidationError is a DecodeError too
        first_error = error
    except RecursionError:
        return Invalid(None, None, TOO_DEEP)
    try:
        envelope = _envelope_decoder.decode(frame)
    except RecursionError:  # the request decoder can fail first, before reaching the depth
        return Invalid(None, None, TOO_DEEP)
    except msgspec.ValidationError:
        return Invalid(None, None, "A message must be a JSON object")
    except (msgspec.DecodeError, UnicodeDecodeError):
        return Invalid(None, None, "Not valid JSON")
    pkg_id = envelope.pkg_id if type(envelope.pkg_id) is int else None
    req_id = envelope.req_id if _is_request_id(envelope.req_id) else None
    if envelope.pkg_id is None and envelope.type is not None:
        try:
            return _control_decoder.decode(frame)
        except msgspec.ValidationError as error:
            return Invalid(None, req_id, _field_message(error))
    if pkg_id is not None and pkg_id not in PACKAGES:
        return Invalid(pkg_id, req_id, f"Unknown pkg_id {pkg_id}")
    return Invalid(pkg_id, req_id, _field_message(first_error))


def _is_request_id(value: object) -> bool:
    if type(value) is not str or len(value) != 36:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return value[8] == value[13] == value[18] == value[23] == "-"


def _field_message(error: msgspec.DecodeError) -> str:
    """msgspec's message with its `$.data.age` path shortened to `data.age`: it names the field."""
    text = str(error)
    message, sep, path = text.rpartition(" - at `$.")
    if not sep:
        return text
    field = path.rstrip("`")
    if field in ("req_id", "data.id") and message.startswith("Expected `str` matching regex"):
        message = "Expected a UUID (8-4-4-4-12 hexadecimal digits)"
    return f"{field}: {message}"
