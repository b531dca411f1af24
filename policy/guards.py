"""Guards: the rules that can deny a decision.

- ``target``: the violation's target still exists and belongs to the policy's
  VNFD (otherwise there is nothing to do).
- ``active``: the violation has not abated meanwhile. The analytics stage
  records each violation's latest status at ``keys.violation_state(id)``; an
  ONSET read after a backlog (a policy worker that was down) may describe a
  condition that cleared minutes ago, and acting on it would scale or heal
  for nothing. No record (older analytics, or expired) passes.
- ``max_instances`` / ``min_instances``: a scale step stays within the VDU's
  instance bounds and the aspect's scale levels (0..max_scale_level), as the
  VNFM would enforce them; denying here records why instead of failing later.
- ``cooldown``: after an approved decision of a policy on a target, further
  ones are denied for the policy's cooldown. The state lives in Redis, so
  every policy worker shares it.
"""

from __future__ import annotations

from typing import Any

from bus.contracts import GuardResult, ViolationStatus
from bus.keys import Keys
from bus.units import format_duration
from mano_core.models import VnfInstance
from mano_core.vnfd import ScalingAspect, Vnfd

TARGET = "target"
ACTIVE = "active"
COOLDOWN = "cooldown"
MAX_INSTANCES = "max_instances"
MIN_INSTANCES = "min_instances"

_STARTED = 2
"""What the claim script returns when it started the cooldown (1: already held, 0: denied)."""

_RETAIN_WALL_S = 600.0
"""How long (wall seconds) a cooldown record outlives its cooldown: long enough
for a violation redelivered after a worker crash to find its own decision."""

# Check and start the cooldown in one step, so two workers deciding at once
# cannot both pass. The decision that holds the cooldown passes again: a
# redelivered violation gets its approval back, not a denial caused by itself.
_CLAIM = """
local at = redis.call('HGET', KEYS[1], 'approved_at')
local holder = redis.call('HGET', KEYS[1], 'decision')
if at and holder == ARGV[3] then
  return {1, at, holder}
end
if at and tonumber(ARGV[1]) - tonumber(at) < tonumber(ARGV[2]) then
  return {0, at, holder}
end
redis.call('HSET', KEYS[1], 'approved_at', ARGV[1], 'decision', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {2, ARGV[1], ARGV[3]}
"""


class Cooldowns:
    """The cooldown guard of every policy on every target, kept in Redis."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._claim = redis.register_script(_CLAIM)

    async def claim(
        self,
        policy: str,
        target: str,
        *,
        cooldown_s: float,
        now: float,
        decision_id: str,
        wall_s: float,
    ) -> GuardResult:
        """Pass and start the cooldown for ``decision_id``, unless another decision holds it.

        ``wall_s`` is how long ``cooldown_s`` lasts in wall time (the key's TTL base).
        """
        ttl_ms = int((wall_s + _RETAIN_WALL_S) * 1000)
        key = self._keys.guard_state(policy, target)
        status, at, holder = await self._claim(
            keys=[key], args=[repr(now), repr(cooldown_s), decision_id, ttl_ms]
        )
        if int(status) == _STARTED:
            return GuardResult(COOLDOWN, True, f"cooldown {format_duration(cooldown_s)} starts now")
        return _verdict(float(at), _text(holder), decision_id, cooldown_s, now)

    async def check(
        self, policy: str, target: str, *, cooldown_s: float, now: float, decision_id: str
    ) -> GuardResult:
        """The cooldown verdict without starting it (for decisions another guard denies)."""
        at, holder = await self._redis.hmget(
            self._keys.guard_state(policy, target), ["approved_at", "decision"]
        )
        if at is None:
            return GuardResult(COOLDOWN, True, "no earlier approved decision")
        return _verdict(float(at), _text(holder), decision_id, cooldown_s, now)


async def active_guard(redis: Any, keys: Keys, violation_id: str) -> GuardResult:
    """Whether the violation is still active, per the status the analytics stage recorded."""
    status = _text(await redis.get(keys.violation_state(violation_id)))
    if status == ViolationStatus.ABATED:
        return GuardResult(ACTIVE, False, "the violation already abated")
    if status == ViolationStatus.ONSET:
        return GuardResult(ACTIVE, True, "the violation is still active")
    if not status:
        return GuardResult(ACTIVE, True, "no recorded status; taken as active")
    return GuardResult(ACTIVE, True, f"unknown recorded status {status!r}; taken as active")


def _verdict(
    at: float, holder: str, decision_id: str, cooldown_s: float, now: float
) -> GuardResult:
    if holder == decision_id:
        return GuardResult(COOLDOWN, True, "this decision already holds the cooldown")
    ago = format_duration(max(0.0, now - at))
    if now - at >= cooldown_s:
        return GuardResult(COOLDOWN, True, f"last approved decision {ago} ago")
    left = format_duration(cooldown_s - (now - at))
    return GuardResult(
        COOLDOWN,
        False,
        f"decision {holder} was approved {ago} ago; cooldown "
        f"{format_duration(cooldown_s)}, {left} left",
    )


def scale_guard(
    vnfd: Vnfd, vnf: VnfInstance, aspect: ScalingAspect, direction: str, steps: int
) -> GuardResult:
    """Whether ``steps`` of ``aspect`` out/in keep ``vnf`` within the VNFD's bounds."""
    out = direction == "out"
    guard = MAX_INSTANCES if out else MIN_INSTANCES
    level = vnf.scale_levels.get(aspect.id, 0)
    new_level = level + steps if out else level - steps
    changes: list[str] = []
    for vdu_id, change in aspect.change(level, new_level).items():
        vdu = vnfd.vdu(vdu_id)
        count = len(vnf.vnfcs_of(vdu.id))
        after = count + change
        if after > vdu.max_instances:
            return GuardResult(
                guard,
                False,
                f"VDU {vdu.id} has {count} VNFCs; {after} would exceed "
                f"max_instances {vdu.max_instances}",
            )
        if after < vdu.min_instances:
            return GuardResult(
                guard,
                False,
                f"VDU {vdu.id} has {count} VNFCs; {after} would be below "
                f"min_instances {vdu.min_instances}",
            )
        bound = (
            f"max_instances {vdu.max_instances}" if out else f"min_instances {vdu.min_instances}"
        )
        changes.append(f"VDU {vdu.id}: {count} -> {after} VNFCs ({bound})")
    if new_level > aspect.max_scale_level:
        return GuardResult(
            guard,
            False,
            f"aspect {aspect.id} is at scale level {level} of {aspect.max_scale_level}",
        )
    if new_level < 0:
        return GuardResult(
            guard, False, f"aspect {aspect.id} is at scale level {level}: no step to remove"
        )
    return GuardResult(
        guard, True, "; ".join(changes) + f"; aspect {aspect.id} level {level} -> {new_level}"
    )


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
