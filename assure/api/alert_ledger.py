"""The Alertmanager webhook's ledger: each alert episode queued once as ONSET, once as ABATED.

Alertmanager re-sends a firing alert at every ``repeat_interval``, and an HA
pair of Alertmanagers sends each notification twice. The ledger makes them
harmless: one Lua script records an episode's status and appends its event
to the violations stream in the same atomic step, only when the status
changes (ONSET for an episode not seen before, ABATED for one that is
ONSET). A repeat, or a duplicate from the other Alertmanager, changes
nothing and queues nothing. Its keys share the violations stream's hash
tag, so that step is atomic on Redis Cluster too. The status it records is
the one the policy stage's ``active`` guard reads for these violations
(:func:`policy.guards.active_guard`): an ABATED is known the moment its
event is queued, with no second write.

Each notification touches its episode, and an episode untouched for
``retention_s`` (a week by default: resolved alerts are not re-sent, open
ones are, every few hours) is forgotten, so the ledger stays bounded.

Notifications arrive in bursts (a failing host fires many alerts at once).
:class:`LedgerBatches` writes the events of every notification that arrives
while a write is under way in the next write, one script call for all of
them, so a burst costs a few Redis round trips instead of two per
notification, and each notification is still answered only once its own
events are in Redis.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from typing import Any

from bus.clock import Clock
from bus.contracts import Violation, ViolationStatus, decode, encode
from bus.keys import Keys
from bus.redis import reply_text
from bus.streams import FIELD

_RECORD = """
local status, onsets, seen, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local maxlen, now, horizon, field = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out, events, at = {}, ARGV[5], 1
while at <= #events do
  -- One event: O (ONSET) or A (ABATED), the id's and the payload's lengths
  -- (8 hex digits each), the id, the payload.
  local wanted = string.sub(events, at, at) == 'O' and 'ONSET' or 'ABATED'
  local id_end = at + 16 + tonumber(string.sub(events, at + 1, at + 8), 16)
  local payload_end = id_end + tonumber(string.sub(events, at + 9, at + 16), 16)
  local id = string.sub(events, at + 17, id_end)
  local payload = string.sub(events, id_end + 1, payload_end)
  at = payload_end + 1
  local current = redis.call('HGET', status, id)
  local outcome = 'duplicate'
  if wanted == 'ONSET' and not current then
    redis.call('HSET', status, id, 'ONSET')
    redis.call('HSET', onsets, id, payload)
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', field, payload)
    outcome = 'queued'
  elseif wanted == 'ABATED' and current == 'ONSET' then
    redis.call('HSET', status, id, 'ABATED')
    redis.call('HDEL', onsets, id)
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', field, payload)
    outcome = 'queued'
  elseif wanted == 'ABATED' and not current then
    outcome = 'unknown'
  end
  if current or outcome == 'queued' then
    redis.call('ZADD', seen, now, id)
  end
  out[#out + 1] = string.sub(outcome, 1, 1)
end
local old = redis.call('ZRANGEBYSCORE', seen, '-inf', horizon, 'LIMIT', 0, 100)
for _, id in ipairs(old) do
  redis.call('HDEL', status, id)
  redis.call('HDEL', onsets, id)
  redis.call('ZREM', seen, id)
end
return table.concat(out)
"""


def _event(event: Violation) -> bytes:
    """An event as the script reads it from its batch (see ``_RECORD``)."""
    wanted = b"O" if event.status is ViolationStatus.ONSET else b"A"
    vid, payload = event.id.encode(), encode(event)
    return b"%s%08x%08x%s%s" % (wanted, len(vid), len(payload), vid, payload)


class Outcome(enum.StrEnum):
    QUEUED = "queued"
    """The event was appended to the violations stream."""
    DUPLICATE = "duplicate"
    """The episode already has this status: nothing queued."""
    UNKNOWN = "unknown"
    """A resolve for an episode never seen firing: nothing to abate."""


_OUTCOMES = {outcome.value[0]: outcome for outcome in Outcome}
"""The script answers one letter per event: its outcome's first."""


class AlertLedger:
    """Queues alert events, each episode's ONSET and ABATED once."""

    def __init__(
        self, redis: Any, keys: Keys, *, maxlen: int = 100_000, retention_s: float = 7 * 86_400.0
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._maxlen = maxlen
        self.retention_s = retention_s
        self._record = redis.register_script(_RECORD)

    async def record(self, events: Sequence[Violation], now: float) -> list[Outcome]:
        """Queue each event whose episode it moves on; one outcome per event, in order."""
        if not events:
            return []
        k = self._keys
        # One argument for the whole batch, not three per event: packing each argument
        # costs the client more than the script costs Redis.
        batch = b"".join(_event(e) for e in events)
        args = [self._maxlen, repr(now), repr(now - self.retention_s), FIELD, batch]
        reply = await self._record(
            keys=[
                k.alert_ledger("status"),
                k.alert_ledger("onset"),
                k.alert_ledger("seen"),
                k.stream("violations"),
            ],
            args=args,
        )
        return [_OUTCOMES[letter] for letter in reply_text(reply)]

    async def onset(self, violation_id: str) -> Violation | None:
        """The queued ONSET of an episode still open, if there is one."""
        raw = await self._redis.hget(self._keys.alert_ledger("onset"), violation_id)
        if raw is None:
            return None
        message = decode(raw)
        return message if isinstance(message, Violation) else None

    async def status(self, violation_id: str) -> ViolationStatus | None:
        raw = await self._redis.hget(self._keys.alert_ledger("status"), violation_id)
        return None if raw is None else ViolationStatus(reply_text(raw))


class LedgerBatches:
    """:meth:`AlertLedger.record` for concurrent callers: all who ask during a write share the next.

    A caller waits for the write that holds its events, and gets its own
    outcomes, or the write's error (nothing of it was queued then, or, when
    the connection broke mid-reply, perhaps all of it: a retry is harmless,
    the ledger queues an episode's event once).
    """

    def __init__(self, ledger: AlertLedger, clock: Clock) -> None:
        self.ledger = ledger
        self._clock = clock
        self._waiting: list[tuple[Sequence[Violation], asyncio.Future[list[Outcome]]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, events: Sequence[Violation]) -> list[Outcome]:
        if not events:
            return []
        done: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._waiting.append((events, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name="alert ledger writes")
        return await asyncio.shield(done)

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                events = [e for group, _ in batch for e in group]
                try:
                    outcomes = await self.ledger.record(events, self._clock.now())
                except BaseException as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                start = 0
                for group, done in batch:
                    if not done.done():
                        done.set_result(outcomes[start : start + len(group)])
                    start += len(group)
        finally:
            self._writer = None
