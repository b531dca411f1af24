"""The audit trail: every decision with its episode, guards, operation and verification.

Each episode is recorded whole (:class:`~policy.state.Episode`: the
violation and its evidence, every step with every guard's verdict, the
operation occurrence each approved step ran, how it ended, whether the KPI
recovered, and the episode's result) at ``keys.audit_episode(id)``, written
again each time it changes. Each decision points at its episode
(``keys.audit_decision(id)``) and is indexed by when it was decided, so
``nfv-assure decisions list`` reads the newest and ``decisions show ID``
one decision with its whole chain. Records expire after ``retention_s``
(clock seconds); the index keeps at most ``max_decisions``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from bus.clock import Clock
from bus.keys import Keys
from bus.redis import reply_text
from policy.schema import KpiPolicy
from policy.state import Episode

_encoder = msgspec.json.Encoder()


class AuditRecord(msgspec.Struct, kw_only=True):
    """One episode as the audit trail keeps it."""

    vnf: str
    episode: Episode
    labels: dict[str, str] = {}
    description: str = ""


_decode_record = msgspec.json.Decoder(AuditRecord).decode


class AuditTrail:
    def __init__(
        self,
        redis: Any,
        keys: Keys,
        clock: Clock,
        *,
        retention_s: float = 7 * 86_400.0,
        max_decisions: int = 100_000,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.retention_s = retention_s
        self.max_decisions = max_decisions

    async def record(
        self, vnf: str, episodes: Iterable[Episode], policies: dict[str, KpiPolicy]
    ) -> None:
        """Write (again) the records of ``episodes`` and index their decisions."""
        ttl_ms = max(1, round(self._clock.to_wall(self.retention_s) * 1000))
        async with self._redis.pipeline(transaction=False) as pipe:
            written = 0
            for episode in episodes:
                policy = policies.get(episode.policy)
                record = AuditRecord(
                    vnf=vnf,
                    episode=episode,
                    labels=policy.labels if policy else {},
                    description=policy.metadata.description if policy else "",
                )
                pipe.set(self._keys.audit_episode(episode.id), _encoder.encode(record), px=ttl_ms)
                for step in episode.steps:
                    pipe.set(self._keys.audit_decision(step.decision_id), episode.id, px=ttl_ms)
                    pipe.zadd(self._keys.audit_index(), {step.decision_id: step.decided_at})
                written += 1
            if written:
                pipe.zremrangebyrank(self._keys.audit_index(), 0, -self.max_decisions - 1)
                await pipe.execute()

    async def episode_of(self, decision_id: str) -> AuditRecord | None:
        """The record of the episode a decision belongs to."""
        episode_id = await self._redis.get(self._keys.audit_decision(decision_id))
        if episode_id is None:
            return None
        return await self.episode(reply_text(episode_id))

    async def episode(self, episode_id: str) -> AuditRecord | None:
        raw = await self._redis.get(self._keys.audit_episode(episode_id))
        return None if raw is None else _decode_record(raw)

    async def recent(
        self,
        limit: int = 20,
        *,
        policy: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> list[tuple[str, AuditRecord]]:
        """The newest decisions (newest first), each with its episode's record.

        ``policy`` and ``labels`` (the policy's labels) narrow them down.
        """
        out: list[tuple[str, AuditRecord]] = []
        cache: dict[str, AuditRecord | None] = {}
        page, start = max(limit, 50), 0
        while len(out) < limit:
            ids = await self._redis.zrevrange(self._keys.audit_index(), start, start + page - 1)
            if not ids:
                break
            start += page
            async with self._redis.pipeline(transaction=False) as pipe:
                for decision_id in ids:
                    pipe.get(self._keys.audit_decision(reply_text(decision_id)))
                episodes = await pipe.execute()
            for decision_id, episode_id in zip(ids, episodes, strict=True):
                if episode_id is None:
                    continue
                key = reply_text(episode_id)
                if key not in cache:
                    cache[key] = await self.episode(key)
                record = cache[key]
                if record is None or not _selected(record, policy, labels or {}):
                    continue
                out.append((reply_text(decision_id), record))
                if len(out) >= limit:
                    break
        return out


def _selected(record: AuditRecord, policy: str | None, labels: dict[str, str]) -> bool:
    if policy is not None and record.episode.policy != policy:
        return False
    return all(record.labels.get(k) == v for k, v in labels.items())
