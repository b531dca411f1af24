"""The detectors' state machines: threshold with ``for`` and hysteresis, and absence.

Each (condition, target) pair is in one of three states: nothing holds
(no state kept), PENDING (the condition holds, its ``for`` duration is not
over yet) or FIRING (ONSET was sent). A step is a pure function of the
state, what the target shows now and the time; it says the next state and
which event, if any, to send. Events are sent only on change: ONSET once
when an episode starts, ABATED once when it ends, nothing in between.

Threshold: a breach starts PENDING at ``now``; a reading that is not a
breach, or no fresh data at all, before ``for_s`` is over resets it (an
alarm needs continuous evidence). FIRING ends only when the value crosses
the clear threshold (hysteresis): values between clear and threshold, and
missing data, keep it FIRING. Absence: a VNFC that scrape batches went
without for ``for_s`` (see :mod:`analytics.feed`) fires at once (its
episode started when the silence began) and abates when a sample newer
than that arrives; it is evaluated per VNFC whatever the condition's scope.
A VNF or VNFC target that left the inventory abates a firing episode and
drops a pending one.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from analytics.readings import Reading, Silence
from bus.conditions import ConditionSpec, breaches, cleared
from bus.contracts import Target, TargetKind, ViolationStatus


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


@dataclass(frozen=True)
class Step:
    """The outcome of one evaluation of one (condition, target)."""

    state: DetectorState | None
    """The next state; None when nothing holds any more."""
    event: ViolationStatus | None = None


def violation_id(condition: str, target: Target, since: float) -> str:
    """A stable id for one episode, the same on every worker that computes it."""
    digest = hashlib.blake2b(
        f"{condition}|{target.key()}|{since!r}".encode(), digest_size=10
    ).hexdigest()
    return f"v-{digest}"


def _fire(state: DetectorState, now: float) -> Step:
    firing = msgspec.structs.replace(
        state,
        phase=Phase.FIRING,
        violation_id=violation_id(state.condition, state.target, state.since),
        onset_at=now,
    )
    return Step(firing, ViolationStatus.ONSET)


def clear_of(cond: ConditionSpec) -> float:
    """The clear threshold of a threshold condition (its threshold when unset)."""
    assert cond.threshold is not None, "checked by check_conditions"
    return cond.threshold if cond.clear is None else cond.clear


def step_threshold(
    cond: ConditionSpec, state: DetectorState | None, reading: Reading, now: float
) -> Step:
    """One evaluation of a threshold condition on the target of ``reading``."""
    assert cond.threshold is not None, "checked by check_conditions"
    value = reading.value
    if state is None or state.phase is Phase.PENDING:
        if value is None or not breaches(cond.op, value, cond.threshold):
            return Step(None)
        if state is None:
            state = DetectorState(cond.key, reading.target, Phase.PENDING, since=now)
        if now - state.since >= cond.for_s:
            return _fire(state, now)
        return Step(state)
    if value is not None and cleared(cond.op, value, clear_of(cond)):
        return Step(None, ViolationStatus.ABATED)
    return Step(state)


def step_absent(
    cond: ConditionSpec, state: DetectorState | None, silence: Silence, now: float
) -> Step:
    """One evaluation of an absent condition on the VNFC of ``silence``."""
    if state is not None:
        returned = silence.last_sample is not None and silence.last_sample > state.since
        return Step(None, ViolationStatus.ABATED) if returned else Step(state)
    if silence.silent_s >= cond.for_s:
        pending = DetectorState(cond.key, silence.target, Phase.PENDING, since=silence.since)
        return _fire(pending, now)
    return Step(None)


def step_unseen(state: DetectorState) -> Step:
    """A target with an open episode that this evaluation did not see at all.

    A VNF or VNFC missing from the inventory is gone for good: its firing
    episode abates (nothing will ever clear it otherwise). A host simply
    sent no fresh data: it stays FIRING, but a PENDING one resets.
    """
    if state.phase is Phase.PENDING:
        return Step(None)
    if state.target.kind is TargetKind.HOST:
        return Step(state)
    return Step(None, ViolationStatus.ABATED)


def check_conditions(conditions: Sequence[ConditionSpec]) -> None:
    """Raise ValueError naming the first condition analytics cannot evaluate."""
    seen: set[str] = set()
    for cond in conditions:
        problem = _problem(cond)
        if cond.key in seen:
            problem = "appears twice"
        if problem:
            raise ValueError(f"condition {cond.key}: {problem}")
        seen.add(cond.key)


def _problem(cond: ConditionSpec) -> str | None:
    if cond.for_s < 0:
        return f"for_s must not be negative, got {cond.for_s}"
    if cond.aggregate not in ("avg", "max", "min", "sum"):
        return f"unknown aggregate {cond.aggregate!r}"
    if cond.op not in (">", ">=", "<", "<="):
        return f"unknown comparison {cond.op!r}"
    if cond.kind == "absent":
        return None if cond.for_s > 0 else "an absent condition needs for_s > 0"
    if cond.threshold is None:
        return "a threshold condition needs a threshold"
    clear = clear_of(cond)
    if cond.op in (">", ">=") and clear > cond.threshold:
        return f"clear {clear} must be <= threshold {cond.threshold} for {cond.op!r}"
    if cond.op in ("<", "<=") and clear < cond.threshold:
        return f"clear {clear} must be >= threshold {cond.threshold} for {cond.op!r}"
    return None
