"""The anomaly scorers' state, kept in Redis with each shard, so that a new owner scores on.

The streaming scorer of ``kind: anomaly`` (:mod:`analytics.anomaly`: the
EWMAs and time-of-day baselines of a target's values, the likelihood of its
recent scores) learns from every value a target ever had, far more than its
windows hold, so it cannot be rebuilt from the sample history. Each owner
therefore writes, with the sample history (after the evaluations, at most
once per ``every_s`` of clock time: :data:`EVERY_S` by default, which
bounds the writes at scale to one per target and interval), the state of
every owned target whose scorer took a value since the last write: one
hash per shard, ``keys.scoring_state(shard)``,
field ``<condition key>|<target key>``, value the target and its state (a
row of float64). A worker that takes a shard over, or a restarted one,
restores its targets' scorers from it before its first evaluation: it
neither scores from cold (no false ONSET while its baselines are still
narrow, no anomaly missed while it warms up) nor learns the likelihood
over again.

A crash loses what the scorers took in since the last write (``every_s``
at most): the new owner judges the next values against a state that much
older. The hash expires a little after its last write, with the
shard's history (a shard nobody owns leaves nothing behind); the fields
of targets gone from the inventory stay until then. A state of another
width (written by another version of the scorer) is logged and dropped,
and that target's scorer starts cold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from analytics.anomaly import AnomalyJudge
from analytics.evaluator import ConditionEvaluator
from analytics.table import Ints
from bus.contracts import Target
from bus.keys import Keys

log = logging.getLogger(__name__)

F64 = np.dtype("<f8")

EVERY_S = 30.0
"""How often (clock seconds) the changed scorer states are written, at most."""

ShardOf = Callable[[Target], "int | None"]
"""The shard of a target (None: none)."""


class ScoringRecord(msgspec.Struct, frozen=True):
    """One target's scorer state in Redis."""

    condition: str
    """The condition's key, ``<policy>/<name>``."""
    target: Target
    state: bytes
    """The row of :meth:`AnomalyJudge.state`, little-endian float64."""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ScoringRecord)


@dataclass
class Scoring:
    """States taken for one write (:meth:`ScoringStates.take`)."""

    fields: dict[int, dict[str, bytes]] = field(default_factory=dict)
    """Each shard's fields."""
    taken: list[tuple[AnomalyJudge, Ints]] = field(default_factory=list)
    """The targets taken from each judge (marked unsaved again if the write fails)."""


class ScoringStates:
    """Writes the changed scorer states of owned targets, and restores a shard's."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        evaluators: Iterable[ConditionEvaluator],
        *,
        every_s: float = EVERY_S,
    ) -> None:
        if every_s <= 0:
            raise ValueError(f"the scorer states' write interval must be positive, got {every_s}")
        self._redis = redis
        self._keys = keys
        self.evaluators = [e for e in evaluators if isinstance(e.judge, AnomalyJudge)]
        self.every_s = every_s
        self._taken_at: float | None = None
        self.restored = 0
        """Target states restored so far."""

    def due(self, now: float) -> bool:
        """Whether the changed states are to be written at ``now``."""
        if not self.evaluators:
            return False
        return self._taken_at is None or now - self._taken_at >= self.every_s

    def take(self, now: float, shard_of: ShardOf, owned: frozenset[int]) -> Scoring:
        """The states changed since the last take, of targets in ``owned`` shards (synchronous)."""
        self._taken_at = now
        out = Scoring()
        for evaluator in self.evaluators:
            judge = evaluator.judge
            assert isinstance(judge, AnomalyJudge)
            changed = judge.saved()
            targets = [evaluator.index.targets[i] for i in changed.tolist()]
            shards = [shard_of(t) for t in targets]
            keep = np.asarray([s in owned for s in shards], dtype=np.bool_)
            if not keep.any():
                continue
            idx = changed[keep]
            rows = judge.state(idx).astype(F64)
            out.taken.append((judge, idx))
            cond = evaluator.cond.key
            mine = [(t, s) for t, s, k in zip(targets, shards, keep.tolist(), strict=True) if k]
            for (target, shard), row in zip(mine, rows, strict=True):
                assert shard is not None
                record = ScoringRecord(cond, target, row.tobytes())
                out.fields.setdefault(shard, {})[f"{cond}|{target.key()}"] = _encoder.encode(record)
        return out

    async def write(self, scoring: Scoring, ttl_ms: int) -> int:
        """Write what :meth:`take` took; returns how many states.

        Raises the Redis error when the write fails; the targets are then
        written with the next take.
        """
        if not scoring.fields:
            return 0
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for shard, fields in scoring.fields.items():
                    key = self._keys.scoring_state(shard)
                    pipe.hset(key, mapping=fields)
                    pipe.pexpire(key, ttl_ms)
                await pipe.execute()
        except BaseException:
            for judge, idx in scoring.taken:
                judge.unsaved[idx] = True
            raise
        return sum(len(f) for f in scoring.fields.values())

    async def restore(self, shards: Iterable[int], owns: Callable[[Target], bool]) -> int:
        """Resume the scorers of ``shards``' targets from Redis; returns how many."""
        by_key = {e.cond.key: e for e in self.evaluators}
        found: dict[str, list[tuple[Target, bytes]]] = {}
        for shard in sorted(set(shards)):
            raw: dict[bytes, bytes] = await self._redis.hgetall(self._keys.scoring_state(shard))
            for name, value in raw.items():
                try:
                    record = _decoder.decode(value)
                except msgspec.DecodeError as exc:
                    log.warning("dropping an undecodable scorer state %r: %s", name, exc)
                    continue
                if record.condition in by_key and owns(record.target):
                    found.setdefault(record.condition, []).append((record.target, record.state))
        restored = 0
        for cond, records in found.items():
            evaluator = by_key[cond]
            judge = evaluator.judge
            assert isinstance(judge, AnomalyJudge)
            width = judge.width
            good = [(t, s) for t, s in records if len(s) == width * F64.itemsize]
            if len(good) < len(records):
                log.warning(
                    "%s: %d scorer states of another width dropped (those targets start cold)",
                    cond,
                    len(records) - len(good),
                )
            if not good:
                continue
            idx = np.asarray([evaluator.index.index(t) for t, _ in good], dtype=np.int64)
            rows = np.frombuffer(b"".join(s for _, s in good), dtype=F64).reshape(len(good), width)
            judge.restore(idx, rows.copy())
            restored += len(good)
        self.restored += restored
        return restored
