"""Notifications: a ``notify`` decision POSTed to its webhook, retried until it is delivered.

The decision's parameters name the receiver (``url``, ``format``) and say
what happened (the policy, its labels, the episode, its chain and result).
Three payloads:

- ``json``: ``{"decision": ..., "event": ...}``, the decision as the bus
  carries it and the event it reports;
- ``slack``: a Slack incoming-webhook message (``text`` plus an attachment
  whose fields carry the target, the evidence and the chain);
- ``alertmanager``: the payload Alertmanager POSTs to its webhook
  receivers (``version`` 4, one alert whose labels are the policy's labels
  with ``alertname``, ``policy`` and ``target``), so any receiver written
  for Alertmanager takes it. ``resolved`` notifications resolve it.

A 2xx answer is delivered. Connection errors, timeouts, 408, 429 and 5xx
are retried with an exponential back-off (clock time), up to ``attempts``
tries; any other answer is a permanent failure and is not retried.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from bus.clock import Clock
from bus.contracts import Decision, to_builtins

log = logging.getLogger(__name__)

_RETRIED = frozenset({408, 429})
_ZERO_TIME = "0001-01-01T00:00:00Z"
_COLOURS = {"firing": "#d9534f", "escalation": "#d9534f", "resolved": "#5cb85c"}


@dataclass(frozen=True)
class Delivery:
    """How sending one notification went."""

    attempts: int
    status: int | None
    error: str | None = None

    def detail(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "http_status": self.status}


class Notifier:
    """Sends notify decisions to their webhooks (one HTTP session, made on first use).

    ``timeout_s`` bounds each attempt (wall seconds); ``backoff_s`` is the
    first wait between attempts (clock seconds), doubled each time.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        timeout_s: float = 5.0,
        attempts: int = 4,
        backoff_s: float = 1.0,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self._clock = clock
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._session: aiohttp.ClientSession | None = None

    async def send(self, decision: Decision) -> Delivery:
        """POST the decision's notification; never raises for the receiver's failures."""
        params = decision.parameters
        url = params.get("url")
        if not isinstance(url, str) or not url:
            return Delivery(0, None, "a notify decision without a receiver url")
        body = payload(decision)
        status: int | None = None
        error = "not sent"
        for attempt in range(1, self.attempts + 1):
            try:
                status = await self._post(url, body)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                status = None
            else:
                if 200 <= status < 300:
                    return Delivery(attempt, status)
                error = f"the receiver answered HTTP {status}"
                if status < 500 and status not in _RETRIED:
                    return Delivery(attempt, status, f"{error} (not retried)")
            if attempt < self.attempts:
                log.warning(
                    "notification %s to %s: %s; retrying [request %s]",
                    decision.id,
                    url,
                    error,
                    decision.request_id,
                )
                await self._clock.sleep(self.backoff_s * 2 ** (attempt - 1))
        return Delivery(self.attempts, status, f"{error} after {self.attempts} attempts")

    async def _post(self, url: str, body: dict[str, Any]) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with self._session.post(url, json=body, timeout=timeout) as response:
            await response.read()
            return response.status

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def payload(decision: Decision) -> dict[str, Any]:
    """The JSON body of a notify decision, in the format its receiver asks for."""
    fmt = decision.parameters.get("format", "json")
    if fmt == "slack":
        return slack_payload(decision)
    if fmt == "alertmanager":
        return alertmanager_payload(decision)
    return {"decision": to_builtins(decision), "event": _event(decision)}


def _event(decision: Decision) -> dict[str, Any]:
    params = decision.parameters
    keep = ("status", "policy", "description", "message", "evidence", "result", "detail")
    event = {k: params.get(k) for k in keep}
    event.update(
        target=params.get("target", decision.target.key()),
        labels=dict(params.get("labels") or decision.labels),
        episode=params.get("episode", decision.episode),
        chain=list(params.get("chain") or []),
        started_at=params.get("started_at"),
        ended_at=params.get("ended_at"),
    )
    return event


def _title(event: dict[str, Any]) -> str:
    status = str(event.get("status") or "firing")
    policy = event.get("policy") or "policy"
    target = event.get("target")
    if status == "escalation":
        return f"[{event.get('result')}] {policy} on {target}: the closed loop gave up"
    return f"[{status.upper()}] {policy} on {target}"


def slack_payload(decision: Decision) -> dict[str, Any]:
    """A Slack incoming-webhook message."""
    event = _event(decision)
    lines = [
        text for text in (event.get("message"), event.get("evidence"), event.get("detail")) if text
    ]
    chain = ", ".join(
        f"{c.get('action')} ({c.get('outcome') or c.get('verdict')})" for c in event["chain"]
    )
    fields = [
        {"title": "target", "value": str(event["target"]), "short": True},
        {
            "title": "result",
            "value": str(event.get("result") or event.get("status")),
            "short": True,
        },
    ]
    if chain:
        fields.append({"title": "chain", "value": chain, "short": False})
    fields.extend(
        {"title": k, "value": v, "short": True} for k, v in sorted(event["labels"].items())
    )
    return {
        "text": _title(event),
        "attachments": [
            {
                "color": _COLOURS.get(str(event.get("status")), "#f0ad4e"),
                "title": str(event.get("description") or event.get("policy")),
                "text": "\n".join(str(line) for line in lines),
                "fields": fields,
                "footer": f"nfv-assure episode {event['episode']}",
            }
        ],
    }


def alertmanager_payload(decision: Decision) -> dict[str, Any]:
    """The body Alertmanager POSTs to a webhook receiver (version 4), with one alert."""
    event = _event(decision)
    resolved = event.get("status") == "resolved"
    status = "resolved" if resolved else "firing"
    labels = {
        **{str(k): str(v) for k, v in event["labels"].items()},
        "alertname": str(event.get("policy")),
        "policy": str(event.get("policy")),
        "target": str(event["target"]),
    }
    annotations = {
        "summary": _title(event),
        "description": str(event.get("evidence") or ""),
    }
    for key in ("message", "result", "detail"):
        if event.get(key):
            annotations[key] = str(event[key])
    fingerprint = hashlib.sha256(
        json.dumps(sorted(labels.items())).encode() + str(event["episode"]).encode()
    ).hexdigest()[:16]
    alert = {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": _rfc3339(event.get("started_at")),
        "endsAt": _rfc3339(event.get("ended_at")) if resolved else _ZERO_TIME,
        "generatorURL": "",
        "fingerprint": fingerprint,
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{labels["alertname"]}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "nfv-assure",
        "groupLabels": {"alertname": labels["alertname"]},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [alert],
    }


def _rfc3339(ts: object) -> str:
    if not isinstance(ts, int | float):
        return _ZERO_TIME
    moment = dt.datetime.fromtimestamp(float(ts), tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["Delivery", "Notifier", "alertmanager_payload", "payload", "slack_payload"]
