"""What one step of a chain means for one VNF now: the decision's action and parameters.

A plan turns a policy's step into the :class:`~bus.contracts.Action` the
actuator runs, its target and parameters, and the checks of the VNF's own
bounds (``target``, ``max_instances``/``min_instances``, ``tolerance``).
Scale-to-level and proportional scaling become scale-out or scale-in
decisions with the number of steps they need; the proportional count is
the HPA's ``ceil(current * value / target)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from bus.contracts import Action, Target, TargetKind
from mano_core.models import VnfInstance
from mano_core.vnfd import ScalingAspect, Vnfd
from policy.guards import MAX_INSTANCES, MIN_INSTANCES, TARGET, TOLERANCE, Check, deny, ok
from policy.guards import scale_guard as bounds_guard
from policy.schema import (
    ChangeFlavourAction,
    HealAction,
    KpiPolicy,
    MigrateAction,
    NotifyAction,
    OperateAction,
    PolicyAction,
    ProportionalScaleAction,
    ScaleAction,
    ScaleNsAction,
    ScaleNsToLevelAction,
    ScaleToLevelAction,
)
from policy.schema_actions import decision_action
from policy.state import Episode, Outcome

Direction = Literal["out", "in"]


@dataclass(frozen=True)
class ScaleChange:
    aspect: str
    vdu: str
    direction: Direction
    steps: int
    count: int
    """VNFCs of the aspect's VDU now."""
    per_step: int
    """VNFCs one step adds or removes."""

    @property
    def desired(self) -> int:
        sign = 1 if self.direction == "out" else -1
        return self.count + sign * self.steps * self.per_step


@dataclass(frozen=True)
class CapacityAsk:
    """VNFCs a scale-out adds to one VNF: what the capacity pre-check asks the granter."""

    vnf: VnfInstance
    vnfd: Vnfd
    vdu: str
    count: int


@dataclass
class Plan:
    action: Action
    target: Target
    parameters: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    scale: ScaleChange | None = None
    cooldown_key: str = ""
    host: str | None = None
    """The host the operation touches (per-host concurrency), if any."""
    timeout_s: float | None = None
    """How long the descriptor gives the operation (a heal step's timeout)."""
    capacity: list[CapacityAsk] = field(default_factory=list)
    """What a scale-out adds, VNF by VNF (the capacity pre-check)."""

    @property
    def denied(self) -> Check | None:
        return next((c for c in self.checks if not c.passed), None)


def aspect_vdu(aspect: ScalingAspect) -> tuple[str, int]:
    """The VDU a scaling aspect is counted by (its largest delta), and its VNFCs per step."""
    vdu, delta = max(aspect.deltas.items(), key=lambda item: (item[1], item[0]))
    return vdu, delta


def next_level(vnfd: Vnfd, vdu: str, level: str) -> str | None:
    """The recovery level after ``level`` in the ladder of ``vdu`` (None at the top)."""
    higher = vnfd.levels_after(vdu, level)
    return higher[0].value if higher else None


def heal_timeout(vnfd: Vnfd, vdu: str, level: str) -> float | None:
    """How long the VNFD gives the ``level`` step of ``vdu``'s ladder (None: not in it)."""
    step = vnfd.heal_step(vdu, level)
    return None if step is None else step.timeout


def first_rung(action: PolicyAction) -> str | None:
    """Where a step's action starts: its recovery level, or the migration kind."""
    if isinstance(action, HealAction):
        return action.level.value
    if isinstance(action, MigrateAction):
        return "live" if action.live else "cold"
    return None


SCALE_COOLDOWNS = {
    Action.SCALE_OUT: "scale",
    Action.SCALE_IN: "scale",
    Action.SCALE_NS_OUT: "ns-scale",
    Action.SCALE_NS_IN: "ns-scale",
}
"""The cooldown key's prefix of each scaling decision (the aspect follows)."""


def scale_cooldown_key(action: Action, aspect: str) -> str:
    """The cooldown a scaling decision shares with the others of its aspect, out or in."""
    return f"{SCALE_COOLDOWNS[action]}:{aspect}"


def cooldown_key(policy: KpiPolicy, action: PolicyAction, target: Target) -> str:
    """Scaling actions share one cooldown per VNF (NS) and aspect; the others, per policy
    and target."""
    if isinstance(action, ScaleAction | ScaleToLevelAction | ProportionalScaleAction):
        return scale_cooldown_key(Action.SCALE_OUT, action.aspect)
    if isinstance(action, ScaleNsAction | ScaleNsToLevelAction):
        return scale_cooldown_key(Action.SCALE_NS_OUT, action.aspect)
    return f"{policy.name}|{target.key()}"


def plan_step(
    policy: KpiPolicy,
    action: PolicyAction,
    episode: Episode,
    vnf: VnfInstance | None,
    vnfd: Vnfd | None,
) -> Plan:
    """The decision the step takes on ``vnf`` now (its checks say if it can)."""
    key = cooldown_key(policy, action, episode.target)
    if isinstance(action, NotifyAction):
        return Plan(Action.NOTIFY, episode.target, {"message": action.message}, cooldown_key=key)
    if vnf is None or vnfd is None:
        what = "VNF" if vnf is None else "VNFD"
        gone = Plan(Action(decision_action(action.type)), episode.target, {}, cooldown_key=key)
        gone.checks.append(
            deny(TARGET, f"nothing to do: the {what} of {episode.target.key()} is gone")
        )
        return gone
    if isinstance(action, HealAction | MigrateAction):
        return _vnfc_plan(action, episode, vnf, vnfd, key)
    if isinstance(action, ChangeFlavourAction | OperateAction):
        return _vnf_plan(action, vnf, vnfd, key)
    if isinstance(action, ScaleNsAction | ScaleNsToLevelAction):
        gone = Plan(Action(decision_action(action.type)), episode.target, {}, cooldown_key=key)
        gone.checks.append(deny(TARGET, f"{action.type} acts on an NS, not on VNF {vnf.id}"))
        return gone
    return _scale_plan(action, episode, vnf, vnfd, key)


def _vnf_plan(
    action: ChangeFlavourAction | OperateAction, vnf: VnfInstance, vnfd: Vnfd, key: str
) -> Plan:
    """A change of flavour or an operate of the whole VNF; nothing to do when it is so."""
    target = Target(TargetKind.VNF, vnf.id, vnf=vnf.id, vnfd=vnf.vnfd_id)
    if isinstance(action, OperateAction):
        plan = Plan(Action.OPERATE, target, {"state": action.state}, cooldown_key=key)
        if action.state == "STOPPED":
            plan.parameters["graceful"] = action.graceful
        if vnf.vnf_state.value == action.state:
            plan.checks.append(deny(TARGET, f"nothing to do: VNF {vnf.id} is {action.state}"))
        else:
            plan.checks.append(ok(TARGET, f"VNF {vnf.id} is {vnf.vnf_state.value}"))
        return plan
    sizes = {"vcpus": action.vcpus, "ram_mb": action.ram_mb, "disk_gb": action.disk_gb}
    plan = Plan(Action.CHANGE_FLAVOUR, target, {"vdu": action.vdu, **sizes}, cooldown_key=key)
    try:
        vdu = vnfd.vdu(action.vdu)
    except KeyError:
        plan.checks.append(deny(TARGET, f"VNFD {vnfd.id} has no VDU {action.vdu!r}"))
        return plan
    now = vnf.flavours.get(vdu.id)
    current = (
        (now.vcpus, now.ram_mb, now.disk_gb)
        if now is not None
        else (vdu.flavour.vcpus, vdu.flavour.ram_mb, vdu.flavour.disk_gb)
    )
    shown = f"{current[0]} vCPUs, {current[1]} MB RAM, {current[2]} GB disk"
    if current == (action.vcpus, action.ram_mb, action.disk_gb):
        plan.checks.append(deny(TARGET, f"nothing to do: VDU {vdu.id} already has {shown}"))
    else:
        plan.checks.append(ok(TARGET, f"VDU {vdu.id} of VNF {vnf.id} has {shown}"))
    return plan


def _vnfc_plan(
    action: HealAction | MigrateAction, episode: Episode, vnf: VnfInstance, vnfd: Vnfd, key: str
) -> Plan:
    vnfc = vnf.vnfc(episode.target.id)
    kind = Action.HEAL if isinstance(action, HealAction) else Action.MIGRATE
    target = Target(
        TargetKind.VNFC,
        episode.target.id,
        vnf=vnf.id,
        vnfd=vnf.vnfd_id,
        host=vnfc.host if vnfc is not None else episode.target.host,
    )
    plan = Plan(kind, target, {}, cooldown_key=key, host=target.host)
    if vnfc is None:
        plan.checks.append(
            deny(TARGET, f"nothing to do: VNFC {episode.target.id} no longer exists")
        )
        return plan
    rung = episode.rung or first_rung(action) or ""
    if isinstance(action, HealAction):
        timeout = heal_timeout(vnfd, vnfc.vdu, rung)
        if timeout is None:
            plan.checks.append(
                deny(TARGET, f"recovery level {rung} is not in the ladder of VDU {vnfc.vdu}")
            )
            return plan
        plan.parameters = {"level": rung}
        plan.timeout_s = timeout
        plan.checks.append(ok(TARGET, f"VNFC {vnfc.id} of VNF {vnf.id}, heal by {rung}"))
        return plan
    trigger = episode.trigger_target
    if trigger.kind is TargetKind.HOST and vnfc.host != trigger.id:
        plan.checks.append(
            deny(TARGET, f"nothing to do: VNFC {vnfc.id} is no longer on host {trigger.id}")
        )
        return plan
    plan.parameters = {"destination": action.destination, "live": rung == "live"}
    plan.checks.append(ok(TARGET, f"VNFC {vnfc.id} on {vnfc.host}, {rung} migration"))
    return plan


def _scale_plan(
    action: ScaleAction | ScaleToLevelAction | ProportionalScaleAction,
    episode: Episode,
    vnf: VnfInstance,
    vnfd: Vnfd,
    key: str,
) -> Plan:
    target = Target(TargetKind.VNF, vnf.id, vnf=vnf.id, vnfd=vnf.vnfd_id)
    plan = Plan(Action.SCALE_OUT, target, {}, cooldown_key=key)
    try:
        aspect = vnfd.aspect(action.aspect)
    except KeyError:
        plan.checks.append(deny(TARGET, f"VNFD {vnfd.id} has no scaling aspect {action.aspect!r}"))
        return plan
    vdu, per_step = aspect_vdu(aspect)
    count = len(vnf.vnfcs_of(vdu))
    level = vnf.scale_levels.get(aspect.id, 0)
    wanted = _wanted(action, episode, level, count, per_step)
    if isinstance(wanted, Check):
        plan.checks.append(wanted)
        return plan
    direction, steps, why = wanted
    plan.action = Action.SCALE_OUT if direction == "out" else Action.SCALE_IN
    steps = _within_bounds(vnfd, aspect, direction, steps, level=level, count=count)
    plan.checks.append(Check(bounds_guard(vnfd, vnf, aspect, direction, max(1, steps))))
    if steps < 1:
        return plan  # the bounds guard above says why (it failed for one step)
    change = ScaleChange(aspect.id, vdu, direction, steps, count, per_step)
    plan.scale = change
    plan.parameters = {"aspect": aspect.id, "steps": steps}
    if direction == "out":
        plan.capacity = [CapacityAsk(vnf, vnfd, vdu, steps * per_step)]
    if why:
        plan.checks.insert(0, ok(TOLERANCE, why))
    return plan


def _wanted(
    action: ScaleAction | ScaleToLevelAction | ProportionalScaleAction,
    episode: Episode,
    level: int,
    count: int,
    per_step: int,
) -> tuple[Direction, int, str] | Check:
    if isinstance(action, ScaleAction):
        return ("out" if action.type == "scale_out" else "in"), action.steps, ""
    if isinstance(action, ScaleToLevelAction):
        if action.level == level:
            return deny(TARGET, f"nothing to do: aspect {action.aspect} is at level {level}")
        direction: Direction = "out" if action.level > level else "in"
        return direction, abs(action.level - level), ""
    return _proportional(action, episode, count, per_step)


def _proportional(
    action: ProportionalScaleAction, episode: Episode, count: int, per_step: int
) -> tuple[Direction, int, str] | Check:
    if episode.value is None or count == 0:
        return deny(TOLERANCE, "no KPI value to scale on (the violation carried none)")
    # After earlier steps the value is not measured again (analytics reports
    # changes, not values): at an unchanged load it spreads over the VNFCs now.
    opened = episode.count_at_open or count
    value = episode.value * opened / count
    ratio = value / action.target
    repeat = any(s.outcome is Outcome.COMPLETED for s in episode.steps)
    initial = episode.value / action.target
    if not repeat and abs(ratio - 1) <= action.tolerance:
        return deny(
            TOLERANCE,
            f"value {value:g} is within {action.tolerance:.0%} of the target {action.target:g}",
        )
    desired = math.ceil(count * ratio)
    if initial > 1:
        steps = math.ceil(max(0, desired - count) / per_step)
        direction: Direction = "out"
    else:
        steps = (count - desired) // per_step if desired < count else 0
        direction = "in"
    if repeat:
        steps = max(1, steps)  # the violation still holds: one more step at least
    if action.max_steps is not None:
        steps = min(steps, action.max_steps)
    if steps < 1:
        return deny(TOLERANCE, f"{count} VNFCs already meet the target ({desired} wanted)")
    why = (
        f"{count} VNFCs at {value:g} for a target of {action.target:g}: "
        f"ceil({count} x {value:g} / {action.target:g}) = {desired}"
    )
    return direction, steps, why


def _within_bounds(
    vnfd: Vnfd, aspect: ScalingAspect, direction: Direction, steps: int, *, level: int, count: int
) -> int:
    """``steps`` cut to what the aspect's levels and the VDU's bounds allow (maybe 0)."""
    vdu_id, per_step = aspect_vdu(aspect)
    vdu = vnfd.vdu(vdu_id)
    if direction == "out":
        room = min(aspect.max_scale_level - level, (vdu.max_instances - count) // per_step)
    else:
        room = min(level, (count - vdu.min_instances) // per_step)
    return max(0, min(steps, room))


__all__ = ["MAX_INSTANCES", "MIN_INSTANCES", "CapacityAsk", "Plan", "ScaleChange", "plan_step"]
