"""Open detector episodes (pending and firing) kept in Redis across restarts.

A restarted analytics worker loads them before its first evaluation, so it
neither sends an ONSET again for an episode already firing nor forgets to
send its ABATED, and a ``for`` timer that was running keeps running. Writes
happen only when a state changes, all of one evaluation in one round trip.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import msgspec

from bus.contracts import Target
from bus.keys import Keys

log = logging.getLogger(__name__)


class Phase(enum.StrEnum):
    PENDING = "pending"
    FIRING = "firing"


class DetectorState(msgspec.Struct, frozen=True):
    """One open episode of one condition on one target (persisted as JSON)."""

    condition: str
    """The condition's key, ``<policy>/<name>``."""
    target: Target
    phase: Phase
    since: float
    """When the condition started to hold: the episode's ``started_at``."""
    violation_id: str | None = None
    """Set when FIRING; the ONSET and the ABATED of the episode share it."""
    onset_at: float | None = None
    seen: float | None = None
    """``n_of_m``: the sample time of the newest reading recorded."""
    history: int = 0
    """``n_of_m``: the last M readings, newest in bit 0 (1: it held)."""
    clear_since: float | None = None
    """``clear_for``: since when the value has been cleared (sample time)."""
    caused_by: str | None = None
    """The violation that explains this one (sent with its ONSET and ABATED)."""


def violation_id(condition: str, target: Target, since: float) -> str:
    """A stable id for one episode, the same on every worker that computes it."""
    digest = hashlib.blake2b(
        f"{condition}|{target.key()}|{since!r}".encode(), digest_size=10
    ).hexdigest()
    return f"v-{digest}"


StateKey = tuple[str, str]
"""``(condition key, target key)``."""

_decoder = msgspec.json.Decoder(DetectorState)
_encoder = msgspec.json.Encoder()


def field_of(key: StateKey) -> str:
    return f"{key[0]}|{key[1]}"


class StateStore:
    """The open episodes of every condition, in one Redis hash."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self._redis = redis
        self.key = keys.detector_state()

    async def load(self) -> dict[StateKey, DetectorState]:
        """Every open episode; an undecodable entry is dropped with an error logged."""
        raw: dict[bytes, bytes] = await self._redis.hgetall(self.key)
        out: dict[StateKey, DetectorState] = {}
        for name, value in raw.items():
            try:
                state = _decoder.decode(value)
            except msgspec.DecodeError as exc:
                # Written by an incompatible version: it cannot be evaluated,
                # so that condition starts afresh on that target (at worst
                # one ONSET is sent again, under a new id).
                log.error("dropping undecodable detector state %r: %s", name, exc)
                continue
            out[(state.condition, state.target.key())] = state
        return out

    async def apply(self, changes: Mapping[StateKey, DetectorState | None]) -> None:
        """Write changed states and delete closed ones, in one round trip."""
        if not changes:
            return
        closed = [field_of(key) for key, state in changes.items() if state is None]
        open_ = {
            field_of(key): _encoder.encode(state)
            for key, state in changes.items()
            if state is not None
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            if closed:
                pipe.hdel(self.key, *closed)
            if open_:
                pipe.hset(self.key, mapping=open_)
            await pipe.execute()
