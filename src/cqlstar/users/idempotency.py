"""`Idempotency-Key` on `POST /users` and `POST /users/batch`: a retried create is applied once.

A client that got no answer (a 504, a dropped connection) cannot know whether its users were
written. Sent again with the same `Idempotency-Key` and the same body, the request answers what the
first one answered: the same users, the same ids, and no new rows. The same key with another body
is refused (422, `loc` `["header", "Idempotency-Key"]`); while another request with the key is
still being worked on, the answer is 409 with `Retry-After`.

**Where the record lives.** In Cassandra (`idempotency_keys`, created with the schema), so it
survives restarts and every process serving the API sees it. One row per (operation, principal,
key): keys are the client's, so two principals' keys never meet, and a key used on `POST /users`
means nothing to `POST /users/batch`. With `CQLSTAR_AUTH=disabled` every client is the same
principal, `""`. Records expire `KEY_TTL_S` (24 hours) after the first request; after that the key
is new again. Every write to a record is a lightweight transaction, like every write to a user, so
that concurrent requests with one key are ordered by Paxos.

**What a record holds.** The fingerprint of the request (SHA-256 of the operation and the users as
validated, so whitespace, key order, ignored fields and the batch's array or object form do not
matter), the ids chosen for the users and their creation time, a state, and which attempt holds it
since when. The answer is fully determined by that and the body, so it is not stored: a replay
rebuilds it (and says so in `Idempotency-Replayed: true`).

**How a request goes.**

1. It claims the key (`INSERT ... IF NOT EXISTS`) with fresh ids, as `writing`, and writes the
   users (`UserRepository.insert_all`), then marks the record `done`. The answer is 201.
2. A request that finds the key `done` with the same fingerprint answers the first answer, and
   writes nothing.
3. One that finds it `writing` (or `undoing`) claimed less than `LEASE_S` ago answers 409: the
   holder is at work. Claimed longer ago, the holder is gone (its process stopped mid-write):
   this request takes the record over (a conditional update on the holder's attempt) and finishes
   the write with the record's ids and time. A write that already holds the same user counts as
   done, so finishing is safe even if the old holder turns out to be alive and writing too.
4. If writing fails or the request is abandoned (budget, client gone), the holder undoes it in the
   background, `SETTLE_S` later (as for any failed create, see `UserRepository.remove_later`):
   it marks the record `undoing` if it still holds it, deletes the users, then deletes the record,
   so the key can be used afresh; the failed request's answer (504, 503) had no ids to keep. A
   holder that lost the record to a takeover undoes nothing: the new holder finishes the write.

So after a 504, the same key and body either answer the users that were written (201, the
`done` record), or 409 for as long as the clean-up or another attempt holds the key, or, once the
clean-up is over, create the users anew.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import HeaderParameter
from litestar.status_codes import HTTP_409_CONFLICT

from cqlstar.aiocassandra import AsyncSession, outside_budget
from cqlstar.users.repository import SETTLE_S, UserRepository
from cqlstar.users.schemas import User, UserCreate, format_timestamp, utc_now_ms

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotency-Replayed"
# How long a key is remembered, from its first request.
KEY_TTL_S = 24 * 60 * 60
# How long a request may hold a key before another may take it over: longer than any request
# writes (a 60 s budget at most; without one, a few rounds of the 10 s driver timeout) plus the
# clean-up's SETTLE_S.
LEASE_S = 60
RETRY_AFTER_S = 1

# Printable ASCII without spaces, as most APIs that take the header accept (UUIDs, ULIDs, hashes).
IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name=HEADER,
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description=(
            "Makes the request safe to retry: the same key with the same body returns the first "
            "answer and writes nothing more, for 24 hours (1 to 255 printable ASCII characters, "
            "e.g. a UUID)"
        ),
    ),
]

_WRITING, _DONE, _UNDOING = "writing", "done", "undoing"

_CLAIM = (
    "INSERT INTO idempotency_keys (operation, principal, key, fingerprint, user_ids, created_at, "
    "state, owner, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?"
)
# Conditional on the holder *and* its claim time: a holder that renewed its claim keeps the key.
_TAKE_OVER = (
    "UPDATE idempotency_keys USING TTL ? SET state = ?, owner = ?, claimed_at = ? "
    "WHERE operation = ? AND principal = ? AND key = ? IF owner = ? AND claimed_at = ?"
)
# Moving to a new state renews the claim: the lease then covers the new step.
_SET_STATE = (
    "UPDATE idempotency_keys USING TTL ? SET state = ?, claimed_at = ? "
    "WHERE operation = ? AND principal = ? AND key = ? IF owner = ? AND state = ?"
)
_RELEASE = (
    "DELETE FROM idempotency_keys WHERE operation = ? AND principal = ? AND key = ? IF owner = ?"
)


class KeyInUse(HTTPException):
    """Another request holds the key right now."""

    status_code = HTTP_409_CONFLICT


class _Record(msgspec.Struct, frozen=True):
    fingerprint: bytes
    user_ids: list[uuid.UUID]
    created_at: int
    state: str
    owner: uuid.UUID
    claimed_at: int


def fingerprint(operation: str, new_users: Sequence[UserCreate]) -> bytes:
    """What makes two requests the same: the operation and the users, as validated."""
    return hashlib.sha256(operation.encode() + b"\0" + msgspec.json.encode(new_users)).digest()


def principal_of(user: object) -> str:
    """The key's owner: the principal's subject, or "" when authentication is off."""
    subject = getattr(user, "subject", None)
    return subject if isinstance(subject, str) else ""


class UserCreates:
    """Creating users, at most once per `Idempotency-Key`; without a key, straight through."""

    def __init__(self, repository: UserRepository, session: AsyncSession, statements: Any) -> None:
        self.repository = repository
        self._session = session
        self._claim, self._take_over, self._set_state, self._release = statements

    @classmethod
    async def prepare(cls, session: AsyncSession, repository: UserRepository) -> UserCreates:
        # Not marked idempotent: the driver neither retries nor speculates them (the outcome of a
        # timed-out Paxos round is unknown); each step below copes with a lost answer instead.
        statements = [
            await session.prepare(cql, idempotent=False)
            for cql in (_CLAIM, _TAKE_OVER, _SET_STATE, _RELEASE)
        ]
        return cls(repository, session, statements)

    async def create(
        self, new_user: UserCreate, *, key: str | None, principal: str
    ) -> tuple[User, bool]:
        """The user, and whether the answer is a replay of an earlier request's."""
        if key is None:
            return await self.repository.create(new_user), False
        users, replayed = await self._once("create user", key, principal, [new_user])
        return users[0], replayed

    async def create_many(
        self, new_users: Sequence[UserCreate], *, key: str | None, principal: str
    ) -> tuple[list[User], bool]:
        if key is None:
            return await self.repository.create_many(new_users), False
        return await self._once("create users", key, principal, new_users)

    async def _once(
        self, operation: str, key: str, principal: str, new_users: Sequence[UserCreate]
    ) -> tuple[list[User], bool]:
        where = (operation, principal, key)
        mine = fingerprint(operation, new_users)
        attempt = uuid.uuid4()
        now = utc_now_ms()
        ids = [uuid.uuid4() for _ in new_users]
        # A step whose answer is lost may still have been applied, and this attempt would then
        # hold the key without finishing: every step below undoes its attempt when it fails (an
        # undo does nothing if the attempt does not hold the record).
        try:
            claim = await self._execute(
                self._claim, (*where, mine, ids, now, _WRITING, attempt, now, KEY_TTL_S)
            )
        except BaseException:
            self._undo_later(where, attempt, ids, now)
            raise
        if not claim.was_applied:
            found = _record(claim.one())
            if found.fingerprint != mine:
                raise ValidationException(
                    detail="Validation failed",
                    extra=[
                        {
                            "message": f"This {HEADER} was used with another request",
                            "source": "header",
                            "key": HEADER,
                        }
                    ],
                )
            if found.state == _DONE:
                return _users(found.user_ids, new_users, found.created_at), True
            if now - found.claimed_at < LEASE_S * 1000:
                raise _in_use()
            try:
                taken = await self._execute(
                    self._take_over,
                    (
                        _ttl_left(found.created_at),
                        _WRITING,
                        attempt,
                        now,
                        *where,
                        found.owner,
                        found.claimed_at,
                    ),
                )
            except BaseException:
                self._undo_later(where, attempt, found.user_ids, found.created_at)
                raise
            if not taken.was_applied:
                raise _in_use()
            log.warning(
                "took over an idempotency key its holder left unfinished",
                extra={"operation": operation, "user_ids": [str(i) for i in found.user_ids]},
            )
            ids, now = found.user_ids, found.created_at
        try:
            users = await self.repository.insert_all(ids, new_users, now)
            await self._execute(
                self._set_state,
                (_ttl_left(now), _DONE, utc_now_ms(), *where, attempt, _WRITING),
            )
        except BaseException:
            self._undo_later(where, attempt, ids, now)
            raise
        # Not applied means another request took the record over meanwhile: it writes the very
        # same users (same ids, same values), so this answer stands as well.
        return users, False

    async def _execute(self, statement: Any, values: Sequence[Any]) -> Any:
        return await self._session.execute(statement, values)

    def _undo_later(
        self, where: tuple[str, str, str], attempt: uuid.UUID, ids: list[uuid.UUID], created: int
    ) -> None:
        # In the request's context (its trace), outside its budget: like `remove_later`.
        task = asyncio.get_running_loop().create_task(
            self._undo(where, attempt, ids, created), name="users-undo-idempotent-create"
        )
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _undo(
        self, where: tuple[str, str, str], attempt: uuid.UUID, ids: list[uuid.UUID], created: int
    ) -> None:
        await asyncio.sleep(SETTLE_S)
        try:
            with outside_budget():
                marked = await self._execute(
                    self._set_state,
                    (_ttl_left(created), _UNDOING, utc_now_ms(), *where, attempt, _WRITING),
                )
                if not marked.was_applied:
                    return  # done after all, or taken over: the users stay
                await self.repository.remove_all(ids)
                await self._execute(self._release, (*where, attempt))
        except Exception:
            # The record stays `undoing`; the next request with the key, once the lease is over,
            # takes it over and writes the users after all. Until then some may remain.
            log.exception(
                "a failed create with an idempotency key could not be undone yet",
                extra={"operation": where[0], "user_ids": [str(i) for i in ids]},
            )


# Undos in flight: the event loop keeps only weak references to tasks.
_background: set[asyncio.Task[None]] = set()


def _record(row: Any) -> _Record:
    return _Record(
        row.fingerprint, list(row.user_ids), row.created_at, row.state, row.owner, row.claimed_at
    )


def _users(ids: Sequence[uuid.UUID], new_users: Sequence[UserCreate], created: int) -> list[User]:
    stamp = format_timestamp(created)
    return [
        User(str(user_id), user.name, user.email, user.age, stamp, stamp)
        for user_id, user in zip(ids, new_users, strict=True)
    ]


def _ttl_left(created_ms: int) -> int:
    """Seconds until a record made at `created_ms` expires: its later writes expire with it."""
    return max(1, KEY_TTL_S - (utc_now_ms() - created_ms) // 1000)


def _in_use() -> KeyInUse:
    return KeyInUse(
        detail=f"A request with this {HEADER} is in progress; retry later",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
