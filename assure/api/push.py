"""The push receivers of :mod:`collector.push`, mounted on the server as routes.

``POST /api/v1/push/remote_write`` takes Prometheus remote_write 1.0
(snappy protobuf), ``POST /api/v1/push/ves`` ONAP VES 7.x events. Both need
an operator token (bearer, or the password of basic auth, which
Prometheus's ``remote_write`` and VES agents can send) and are bounded by
``api.body_limit`` like every request; a refused push is a problem document
with the reason.

A VES fault is taken as an alert (:func:`fault_alert`) and queued through
the same path as Alertmanager's (policies with an alert trigger on its
``alarmCondition``): severity NORMAL abates what the others raised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from assure.api.alerts import LEDGER, Alert, queue_alerts
from assure.api.policies_in_force import IN_FORCE
from assure.api.problems import PROBLEM_JSON, Problem
from assure.api.routing import Handler, Reply, Route, RouteSet
from assure.api.state import DEPS
from assure.api.tokens import Role
from collector.push.errors import PushError
from collector.push.remote_write import RemoteWriteReceiver
from collector.push.ves import Fault, VesReceiver

_RAISED_KEPT = 100_000
REMOTE_WRITE_PATH = "/api/v1/push/remote_write"
VES_PATH = "/api/v1/push/ves"

_PROBLEM = Reply(
    "The push was refused; the detail says why.",
    {"$ref": "#/components/schemas/ProblemDetails"},
    media_type=PROBLEM_JSON,
)


def _answering(handle: Callable[[web.Request], Awaitable[web.Response]]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        try:
            return await handle(request)
        except PushError as exc:
            raise Problem(exc.status, exc.detail) from None

    return handler


def ves_handler(receiver: VesReceiver) -> Callable[[web.Request], Awaitable[web.Response]]:
    """VES events: measurements written by the receiver, faults queued as alerts are."""

    raised: dict[str, str] = {}
    """Fingerprint -> the severity its alarm was raised with (a NORMAL clears with it)."""

    async def handle(request: web.Request) -> web.Response:
        faults, accepted = await receiver.take(request)
        if faults:
            alerts = []
            for fault in faults:
                alert = fault_alert(fault, raised)
                alerts.append(alert)
                if alert.status == "firing":
                    raised[alert.fingerprint] = alert.labels["severity"]
                    while len(raised) > _RAISED_KEPT:
                        raised.pop(next(iter(raised)))
                else:
                    raised.pop(alert.fingerprint, None)
            in_force = await request.app[IN_FORCE].current()
            await queue_alerts(
                request.app[DEPS],
                alerts,
                source="ves",
                place="faults",
                batches=request.app[LEDGER],
                policies=in_force.policies,
            )
        return web.json_response({"accepted": accepted}, status=202)

    return handle


def push_routes(
    remote_write: RemoteWriteReceiver | None = None, ves: VesReceiver | None = None
) -> RouteSet:
    """The routes of the receivers given."""
    routes: list[Route] = []
    if remote_write is not None:
        routes.append(Route(
            "POST", REMOTE_WRITE_PATH, _answering(remote_write.handle), Role.OPERATOR,
            "Prometheus remote_write 1.0: snappy-compressed protobuf WriteRequest.",
            "push", "remoteWrite", body_media_types=("application/x-protobuf",),
            basic_auth=True,
            replies={204: Reply("The samples are taken."), 400: _PROBLEM, 413: _PROBLEM,
                     415: _PROBLEM},
        ))  # fmt: skip
    if ves is not None:
        routes.append(Route(
            "POST", VES_PATH, _answering(ves_handler(ves)), Role.OPERATOR,
            "ONAP VES 7.x events (one event or an eventList): measurements become "
            "samples, faults violations.",
            "push", "vesEvents", basic_auth=True,
            replies={202: Reply("The events are taken."), 400: _PROBLEM, 413: _PROBLEM},
        ))  # fmt: skip
    return routes


def fingerprint(fault: Fault) -> str:
    """One alarm: its source and condition."""
    return hashlib.sha256(f"{fault.source}|{fault.alarm}".encode()).hexdigest()[:16]


def fault_alert(fault: Fault, raised: dict[str, str] | None = None) -> Alert:
    """A VES fault as an alert: ``alertname`` its alarm condition, one episode per source.

    Labels: ``alertname`` (``alarmCondition``), ``severity`` (lower case; a
    NORMAL, which clears the alarm, carries the severity it was raised with
    when ``raised`` knows it, so that it matches the policies the raise
    did), ``source`` (``sourceName``), ``specific_problem``, and the VNFC's
    ``vnfc_id``/``vnf_instance_id``/``host`` when the source is one.
    """
    print_ = fingerprint(fault)
    severity = fault.severity.lower()
    if fault.cleared and raised is not None:
        severity = raised.get(print_, severity)
    labels = {
        "alertname": fault.alarm,
        "severity": severity,
        "source": fault.source,
        "specific_problem": fault.specific_problem,
    }
    if "vnfc" in fault.labels:
        labels["vnfc_id"] = fault.labels["vnfc"]
    if "vnf" in fault.labels:
        labels["vnf_instance_id"] = fault.labels["vnf"]
    if "host" in fault.labels:
        labels["host"] = fault.labels["host"]
    return Alert(
        status="resolved" if fault.cleared else "firing",
        labels=labels,
        annotations={"summary": f"VES fault {fault.alarm} on {fault.source}: "
                                f"{fault.specific_problem} ({fault.severity})"},
        startsAt=datetime.fromtimestamp(fault.started_at, UTC),
        fingerprint=print_,
    )  # fmt: skip
