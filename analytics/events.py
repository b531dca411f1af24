"""Violation events: the ONSET and ABATED messages and the evidence they carry.

Each event says in one line why it was raised, e.g.
``avg(vnf_cpu_utilisation) 82.1 > 75 for 30s`` or
``avg(vnf_cpu_utilisation) 61 <= 65 after 2m10s``.
"""

from __future__ import annotations

import math

from analytics.detectors import DetectorState, clear_of
from analytics.readings import Reading, Silence
from bus.conditions import ConditionSpec
from bus.contracts import Evidence, TargetKind, Violation, ViolationStatus
from bus.units import format_duration

# How ``cleared`` reads for each comparison (the negation at the clear value).
_CLEARED_TEXT = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def number(value: float) -> str:
    """A short human form of a KPI value: ``82.1``, ``75``, ``0.0125``, ``1.2e+07``."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-3):
        return f"{value:.3g}"
    # One decimal is what a KPI reading needs (82.4%); small values keep
    # three significant digits (0.0125 s).
    text = f"{value:.1f}" if abs(value) >= 1 else f"{value:.3g}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text


def subject(cond: ConditionSpec, reading: Reading) -> str:
    """What a threshold condition compares: ``avg(kpi)``, or ``kpi`` for one VNFC series."""
    if cond.scope is TargetKind.VNFC and len(reading.values) <= 1:
        return cond.kpi
    return f"{cond.aggregate}({cond.kpi})"


def threshold_evidence(
    cond: ConditionSpec, state: DetectorState, reading: Reading, status: ViolationStatus, now: float
) -> Evidence:
    """Why a threshold condition started (ONSET) or stopped (ABATED) holding."""
    assert cond.threshold is not None and reading.value is not None
    held = now - state.since
    if status is ViolationStatus.ONSET:
        how = f"{cond.op} {number(cond.threshold)} for {format_duration(held)}"
    else:
        how = f"{_CLEARED_TEXT[cond.op]} {number(clear_of(cond))} after {format_duration(held)}"
    return Evidence(
        value=reading.value,
        values=reading.values,
        window_s=held,
        threshold=cond.threshold,
        clear=clear_of(cond),
        description=f"{subject(cond, reading)} {number(reading.value)} {how}",
    )


def absent_evidence(
    cond: ConditionSpec, state: DetectorState, silence: Silence, status: ViolationStatus, now: float
) -> Evidence:
    """Why an absent condition started (ONSET) or stopped (ABATED) holding."""
    if status is ViolationStatus.ONSET:
        text = f"no {cond.kpi} sample for {format_duration(now - state.since)}"
    else:
        text = f"{cond.kpi} samples returned after {format_duration(now - state.since)}"
    return Evidence(
        value=None, values={}, window_s=now - state.since, threshold=None, description=text
    )


def gone_evidence(cond: ConditionSpec, state: DetectorState, now: float) -> Evidence:
    """Why an episode abated: its VNF or VNFC left the inventory."""
    target = state.target
    threshold = cond.threshold if cond.kind == "threshold" else None
    return Evidence(
        value=None,
        values={},
        window_s=now - state.since,
        threshold=threshold,
        clear=clear_of(cond) if threshold is not None else None,
        description=(
            f"{target.kind.value} {target.id} left the inventory"
            f" after {format_duration(now - state.since)}"
        ),
    )


def evidence_of(
    cond: ConditionSpec,
    state: DetectorState,
    status: ViolationStatus,
    observed: Reading | Silence | None,
    now: float,
) -> Evidence:
    """The evidence of an event, from what the target showed (None: it left the inventory)."""
    if isinstance(observed, Reading):
        return threshold_evidence(cond, state, observed, status, now)
    if isinstance(observed, Silence):
        return absent_evidence(cond, state, observed, status, now)
    return gone_evidence(cond, state, now)


def violation(
    cond: ConditionSpec,
    state: DetectorState,
    status: ViolationStatus,
    evidence: Evidence,
    now: float,
) -> Violation:
    """The event of one episode; ``state`` is the FIRING state of the episode."""
    assert state.violation_id is not None, "only a firing episode raises events"
    return Violation(
        id=state.violation_id,
        status=status,
        policy=cond.policy,
        condition=cond.name,
        target=state.target,
        evidence=evidence,
        started_at=state.since,
        at=now,
        request_id=f"{state.violation_id}.{status.value.lower()}",
        labels={"kpi": cond.kpi, "kind": cond.kind},
    )
