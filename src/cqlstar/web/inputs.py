"""What a request may send: JSON bodies decoded straight into their declared type, body media
types, and integer query parameters written as integers.

Litestar, left to itself, parses a JSON body into plain Python objects first and converts those to
the handler's type afterwards, in msgspec's lax mode. Three things follow that the service must
not do: a deeply nested body ends in a `RecursionError` (500); fields the type ignores are still
built as objects (a 1 MiB body of `[]` costs tens of MiB); and lax conversion turns `"3e1"`,
`"30.0"` and `30.0` into the integer 30, which the OpenAPI document says is not an integer. The same
lax conversion reads `?limit=1e2` as 100.

So here:

- `JSONBodyRequest` (the app's `request_class`) decodes a handler's body with one
  `msgspec.json.Decoder` of the handler's declared body type, strictly: JSON types as the schema
  says them, unknown fields skipped by the parser without being built, every failure a 422 with
  the failing value's `loc`. Nesting deeper than the parser's recursion allowance answers 422.
- `RequestInputsMiddleware` answers 415 when a route that takes a JSON body is sent anything but
  `application/json` (or a `+json` type), an absent Content-Type included, and 422 when an integer
  query parameter is not written as a JSON integer (ASCII digits with an optional minus sign: no
  exponent, fraction, `+`, `_`, spaces, leading zeros or non-ASCII digits).

What each handler declares is read once per handler from Litestar's parsed signature, in
`declared_inputs`, the one place that looks at it.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from functools import cache
from typing import Any, Union, get_args, get_origin
from urllib.parse import parse_qsl

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.params import BodyKwarg, DependencyKwarg, ParameterKwarg
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import ASGIApp, Receive, Scope, Send

# An integer as JSON writes one (no leading zeros), which is also all that msgspec's own text-to-int
# conversion takes: what `integer` in the OpenAPI document means for a query value.
INTEGER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)")
# msgspec ends its error messages with the path of the failing value: "... - at `$.users[3].age`".
_ERROR_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)

TOO_DEEP = "JSON nests too deeply"
UNSUPPORTED_MEDIA_TYPE = "Content-Type must be application/json"
NOT_AN_INTEGER = "Expected an integer (decimal digits only)"


@dataclass(frozen=True)
class DeclaredInputs:
    """What one route handler takes from a request, as far as these checks care."""

    body_decoder: msgspec.json.Decoder[Any] | None
    integer_query_params: frozenset[str]


@cache
def declared_inputs(handler: BaseRouteHandler) -> DeclaredInputs:
    """The body type and integer query parameters `handler` declares (cached per handler)."""
    body_decoder = None
    integer_query: set[str] = set()
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if name == "data" or isinstance(kwarg, BodyKwarg):
            # Form and MessagePack bodies keep Litestar's own handling.
            if not isinstance(kwarg, BodyKwarg) or kwarg.media_type == RequestEncodingType.JSON:
                # `annotation` is the declared type without Litestar's own
                # `Annotated[..., Body()]` wrapper; msgspec constraints (`Meta`) inside it are kept.
                body_decoder = msgspec.json.Decoder(field.annotation)
            continue
        if isinstance(kwarg, DependencyKwarg) or name in _RESERVED:
            continue
        if isinstance(kwarg, ParameterKwarg) and (kwarg.header or kwarg.cookie):
            continue
        query_name = kwarg.query if isinstance(kwarg, ParameterKwarg) and kwarg.query else name
        if _is_integer(field.annotation):
            integer_query.add(query_name)
    return DeclaredInputs(body_decoder, frozenset(integer_query))


_RESERVED = frozenset(
    {"request", "socket", "state", "scope", "headers", "cookies", "query", "body", "data"}
)


def _is_integer(annotation: Any) -> bool:
    if annotation is int:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        arms = [arm for arm in get_args(annotation) if arm is not type(None)]
        return len(arms) == 1 and arms[0] is int
    return False


def decode_json_body(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    """`body` decoded by `decoder`; any failure a `ValidationException` (422) naming where."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        match = _ERROR_PATH.match(str(exc))
        message, path = (match["message"], match["path"]) if match else (str(exc), None)
        entry = {"message": message, "source": "body"}
        if path:
            entry["key"] = path.removeprefix(".")
        raise ValidationException(detail="Validation failed", extra=[entry]) from None
    except msgspec.DecodeError as exc:
        raise ValidationException(detail=str(exc)) from None
    except RecursionError:
        # msgspec guards its recursion with the interpreter's limit, in skipped fields as well.
        raise ValidationException(detail=TOO_DEEP) from None
    except UnicodeDecodeError:
        raise ValidationException(detail="Request body is not valid UTF-8") from None


class JSONBodyRequest(Request[Any, Any, Any]):
    """A `Request` whose `json()` decodes into the handler's declared body type (see the module)."""

    async def json(self) -> Any:
        decoder = declared_inputs(self.route_handler).body_decoder
        if decoder is None:
            return await super().json()
        return decode_json_body(decoder, await self.body())


def is_json_media_type(content_type: bytes | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


class RequestInputsMiddleware:
    """Litestar middleware (after routing): body media type, then integer query values."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            inputs = declared_inputs(scope["route_handler"])
            if inputs.body_decoder is not None:
                content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
                if not is_json_media_type(content_type):
                    raise HTTPException(
                        status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=UNSUPPORTED_MEDIA_TYPE
                    )
            if inputs.integer_query_params and scope["query_string"]:
                _check_integer_query(scope, inputs.integer_query_params)
        await self.app(scope, receive, send)


def _check_integer_query(scope: Scope, names: frozenset[str]) -> None:
    query = scope["query_string"].decode("latin-1")
    bad = sorted(
        {
            name
            for name, value in parse_qsl(query, keep_blank_values=True)
            if name in names and not INTEGER_TEXT.fullmatch(value)
        }
    )
    if bad:
        raise ValidationException(
            detail="Validation failed",
            extra=[{"message": NOT_AN_INTEGER, "key": name, "source": "query"} for name in bad],
        )
