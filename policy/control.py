"""What an operator tells the closed loop: modes, opt-outs and answers to approvals.

The CLI (``nfv-assure policy mode``, ``automation``, ``decisions approve``)
and the REST API write through these functions; the policy workers read the
same keys (:class:`~policy.store.RedisFacts`), so an operator's word counts
on every worker at the next decision, without a restart.

- A **mode** set here overrides the policy file's ``mode`` until cleared.
- An **opt-out** turns automation off for one VNF instance or one host:
  decisions about it are queued (re-checked) until it is turned back on.
- An **answer** approves or rejects a decision waiting for approval; the
  VNF's loop is woken at once to act on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from bus.clock import Clock
from bus.keys import Keys
from bus.redis import reply_text
from policy.audit import AuditRecord, AuditTrail
from policy.schema import Mode
from policy.state import StepRecord, Verdict
from policy.store import MODES, LoopStore

Answer = Literal["approve", "reject"]
Scope = Literal["vnf", "host"]


class ControlError(ValueError):
    """An operator's request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Answered:
    decision_id: str
    answer: Answer
    by: str
    vnf: str
    policy: str


class LoopControl:
    def __init__(self, redis: Any, keys: Keys, clock: Clock) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.audit = AuditTrail(redis, keys, clock)
        self._store = LoopStore(redis, keys)

    # --- modes ----------------------------------------------------------------------
    async def set_mode(self, policy: str, mode: Mode | None) -> None:
        """Override a policy's mode (None: back to the file's)."""
        if mode is None:
            await self._redis.hdel(self._keys.policy_modes(), policy)
            return
        if mode not in MODES:
            raise ControlError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
        await self._redis.hset(self._keys.policy_modes(), policy, mode)

    async def modes(self) -> dict[str, str]:
        """The overrides in force: policy -> mode."""
        raw = await self._redis.hgetall(self._keys.policy_modes())
        return {reply_text(k): reply_text(v) for k, v in raw.items()}

    # --- opt-outs ----------------------------------------------------------------------
    async def opt_out(self, scope: Scope, name: str, reason: str) -> None:
        """Turn automation off for one VNF instance or host."""
        if scope not in ("vnf", "host") or not name:
            raise ControlError("an opt-out names a VNF instance id or a host")
        await self._redis.hset(self._keys.policy_optouts(), f"{scope}:{name}", reason or "")

    async def opt_in(self, scope: Scope, name: str) -> bool:
        """Turn automation back on; False when it was not off."""
        return bool(await self._redis.hdel(self._keys.policy_optouts(), f"{scope}:{name}"))

    async def opt_outs(self) -> dict[str, str]:
        """``vnf:<id>`` / ``host:<name>`` -> why automation is off for it."""
        raw = await self._redis.hgetall(self._keys.policy_optouts())
        return {reply_text(k): reply_text(v) for k, v in raw.items()}

    # --- approvals ----------------------------------------------------------------------
    async def answer(self, decision_id: str, answer: Answer, by: str = "operator") -> Answered:
        """Approve or reject a decision that waits for approval, and wake its VNF's loop."""
        if answer not in ("approve", "reject"):
            raise ControlError(f"an answer is approve or reject, got {answer!r}")
        record = await self.audit.episode_of(decision_id)
        step = None if record is None else _step(record, decision_id)
        if record is None or step is None:
            raise ControlError(f"no decision {decision_id}")
        if step.verdict is not Verdict.AWAITING_APPROVAL or step.outcome is not None:
            raise ControlError(
                f"decision {decision_id} does not wait for approval (it is {step.verdict.value})"
            )
        body = json.dumps({"answer": answer, "by": by, "at": self._clock.now()})
        await self._redis.hset(self._keys.policy_approvals(), decision_id, body)
        await self._store.schedule(record.vnf, self._clock.now(), lower_only=True)
        return Answered(decision_id, answer, by, record.vnf, record.episode.policy)


def _step(record: AuditRecord, decision_id: str) -> StepRecord | None:
    return next((s for s in record.episode.steps if s.decision_id == decision_id), None)
