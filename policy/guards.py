"""Guards: the rules that can hold a decision back or deny it.

Each check gives a :class:`~bus.contracts.GuardResult` and, when it fails,
whether the denial passes with time (:attr:`Check.retry_at`: the decision is
queued and re-checked then) or is final (the step follows its
``on_denied`` branch). The closed loop (:mod:`policy.loop`) runs them in a
fixed order, cheapest and most final first; those with side effects (the
capacity pre-check, the concurrency slot) run last, only when all others
passed.

Final: ``target`` (nothing to act on), ``max_instances`` /
``min_instances`` (the VNFD's bounds; for an NS scale, the NSD aspect's
levels and each member VNF's bounds for its share), ``blast_radius`` (too
much fails at once: stop and escalate), ``capacity`` (the VIM cannot place
a scale-out; for an NS scale-out, a member's share), ``tolerance`` (a
proportional scale with nothing to change).

Passing (queued): ``opt_out`` (automation off for the VNF or a host; for an
NS, for a member VNF), ``blackout`` / ``maintenance`` windows,
``coordination`` (heal before migrate before scale; no scale-in while
another condition is open on the VNF or the NS; an NS decision waits while
a member VNF has one in flight, and a member VNF's decision while its NS
has one: :mod:`policy.guards_ns`), ``in_flight`` (one decision at a time
per VNF, and per NS), ``settle`` (after an operation on the VNF completed,
its KPIs are given time to show the change before the next decision on it),
``stabilisation``, ``cooldown`` (timed from the completion of the last
operation, shared by the scaling actions of one aspect, out or in, of one
VNF or of one NS), ``frequency`` and ``concurrency`` (global and per-host
caps on operations under way). ``blast_radius`` and ``stabilisation`` count
one VNF's VNFCs: NS decisions skip them.

``active``: the violation has not abated meanwhile; an ONSET read after a
backlog may describe a condition that cleared minutes ago. Each producer
records a violation's latest status where it queues its events: the
analytics stage at ``keys.violation_state(id)``, the Alertmanager and VES
receivers in their alert ledger (``keys.alert_ledger("status")``), in the
same atomic step as the event. No record (expired, forgotten) passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bus.contracts import GuardResult, ViolationStatus
from bus.keys import Keys
from bus.redis import reply_text
from bus.units import format_duration
from mano_core.models import VnfInstance
from mano_core.vnfd import ScalingAspect, Vnfd
from policy.schema_guards import Frequency, Guards, Window
from policy.state import ACTIVE_PHASES, Episode, Recommendation, VnfLoop, ns_of_loop
from policy.windows import next_opening, open_until

TARGET = "target"
ACTIVE = "active"
COOLDOWN = "cooldown"
MAX_INSTANCES = "max_instances"
MIN_INSTANCES = "min_instances"
FREQUENCY = "frequency"
STABILISATION = "stabilisation"
BLACKOUT = "blackout"
MAINTENANCE = "maintenance"
COORDINATION = "coordination"
IN_FLIGHT = "in_flight"
SETTLE = "settle"
CONCURRENCY = "concurrency"
BLAST_RADIUS = "blast_radius"
CAPACITY = "capacity"
OPT_OUT = "opt_out"
TOLERANCE = "tolerance"
MODE = "mode"

PRIORITY = {"heal": 0, "migrate": 1}
"""Coordination per VNF: heal before migrate before everything else (scaling)."""
_OTHER = 2

WHEN_FREED = math.inf
"""``retry_at`` of a denial that is re-checked when something on the VNF ends."""


@dataclass(frozen=True)
class Check:
    """A guard's verdict and, for a denial that passes with time, when to look again."""

    result: GuardResult
    retry_at: float | None = None
    """None: final when it failed. A time (or :data:`WHEN_FREED`): queue and re-check."""

    @property
    def passed(self) -> bool:
        return self.result.passed

    @property
    def final(self) -> bool:
        return not self.passed and self.retry_at is None


def ok(guard: str, detail: str) -> Check:
    return Check(GuardResult(guard, True, detail))


def deny(guard: str, detail: str, retry_at: float | None = None) -> Check:
    return Check(GuardResult(guard, False, detail), retry_at)


async def active_guard(redis: Any, keys: Keys, violation_id: str, source: str) -> GuardResult:
    """Whether the violation is still active, per the status its producer (``source``,
    as :attr:`bus.contracts.Violation.source` names it) recorded."""
    if source == "analytics":
        raw = await redis.get(keys.violation_state(violation_id))
    else:
        raw = await redis.hget(keys.alert_ledger("status"), violation_id)
    status = reply_text(raw)
    if status == ViolationStatus.ABATED:
        return GuardResult(ACTIVE, False, "the violation already abated")
    if status == ViolationStatus.ONSET:
        return GuardResult(ACTIVE, True, "the violation is still active")
    if not status:
        return GuardResult(ACTIVE, True, "no recorded status; taken as active")
    return GuardResult(ACTIVE, True, f"unknown recorded status {status!r}; taken as active")


def windows_check(guards: Guards, now: float) -> Check | None:
    """Blackout and maintenance windows (None: the policy has neither)."""
    for window in guards.blackout:
        until = open_until(window.cron, window.duration, window.timezone, now)
        if until is not None:
            return deny(
                BLACKOUT,
                f"blackout window {window.cron!r} ({window.timezone}) is open for "
                f"{format_duration(until - now)} more",
                until,
            )
    if guards.maintenance:
        for window in guards.maintenance:
            if open_until(window.cron, window.duration, window.timezone, now) is not None:
                return ok(MAINTENANCE, f"maintenance window {window.cron!r} is open")
        opens = [_opening(w, now) for w in guards.maintenance]
        soonest = min((t for t in opens if t is not None), default=None)
        when = "never" if soonest is None else f"in {format_duration(soonest - now)}"
        return deny(
            MAINTENANCE,
            f"outside every maintenance window; the next opens {when}",
            soonest if soonest is not None else now + 86_400.0,
        )
    if guards.blackout:
        return ok(BLACKOUT, "no blackout window is open")
    return None


def _opening(window: Window, now: float) -> float | None:
    return next_opening(window.cron, window.timezone, now)


def coordination_check(state: VnfLoop, episode: Episode, action: str, vnf: VnfInstance) -> Check:
    """Heal before migrate before scale on one VNF; no scale-in while anything else is open.

    A host condition counts for the VNF only while a VNFC of the VNF is on that host.
    """
    mine = PRIORITY.get(action, _OTHER)
    for other in state.episodes.values():
        if other.id == episode.id or other.phase not in ACTIVE_PHASES:
            continue
        if PRIORITY.get(other.action, _OTHER) < mine:
            return deny(
                COORDINATION,
                f"{other.action} of {other.target.key()} (policy {other.policy}) comes first",
                WHEN_FREED,
            )
    if action == "scale_in":
        own = episode.opened_by
        hosts = {c.host for c in vnf.vnfcs}
        others = [
            c
            for c in state.conditions.values()
            if c.violation_id != own
            and not _same_trigger(c.policy, c.target.key(), episode)
            and (c.target.kind.value != "host" or c.target.id in hosts)
        ]
        if others:
            first = others[0]
            return deny(
                COORDINATION,
                f"no scale-in while {first.policy}/{first.condition} is open on "
                f"{first.target.key()}",
                WHEN_FREED,
            )
    return ok(COORDINATION, "nothing on the VNF comes first")


def _same_trigger(policy: str, target_key: str, episode: Episode) -> bool:
    return policy == episode.policy and target_key == episode.trigger_target.key()


def in_flight_check(state: VnfLoop, decision_id: str) -> Check:
    subject = "the VNF" if ns_of_loop(state.vnf) is None else "the NS"
    if state.inflight is None or state.inflight == decision_id:
        return ok(IN_FLIGHT, f"no other decision runs on {subject}")
    return deny(IN_FLIGHT, f"decision {state.inflight} runs on {subject}", WHEN_FREED)


def settle_check(state: VnfLoop, settle_s: float, now: float) -> Check | None:
    """Queue decisions on a VNF until ``settle_s`` after its last completed operation.

    An operation changes what the analytics see (a migrated VNFC reports again
    from its new host, a rebooted one comes back): a condition it cured needs a
    fresh sample and an evaluation to abate. Deciding before that would act on
    evidence from before the operation. None: no settle time is set.
    """
    if settle_s <= 0:
        return None
    changed = state.last_completed()
    if changed is None or now - changed >= settle_s:
        return ok(SETTLE, "the KPIs have had time to show the last operation on the VNF")
    return deny(
        SETTLE,
        f"the last operation on the VNF completed {format_duration(now - changed)} ago; "
        f"its KPIs settle for {format_duration(settle_s)}",
        changed + settle_s,
    )


def cooldown_check(state: VnfLoop, key: str, cooldown_s: float, now: float) -> Check:
    """Passes once ``cooldown_s`` have gone by since the last operation under ``key`` ended."""
    ended = state.completions.get(key)
    if ended is None:
        return ok(COOLDOWN, f"no earlier operation under {key}")
    ago = now - ended
    if ago >= cooldown_s:
        return ok(COOLDOWN, f"last operation under {key} ended {format_duration(ago)} ago")
    return deny(
        COOLDOWN,
        f"the last operation under {key} ended {format_duration(ago)} ago; cooldown "
        f"{format_duration(cooldown_s)}, {format_duration(cooldown_s - ago)} left",
        ended + cooldown_s,
    )


def frequency_check(state: VnfLoop, key: str, limit: Frequency, now: float) -> Check:
    recent = sorted(at for k, at in state.actions if k == key and now - at < limit.per)
    if len(recent) < limit.max:
        return ok(FREQUENCY, f"{len(recent)} of {limit.max} per {format_duration(limit.per)}")
    frees = recent[len(recent) - limit.max] + limit.per
    return deny(
        FREQUENCY,
        f"{len(recent)} actions in the last {format_duration(limit.per)} (at most "
        f"{limit.max}); the next is allowed in {format_duration(frees - now)}",
        frees,
    )


def stabilised_count(
    state: VnfLoop, aspect: str, desired: int, window_s: float, now: float
) -> tuple[int, float | None]:
    """The VNFC count a scale-in may go down to: the highest recommended in the window.

    Returns it and when the recommendation that sets it leaves the window.
    """
    recent = [r for r in state.recommendations.get(aspect, []) if now - r.at < window_s]
    highest = max(recent, key=lambda r: (r.count, r.at), default=None)
    if highest is None or highest.count <= desired:
        return desired, None
    return highest.count, highest.at + window_s


def recommend(state: VnfLoop, aspect: str, count: int, now: float, keep_s: float) -> None:
    """Remember a recommended VNFC count for the stabilisation window (pruned to ``keep_s``)."""
    kept = [r for r in state.recommendations.get(aspect, []) if now - r.at < keep_s]
    kept.append(Recommendation(now, count))
    state.recommendations[aspect] = kept


def blast_radius_check(
    guards: Guards, state: VnfLoop, vnf: VnfInstance, onsets: int | None, host_share: float | None
) -> Check | None:
    """Too much failing at once: stop acting and escalate (None: no breaker set)."""
    radius = guards.blast_radius
    if radius is None:
        return None
    if radius.vnfcs is not None and vnf.vnfcs:
        failing = {
            e.target.id
            for e in state.episodes.values()
            if e.phase in ACTIVE_PHASES and e.target.kind.value == "vnfc"
        }
        share = len(failing) / len(vnf.vnfcs)
        if share > radius.vnfcs:
            return deny(
                BLAST_RADIUS,
                f"{len(failing)} of {len(vnf.vnfcs)} VNFCs of VNF {vnf.id} fail at once "
                f"({share:.0%} > {radius.vnfcs:.0%}): stopping, escalating",
            )
    if radius.hosts is not None and host_share is not None and host_share > radius.hosts:
        return deny(
            BLAST_RADIUS,
            f"{host_share:.0%} of the hosts fail at once (> {radius.hosts:.0%}): "
            "stopping, escalating",
        )
    if radius.onsets is not None and onsets is not None and onsets > radius.onsets.max:
        return deny(
            BLAST_RADIUS,
            f"{onsets} ONSETs in {format_duration(radius.onsets.per)} "
            f"(> {radius.onsets.max}): stopping, escalating",
        )
    return ok(BLAST_RADIUS, "failures within the blast radius")


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
