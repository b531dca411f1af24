"""API tokens: bearer credentials with a role, kept hashed in Redis.

A token is ``nfva_`` followed by 32 random bytes (URL-safe base64). Redis
holds only its SHA-256 (one hash field per token, ``keys.api_tokens()``),
with its record: a short id (the first 12 hex digits of the hash, what
``token list`` shows and ``token revoke`` takes), the role, a name and when
it was made. A random token of this length needs no slow hash: guessing is
hopeless, and a leaked Redis dump gives no usable token.

Roles, each allowed what the one before it is: ``viewer`` reads,
``operator`` also runs lifecycle operations, changes policies and posts
alerts, ``admin`` also manages tokens.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import secrets
from typing import Any

import msgspec

from bus.clock import Clock
from bus.keys import Keys
from bus.redis import reply_text

TOKEN_PREFIX = "nfva_"  # noqa: S105 - how a token starts, not a token
ID_LENGTH = 12
"""Hex digits of a token's hash that make its id."""


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Whether a token of this role may do what ``needed`` may."""
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class TokenRecord(msgspec.Struct, frozen=True):
    """What is known of a token, without the token."""

    id: str
    role: Role
    name: str
    created_at: float


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(TokenRecord)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Creates, checks, lists and revokes API tokens."""

    def __init__(self, redis: Any, keys: Keys, clock: Clock) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._reading: dict[str, asyncio.Future[bytes | str | None]] = {}

    async def create(self, role: Role, name: str = "") -> tuple[str, TokenRecord]:
        """A new token of ``role``: the token (shown once, never stored) and its record."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        hashed = digest(token)
        now = self._clock.now()
        record = TokenRecord(id=hashed[:ID_LENGTH], role=role, name=name, created_at=now)
        await self._redis.hset(self._keys.api_tokens(), hashed, _encoder.encode(record))
        return token, record

    async def check(self, token: str) -> TokenRecord | None:
        """The record of ``token``, or None when it is not (or no longer) valid."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        raw = await self._read(digest(token))
        return None if raw is None else _decoder.decode(raw)

    async def _read(self, hashed: str) -> bytes | str | None:
        """The stored record of ``hashed``; requests that check one token at once share a read
        (a burst of webhook calls carries one token); a check joins a read under way, never
        takes the answer of one that ended."""
        reading = self._reading.get(hashed)
        if reading is None:
            reading = asyncio.ensure_future(self._redis.hget(self._keys.api_tokens(), hashed))
            self._reading[hashed] = reading
            reading.add_done_callback(lambda _: self._reading.pop(hashed, None))
        return await asyncio.shield(reading)

    async def list(self) -> list[TokenRecord]:
        """Every token's record, oldest first."""
        stored = await self._redis.hgetall(self._keys.api_tokens())
        records = [_decoder.decode(raw) for raw in stored.values()]
        return sorted(records, key=lambda r: (r.created_at, r.id))

    async def revoke(self, token_id: str) -> bool:
        """Revoke the token whose id is ``token_id``; False when there is none."""
        for hashed in await self._redis.hkeys(self._keys.api_tokens()):
            field = reply_text(hashed)
            if field[: len(token_id)] == token_id and len(token_id) == ID_LENGTH:
                return bool(await self._redis.hdel(self._keys.api_tokens(), field))
        return False

    async def bootstrap(self) -> str | None:
        """The first admin token, when no token was ever handed out; else None.

        Only one process of a deployment gets it (a marker key set once),
        so replicas starting together do not each print one.
        """
        if await self._redis.hlen(self._keys.api_tokens()):
            return None
        if not await self._redis.set(self._keys.api_bootstrap(), "1", nx=True):
            return None
        token, _ = await self.create(Role.ADMIN, name="first admin token")
        return token
