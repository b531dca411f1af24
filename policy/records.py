"""What the loop says about its steps: decisions for the stream, notification payloads, reasons."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bus.contracts import Action, Decision, GuardResult, Violation, to_builtins
from policy.guards import Check
from policy.plans import Plan
from policy.schema import KpiPolicy
from policy.schema_actions import decision_action
from policy.state import (
    Episode,
    Outcome,
    Phase,
    StepRecord,
    Verdict,
    VnfLoop,
    episode_id,
    step_decision_id,
)

_NOTIFY_NS = uuid.uuid5(uuid.NAMESPACE_URL, "nfv-assure:policy:notify")


@dataclass
class Effects:
    """What a call of the loop produced: decisions to publish, episodes to record."""

    decisions: list[Decision] = field(default_factory=list)
    episodes: dict[str, Episode] = field(default_factory=dict)

    def touch(self, episode: Episode) -> None:
        self.episodes[episode.id] = episode

    def extend(self, other: Effects) -> None:
        self.decisions.extend(other.decisions)
        self.episodes.update(other.episodes)


@dataclass
class Turn:
    """One call of the loop on one VNF's record: the record, the time, what it produced."""

    state: VnfLoop
    now: float
    fx: Effects = field(default_factory=Effects)


def decision_of(policy: KpiPolicy, episode: Episode, step: StepRecord) -> Decision:
    """The decision message of one step, as the actuator and every watcher see it."""
    return Decision(
        id=step.decision_id,
        violation_id=episode.opened_by,
        policy=policy.name,
        action=Action(step.action),
        target=step.target,
        parameters=dict(step.parameters),
        guards=list(step.guards),
        approved=step.verdict is Verdict.APPROVED,
        reason=step.reason,
        decided_at=step.decided_at,
        request_id=episode.request_id,
        episode=episode.id,
        step=step.index,
        verdict=step.verdict.value,
        labels=policy.labels,
        timeout_s=step.timeout_s,
    )


def notify_id(episode: Episode, status: str) -> str:
    """The id of one notification of an episode (stable: a re-run sends the same one)."""
    return str(uuid.uuid5(_NOTIFY_NS, f"{episode.id}|{status}|{episode.result}"))


def notify_parameters(
    policy: KpiPolicy, episode: Episode, status: str, now: float, message: str = ""
) -> dict[str, Any]:
    """Everything a notification says: the receiver, the policy, the episode and its chain.

    ``message`` is the notify step's own; a resolved or escalation notice of a
    policy whose action is a notify repeats that action's message.
    """
    receiver = policy.spec.notify
    assert receiver is not None, "checked by the schema"
    action = policy.spec.action
    if not message and action is not None and action.type == "notify":
        message = action.message
    return {
        "url": receiver.url,
        "format": receiver.format,
        "status": status,
        "policy": policy.name,
        "description": policy.metadata.description,
        "labels": policy.labels,
        "message": message,
        "evidence": episode.evidence,
        "result": episode.result,
        "detail": episode.detail,
        "episode": episode.id,
        "target": episode.target.key(),
        "started_at": episode.opened_at,
        "ended_at": None if status == "firing" else episode.closed_at,
        "at": now,
        "chain": [
            {
                "action": s.action,
                "parameters": s.parameters,
                "verdict": s.verdict.value,
                "outcome": None if s.outcome is None else s.outcome.value,
            }
            for s in episode.steps
            if s.action != Action.NOTIFY.value
        ],
    }


def params_text(parameters: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in parameters.items() if v is not None)
    return f"({shown})" if shown else ""


def reason(policy: KpiPolicy, episode: Episode, plan: Plan, failed: Sequence[Check]) -> str:
    """One sentence: the policy, why it acts, and what it does or what holds it back."""
    why = episode.evidence or f"its trigger holds on {episode.trigger_target.key()}"
    what = f"{plan.action.value} {plan.target.key()} {params_text(plan.parameters)}".rstrip()
    if not failed:
        return f"{policy.name}: {why}: {what}"
    names = ", ".join(c.result.guard for c in failed)
    verb = "denied" if any(c.final for c in failed) else "queued"
    return f"{policy.name}: {why}: {what} {verb} by {names}: {failed[0].result.detail}"


def last_action(episode: Episode) -> str:
    step = episode.current
    if step is None:
        return "no action"
    return f"{step.action} {params_text(step.parameters)}".strip()


def acted(episode: Episode) -> bool:
    """Whether an operation of the episode (not a notification) completed."""
    return any(
        s.outcome is Outcome.COMPLETED for s in episode.steps if s.action != Action.NOTIFY.value
    )


def unrouted(
    policy: KpiPolicy, violation: Violation, why: GuardResult, now: float
) -> tuple[Episode, Decision]:
    """A closed episode of one denied decision: a violation the loop does not act on
    (it concerns no VNF the policy applies to, or it abated already)."""
    eid = episode_id(policy.name, violation.target, violation.id)
    first = policy.spec.chain()[0]
    action = first.action.type
    step = StepRecord(
        decision_id=step_decision_id(eid, 0),
        index=0,
        step=first.id,
        action=decision_action(action),
        target=violation.target,
        parameters={},
        guards=[why],
        verdict=Verdict.DENIED,
        reason=f"{policy.name}: {violation.evidence.description or violation.condition}: "
        f"{action} denied by {why.guard}: {why.detail}",
        decided_at=now,
        outcome=Outcome.DENIED,
    )
    episode = Episode(
        id=eid,
        policy=policy.name,
        target=violation.target,
        trigger_target=violation.target,
        opened_at=now,
        opened_by=violation.id,
        request_id=violation.request_id,
        evidence=violation.evidence.description,
        violation=to_builtins(violation),
        value=violation.evidence.value,
        phase=Phase.CLOSED,
        action=action,
        steps=[step],
        result="abated" if why.guard == "active" else "denied",
        closed_at=now,
        detail=why.detail,
    )
    return episode, decision_of(policy, episode, step)
