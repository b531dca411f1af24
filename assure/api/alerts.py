"""The Alertmanager webhook ``POST /api/v1/alerts``: alerts in, violations queued.

It takes Alertmanager's webhook payload (version 4): a group of alerts,
each firing or resolved. Each alert is about the target its labels name
(:mod:`assure.api.alert_targets`) and triggers the policies whose alert
trigger matches (:mod:`policy.alerts`). For each (alert, policy) it queues
a violation on the violations stream, as the analytics stage does for a
KPI condition: firing is the ONSET, resolved the ABATED, and the id is
derived from the alert's fingerprint, its ``startsAt`` and the policy, so
that every notification of one episode names the same violation. The
ledger (:mod:`assure.api.alert_ledger`) queues each ONSET and ABATED once.

Answers, so that Alertmanager retries only what a retry can fix:

- 200 once every event is queued in Redis (the body reports each alert);
- 400 for a payload that is not Alertmanager's, naming the place;
- 422 when an alert names a VNF, VNFC or host that does not exist, or no
  target at all; nothing of the notification is queued then (group alerts
  by their target labels so that one bad alert holds up no other);
- 503 when Redis cannot be reached: Alertmanager sends it again.

A resolved alert whose target has gone since (a VNFC scaled in) still
abates its violation: the target is taken from the queued ONSET.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import msgspec
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from assure.api.alert_ledger import AlertLedger, LedgerBatches, Outcome
from assure.api.alert_targets import AlertTargets, InventorySnapshot, UnknownTarget
from assure.api.body import read_body
from assure.api.http_metrics import HTTP_METRICS, WEBHOOK_PATH
from assure.api.policies_in_force import IN_FORCE
from assure.api.problems import unprocessable
from assure.api.routing import Reply, Route
from assure.api.state import DEPS, ApiDeps
from assure.api.tokens import Role
from bus.contracts import Evidence, Target, Violation, ViolationStatus
from policy.alerts import triggered_by
from policy.schema import AlertTrigger, KpiPolicy

SNAPSHOT = web.AppKey("alert_inventory", InventorySnapshot)
"""The inventory as the webhook reads it (shared by every notification of a burst)."""
LEDGER = web.AppKey("alert_ledger", LedgerBatches)
"""The ledger's writes, shared by every notification of a burst."""

_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "nfv-assure:alertmanager:violation")
_ID_HASH = hashlib.sha1(_ID_NAMESPACE.bytes, usedforsecurity=False)
"""A name-based (version 5) UUID's hash, fed with the namespace: each id copies it."""
_json = msgspec.json.Encoder()


class _Lenient(BaseModel):
    # Alertmanager may add fields in later versions: unknown ones are not errors.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Alert(_Lenient):
    """One alert of a notification, as Alertmanager sends it."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1)

    @functools.cached_property
    def started_at(self) -> float:
        """``startsAt`` in epoch seconds."""
        return self.startsAt.timestamp()


class Notification(_Lenient):
    """Alertmanager's webhook payload, version 4."""

    version: Literal["4"]
    groupKey: str
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Alert] = Field(min_length=1)


class AlertReport(BaseModel):
    """What became of one alert."""

    fingerprint: str
    alertname: str
    outcome: Literal["queued", "duplicate", "unknown", "unmatched"]
    policy: str | None = None
    violation: str | None = None
    status: Literal["ONSET", "ABATED"] | None = None


class NotificationReport(BaseModel):
    alerts: list[AlertReport]


def violation_id(alert: Alert, policy: str) -> str:
    """One id per episode and policy: the alert's fingerprint and when it started firing.

    The version 5 UUID of that name in the webhook's namespace, as ``uuid.uuid5``
    makes it, without building a UUID object (a notification may carry hundreds).
    """
    digest = _ID_HASH.copy()
    digest.update(f"{alert.fingerprint}|{alert.started_at!r}|{policy}".encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _evidence(alert: Alert, now: float) -> Evidence:
    value: float | None = None
    raw = alert.annotations.get("value")
    if raw:
        with contextlib.suppress(ValueError):
            value = float(raw)
    name = alert.labels.get("alertname", "")
    description = (
        alert.annotations.get("summary")
        or alert.annotations.get("description")
        or f"alert {name} {alert.status}"
    )
    return Evidence(
        value=value,
        values={},
        window_s=max(0.0, now - alert.started_at),
        threshold=None,
        description=description,
    )


def _violation(
    alert: Alert,
    policy: KpiPolicy,
    target: Target,
    now: float,
    source: Literal["alertmanager", "ves"] = "alertmanager",
) -> Violation:
    vid = violation_id(alert, policy.name)
    status = ViolationStatus.ONSET if alert.status == "firing" else ViolationStatus.ABATED
    return Violation(
        id=vid,
        status=status,
        policy=policy.name,
        condition=f"alert:{alert.labels.get('alertname', '')}",
        target=target,
        evidence=_evidence(alert, now),
        started_at=alert.started_at,
        at=now,
        # As analytics names its events: the ledger queues each (episode, status) once.
        request_id=f"{vid}.{status.value.lower()}",
        source=source,
        labels=dict(alert.labels),
    )


async def queue_alerts(
    deps: ApiDeps,
    alerts: Sequence[Alert],
    *,
    source: Literal["alertmanager", "ves"] = "alertmanager",
    place: str = "alerts",
    snapshot: InventorySnapshot | None = None,
    batches: LedgerBatches | None = None,
    policies: Sequence[KpiPolicy] | None = None,
) -> tuple[list[tuple[Alert, int | None]], list[Violation], list[Outcome]]:
    """Queue the violations ``alerts`` cause; 422 (nothing queued) if one names no target.

    Returns each alert with the index of its event (None: it triggers no
    policy), the events, and what the ledger made of each. ``snapshot`` and
    ``batches``: the inventory and the ledger's writes as a burst of
    notifications shares them (default: this call's own); ``policies``: those
    in force (default: those the server loaded).
    """
    targets = AlertTargets(snapshot or InventorySnapshot(deps.inventory), deps.vims)
    if batches is None:
        ledger = AlertLedger(deps.redis, deps.keys, maxlen=deps.stream_maxlen)
        batches = LedgerBatches(ledger, deps.clock)
    ledger = batches.ledger
    now = deps.clock.now()
    events: list[Violation] = []
    # Each alert, with the index of its event (None: it triggers no policy).
    plan: list[tuple[Alert, int | None]] = []
    problems: list[dict[str, str]] = []
    triggers = [(p, p.spec.trigger) for p in policies or deps.policies
                if isinstance(p.spec.trigger, AlertTrigger)]  # fmt: skip
    for index, alert in enumerate(alerts):
        candidates = [p for p, trigger in triggers if trigger.matches(alert.labels)]
        if not candidates:
            plan.append((alert, None))
            continue
        try:
            target = await _target_of(alert, candidates, targets, ledger)
        except UnknownTarget as exc:
            problems.append({"place": f"{place}[{index}].labels", "problem": str(exc)})
            continue
        matched = triggered_by(candidates, alert.labels, target.vnfd)
        if not matched:
            plan.append((alert, None))
        for policy in matched:
            plan.append((alert, len(events)))
            events.append(_violation(alert, policy, target, now, source))
    if problems:
        detail = f"{len(problems)} alert(s) name no known target; nothing was queued"
        raise unprocessable(detail, problems)
    outcomes = await batches.record(events)
    return plan, events, outcomes


async def receive_alerts(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    notification = await read_body(request, Notification)
    in_force = await request.app[IN_FORCE].current()
    plan, events, outcomes = await queue_alerts(
        deps,
        notification.alerts,
        snapshot=request.app[SNAPSHOT],
        batches=request.app[LEDGER],
        policies=in_force.policies,
    )
    counted: Counter[str] = Counter()
    # Plain dicts in AlertReport's shape: a burst answers many, and models cost more to build.
    reports: list[dict[str, str]] = []
    for alert, event_index in plan:
        name = alert.labels.get("alertname", "")
        if event_index is None:
            counted["unmatched"] += 1
            reports.append({"fingerprint": alert.fingerprint, "alertname": name,
                            "outcome": "unmatched"})  # fmt: skip
            continue
        event, outcome = events[event_index], outcomes[event_index]
        counted[outcome.value] += 1
        reports.append({
            "fingerprint": alert.fingerprint, "alertname": name, "outcome": outcome.value,
            "policy": event.policy, "violation": event.id, "status": event.status.value,
        })  # fmt: skip
    counter = request.app[HTTP_METRICS].alerts
    for outcome_name, count in counted.items():
        counter.labels(outcome_name).inc(count)
    return web.json_response(body=_json.encode({"alerts": reports}))


async def _target_of(
    alert: Alert, candidates: list[KpiPolicy], targets: AlertTargets, ledger: AlertLedger
) -> Target:
    """The alert's target; for a resolve whose target is gone, the one its ONSET named."""
    try:
        return await targets.resolve(alert.labels)
    except UnknownTarget:
        if alert.status == "resolved":
            for policy in candidates:
                onset = await ledger.onset(violation_id(alert, policy.name))
                if onset is not None:
                    return onset.target
        raise


ROUTES = [
    Route(
        "POST", WEBHOOK_PATH, receive_alerts, Role.OPERATOR,
        "Alertmanager webhook (payload version 4): alerts become violations.",
        "alerts", "receiveAlerts", body=Notification, basic_auth=True,
        replies={
            200: Reply("Every alert's event is queued (or was already).", NotificationReport),
            422: Reply("An alert names no known target; nothing queued.",
                       {"$ref": "#/components/schemas/ProblemDetails"},
                       media_type="application/problem+json"),
        },
    ),
]  # fmt: skip
