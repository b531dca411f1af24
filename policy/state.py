"""What the policy stage remembers per VNF instance: open conditions, episodes, marks.

One :class:`VnfLoop` record per VNF (and one per NS instance, named by
:func:`ns_loop_id`, for conditions of scope ``ns`` and NS scaling) holds
everything the closed loop needs to decide about that VNF: the conditions
open on it (and on the hosts under it), the episodes of its policies with
their whole chain of steps, the decision in flight, and the marks the
guards read (completions for the cooldowns, recent actions for the
frequency limits, scale recommendations for the stabilisation window). It
is stored as one JSON record, so a decision about a VNF is taken from one
consistent picture and saved with one compare-and-set
(:mod:`policy.store`).
"""

from __future__ import annotations

import enum
import uuid
from typing import Any

import msgspec

from bus.contracts import GuardResult, Target


class Phase(enum.StrEnum):
    DECIDING = "deciding"
    """A step is to be decided now (or at ``next_at``)."""
    QUEUED = "queued"
    """The step's decision was held back by a guard that passes with time; re-checked."""
    APPROVAL = "approval"
    """The decision waits for an operator's approval."""
    RUNNING = "running"
    """The decision was approved and published: its operation runs."""
    VERIFYING = "verifying"
    """The operation completed: waiting for the KPI to recover."""
    DRY_RUN = "dry_run"
    """The policy runs dry: its decision is recorded, nothing runs."""
    CLOSED = "closed"
    """The episode ended (``result``); it stays until its trigger releases."""


ACTIVE_PHASES = frozenset(
    {Phase.DECIDING, Phase.QUEUED, Phase.APPROVAL, Phase.RUNNING, Phase.VERIFYING}
)


class Verdict(enum.StrEnum):
    APPROVED = "approved"
    DENIED = "denied"
    QUEUED = "queued"
    AWAITING_APPROVAL = "awaiting_approval"
    REJECTED = "rejected"
    DRY_RUN = "dry_run"


class Outcome(enum.StrEnum):
    """How one step ended."""

    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    DENIED = "denied"
    REJECTED = "rejected"
    DRY_RUN = "dry_run"
    WITHDRAWN = "withdrawn"
    """The trigger released before the step ran (queued or awaiting approval)."""


class StepRecord(msgspec.Struct, kw_only=True):
    """One decision of an episode, and what became of it."""

    decision_id: str
    index: int
    """Its place in the episode (0 for the first decision)."""
    step: str
    """The chain step it runs (``main`` for a policy with one ``action``)."""
    attempt: int = 0
    """0 for the first try of the step, 1.. for its retries."""
    action: str
    target: Target
    parameters: dict[str, Any]
    guards: list[GuardResult]
    verdict: Verdict
    reason: str
    decided_at: float
    timeout_s: float | None = None
    op_id: str | None = None
    op_state: str | None = None
    op_error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    outcome: Outcome | None = None
    verification: str | None = None
    """``recovered`` or ``unrecovered`` once verified."""
    approved_by: str | None = None
    """Who approved a decision of a policy in mode ``approve``."""


class Episode(msgspec.Struct, kw_only=True):
    """One policy acting on one target, from its trigger to its result."""

    id: str
    policy: str
    target: Target
    """What the actions act on (a VNF for scaling, a VNFC for heal and migrate)."""
    trigger_target: Target
    """Where the trigger holds (a VNF, a VNFC or a host)."""
    opened_at: float
    opened_by: str
    """The violation whose ONSET made the trigger hold."""
    request_id: str
    evidence: str = ""
    """The opening violation's description."""
    violation: dict[str, Any] = {}
    """The opening violation as it arrived (its evidence: values, window, threshold)."""
    value: float | None = None
    """The KPI value the opening violation reported (proportional scaling)."""
    count_at_open: int | None = None
    """The VNFCs of the scaled VDU when the episode opened (proportional scaling)."""
    phase: Phase = Phase.DECIDING
    step: str = "main"
    action: str = ""
    """The action type of the current step (``heal``, ``scale_out``, ...)."""
    rung: str | None = None
    """The recovery level of the current heal step, or ``live``/``cold`` of a migration."""
    attempt: int = 0
    steps: list[StepRecord] = []
    next_at: float | None = None
    verify_until: float | None = None
    deadline: float | None = None
    """When the whole episode gives up (the policy's ``timeout``)."""
    released_at: float | None = None
    """When the trigger stopped holding."""
    result: str | None = None
    closed_at: float | None = None
    detail: str = ""

    @property
    def current(self) -> StepRecord | None:
        return self.steps[-1] if self.steps else None

    def due_at(self) -> float | None:
        """When the episode next has something to do: its follow-up or its deadline."""
        times = [self.next_at]
        if self.phase in ACTIVE_PHASES:
            times.append(self.deadline)
        return min((t for t in times if t is not None), default=None)


class OpenCondition(msgspec.Struct, kw_only=True):
    """A condition (or an alert) in ONSET on a target."""

    violation_id: str
    policy: str
    condition: str
    target: Target
    since: float
    value: float | None = None
    description: str = ""
    caused_by: str | None = None
    """Set when analytics explains it by another violation (a host fault):
    recorded, never acted on by itself."""
    request_id: str = ""
    action_targets: list[Target] = []
    """What the policy's action acts on for this violation on this VNF."""
    violation: dict[str, Any] = {}
    """The ONSET as it arrived, for the audit trail of the episodes it opens."""

    @property
    def key(self) -> str:
        return condition_key(self.policy, self.condition, self.target)


KEEP_MARKS_S = 86_400.0
"""How long guard marks (completions, actions, recommendations) are kept."""


class Recommendation(msgspec.Struct, array_like=True):
    at: float
    count: int


class VnfLoop(msgspec.Struct, kw_only=True):
    """Everything the closed loop keeps about one VNF instance."""

    vnf: str
    conditions: dict[str, OpenCondition] = {}
    episodes: dict[str, Episode] = {}
    """Open episodes (and closed ones whose trigger still holds) by
    ``<policy>|<target key>``."""
    inflight: str | None = None
    """The decision running on the VNF now: one at a time."""
    completions: dict[str, float] = {}
    """Cooldown marks: when the last operation under each cooldown key ended."""
    actions: list[tuple[str, float]] = []
    """``(<policy>|<target key>, at)`` of recent approved decisions (frequency limits)."""
    recommendations: dict[str, list[Recommendation]] = {}
    """Recent VNFC counts recommended per scaling aspect (stabilisation)."""
    outbox: list[bytes] = []
    """Encoded decisions saved but perhaps not published yet (published after saving)."""

    def last_completed(self) -> float | None:
        """When the last operation on the VNF completed (the latest cooldown mark)."""
        return max(self.completions.values(), default=None)

    def next_at(self) -> float | None:
        times = [t for e in self.episodes.values() if (t := e.due_at()) is not None]
        return min(times) if times else None

    def empty(self) -> bool:
        """Nothing worth keeping: the record can go."""
        marks = self.completions or self.actions or self.recommendations
        return not (self.conditions or self.episodes or self.outbox or self.inflight or marks)

    def prune(self, now: float, keep_s: float = KEEP_MARKS_S) -> None:
        """Forget guard marks older than ``keep_s`` (longer than any cooldown or window)."""
        self.completions = {k: t for k, t in self.completions.items() if now - t < keep_s}
        self.actions = [(k, t) for k, t in self.actions if now - t < keep_s]
        self.recommendations = {
            aspect: kept
            for aspect, recs in self.recommendations.items()
            if (kept := [r for r in recs if now - r.at < keep_s])
        }


NS_LOOP_PREFIX = "ns:"
"""Records of network services are named ``ns:<NS instance id>`` beside the VNFs' ids."""


def ns_loop_id(ns_id: str) -> str:
    """The loop record of an NS instance (its NS-scope conditions and NS scaling)."""
    return f"{NS_LOOP_PREFIX}{ns_id}"


def ns_of_loop(loop_id: str) -> str | None:
    """The NS instance a loop record is of (None: a VNF's record)."""
    return loop_id[len(NS_LOOP_PREFIX) :] if loop_id.startswith(NS_LOOP_PREFIX) else None


def condition_key(policy: str, condition: str, target: Target) -> str:
    return f"{policy}/{condition}|{target.key()}"


def episode_key(policy: str, target: Target) -> str:
    return f"{policy}|{target.key()}"


_NS = uuid.uuid5(uuid.NAMESPACE_URL, "nfv-assure:policy:episode")


def episode_id(policy: str, target: Target, violation_id: str) -> str:
    """The id of the episode a violation opens for ``policy`` on ``target`` (stable)."""
    return str(uuid.uuid5(_NS, f"{policy}|{target.key()}|{violation_id}"))


def step_decision_id(episode: str, index: int) -> str:
    """The id of the ``index``-th decision of an episode: its operation's idempotency key."""
    return str(uuid.uuid5(_NS, f"{episode}#{index}"))


def find_step(state: VnfLoop, decision_id: str) -> tuple[Episode, StepRecord] | None:
    for episode in state.episodes.values():
        for step in episode.steps:
            if step.decision_id == decision_id:
                return episode, step
    return None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(VnfLoop)


def encode_loop(state: VnfLoop) -> bytes:
    return _encoder.encode(state)


def decode_loop(raw: bytes | str) -> VnfLoop:
    return _decoder.decode(raw)
