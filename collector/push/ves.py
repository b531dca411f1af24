"""The ONAP VES 7.x event receiver: measurement events become samples, fault events faults.

``POST`` a JSON body holding one event (``{"event": {...}}``) or a batch
(``{"eventList": [...]}``), as the VES event listener 7.x specification
has them. Every event needs its ``commonEventHeader`` with the mandatory
fields of 7.x (``domain``, ``eventId``, ``eventName``, ``lastEpochMicrosec``,
``priority``, ``reportingEntityName``, ``sequence``, ``sourceName``,
``startEpochMicrosec``, ``version``, ``vesEventListenerVersion``); a batch
with any event missing one, or a field of the wrong type, is refused as a
whole (400, naming the place: ``eventList[2].commonEventHeader.eventId``),
so that nothing of it is half taken; so is a ``sourceName`` or ``sourceId``
longer than :data:`~collector.push.remote_write.MAX_LABEL_VALUE` characters.

- ``measurement`` events (``measurementFields``, which needs
  ``measurementInterval`` and ``measurementFieldsVersion``): each number
  becomes a sample at ``lastEpochMicrosec``: ``ves_cpu_<field>{cpu=...}``
  from ``cpuUsageArray``, ``ves_memory_<field>{vm=...}``,
  ``ves_nic_<field>{nic=...}``, ``ves_disk_<field>{disk=...}``, ``ves_load_<field>``,
  ``ves_<name>_<key>`` from ``additionalMeasurements``, ``ves_<key>`` from
  ``additionalFields`` (numeric values only) and ``ves_<field>`` for the
  numeric top-level fields (``meanRequestLatency``, ``requestRate``, ...);
  field names in snake case.
- ``fault`` events (``faultFields``, which needs ``alarmCondition``,
  ``eventSeverity``, ``eventSourceType``, ``faultFieldsVersion``,
  ``specificProblem`` and ``vfStatus``) become :class:`Fault` objects,
  returned by :meth:`VesReceiver.take` or handed to ``on_faults`` (the
  server turns them into violations).
- other domains (heartbeat, ...) are accepted and not taken.

The event's ``sourceId``, else its ``sourceName``, names what it is about
(:mod:`collector.instances`): a VNFC id, a VIM server's id or name (an
agent's hostname) gives the series that VNFC's labels; a VNF's instance
id or name gives them the VNF's (a VNF-level KPI); otherwise the series
carry ``source``.
Answer 202 once everything is handed on.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bus.clock import Clock
from bus.contracts import VES_SOURCE, Sample
from collector.chunks import SeriesBook
from collector.instances import InstanceLabels
from collector.push.errors import PushError
from collector.push.remote_write import MAX_LABEL_VALUE
from collector.push.stats import PushStats
from collector.writer import SampleWriter

HEADER_FIELDS: dict[str, type | tuple[type, ...]] = {
    "domain": str,
    "eventId": str,
    "eventName": str,
    "lastEpochMicrosec": (int, float),
    "priority": str,
    "reportingEntityName": str,
    "sequence": int,
    "sourceName": str,
    "startEpochMicrosec": (int, float),
    "version": str,
    "vesEventListenerVersion": str,
}
"""The mandatory fields of a 7.x ``commonEventHeader`` and their JSON types."""
MEASUREMENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "measurementInterval": (int, float),
    "measurementFieldsVersion": str,
}
FAULT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "alarmCondition": str,
    "eventSeverity": str,
    "eventSourceType": str,
    "faultFieldsVersion": str,
    "specificProblem": str,
    "vfStatus": str,
}
SEVERITIES = ("CRITICAL", "MAJOR", "MINOR", "WARNING", "NORMAL")
_ARRAYS = {
    "cpuUsageArray": ("cpu", "cpuIdentifier"),
    "memoryUsageArray": ("memory", "vmIdentifier"),
    "nicPerformanceArray": ("nic", "nicIdentifier"),
    "diskUsageArray": ("disk", "diskIdentifier"),
    "loadArray": ("load", None),
}
_LABEL_OF = {"cpu": "cpu", "memory": "vm", "nic": "nic", "disk": "disk"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class Fault:
    """One VES fault event, about the object its labels name."""

    event_id: str
    alarm: str
    """``alarmCondition``."""
    severity: str
    """``eventSeverity``: CRITICAL, MAJOR, MINOR, WARNING, or NORMAL (cleared)."""
    specific_problem: str
    source: str
    """``sourceName``."""
    labels: dict[str, str]
    """The labels of the VNFC it is about (or ``source``), as samples get them."""
    started_at: float
    """``startEpochMicrosec``, in seconds."""
    at: float
    """``lastEpochMicrosec``, in seconds."""

    @property
    def cleared(self) -> bool:
        return self.severity == "NORMAL"


OnFaults = Callable[[list[Fault]], Awaitable[None]]


def snake(name: str) -> str:
    """``percentUsage`` -> ``percent_usage``; anything but letters, digits and _ -> _."""
    return _NOT_NAME.sub("_", _CAMEL.sub("_", name)).lower()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _check(section: Any, fields: Mapping[str, type | tuple[type, ...]], place: str) -> None:
    if not isinstance(section, dict):
        raise PushError(400, f"{place}: an object is required")
    for name, kind in fields.items():
        if name not in section:
            raise PushError(400, f"{place}.{name}: a mandatory field is missing")
        value = section[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise PushError(400, f"{place}.{name}: {value!r} has the wrong type")


class VesReceiver:
    """Takes VES 7.x events: measurements into the samples stream, faults to ``on_faults``."""

    def __init__(
        self,
        writer: SampleWriter,
        instances: InstanceLabels,
        clock: Clock,
        *,
        on_faults: OnFaults | None = None,
        stats: PushStats | None = None,
    ) -> None:
        self._writer = writer
        self._instances = instances
        self._clock = clock
        self._on_faults = on_faults
        self._book = SeriesBook(writer)
        self.stats = stats or PushStats()

    async def handle(self, request: web.Request) -> web.Response:
        """Take the events; faults go to ``on_faults``; 202."""
        faults, accepted = await self.take(request)
        if faults and self._on_faults is not None:
            await self._on_faults(faults)
        return web.json_response({"accepted": accepted}, status=202)

    async def take(self, request: web.Request) -> tuple[list[Fault], int]:
        """Write the measurements; return the faults and how many events were taken."""
        started = time.perf_counter()
        try:
            events = self._events(await request.read())
        except PushError:
            self.stats.failed(VES_SOURCE)
            raise
        await self._instances.refresh()
        samples: list[Sample] = []
        faults: list[Fault] = []
        for event in events:
            header = event["commonEventHeader"]
            labels = self._labels_of(header)
            if header["domain"] == "measurement":
                samples.extend(self._measurements(event["measurementFields"], header, labels))
            elif header["domain"] == "fault":
                faults.append(_fault(event["faultFields"], header, labels))
        if samples:
            chunk = self._book.chunk(samples, lambda _kpi: "gauge")
            await self._writer.write(VES_SOURCE, self._clock.now(), [chunk])
        self.stats.took(VES_SOURCE, len(samples), time.perf_counter() - started)
        return faults, len(events)

    def _events(self, raw: bytes) -> list[dict[str, Any]]:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PushError(400, f"the body is not JSON: {exc}") from None
        events: list[dict[str, Any]]
        if isinstance(body, dict) and isinstance(body.get("eventList"), list):
            events, place = list(body["eventList"]), "eventList[{}]"
        elif isinstance(body, dict) and "event" in body:
            events, place = [body["event"]], "event"
        else:
            raise PushError(400, "the body holds neither 'event' nor 'eventList'")
        for n, event in enumerate(events):
            where = place.format(n)
            if not isinstance(event, dict):
                raise PushError(400, f"{where}: an object is required")
            _check(event.get("commonEventHeader"), HEADER_FIELDS, f"{where}.commonEventHeader")
            for name in ("sourceName", "sourceId"):
                value = event["commonEventHeader"].get(name)
                if isinstance(value, str) and len(value) > MAX_LABEL_VALUE:
                    raise PushError(
                        400, f"{where}.commonEventHeader.{name}: {len(value)} characters, "
                        f"over the limit of {MAX_LABEL_VALUE}"
                    )  # fmt: skip
            domain = event["commonEventHeader"]["domain"]
            if domain == "measurement":
                _check(event.get("measurementFields"), MEASUREMENT_FIELDS,
                       f"{where}.measurementFields")  # fmt: skip
            elif domain == "fault":
                _check(event.get("faultFields"), FAULT_FIELDS, f"{where}.faultFields")
                severity = event["faultFields"]["eventSeverity"]
                if severity not in SEVERITIES:
                    raise PushError(
                        400, f"{where}.faultFields.eventSeverity: {severity!r} is not one of "
                        f"{', '.join(SEVERITIES)}"
                    )  # fmt: skip
        return events

    def _labels_of(self, header: Mapping[str, Any]) -> dict[str, str]:
        name = str(header["sourceName"])
        source_id = str(header.get("sourceId") or name)
        found = self._instances.instance_of(
            {"vnfc": source_id, "server": source_id, "vnf": source_id}
        ) or self._instances.instance_of({"vnfc": name, "server": name, "vnf": name})
        return dict(found) if found is not None else {"source": name}

    def _measurements(
        self, fields: Mapping[str, Any], header: Mapping[str, Any], labels: dict[str, str]
    ) -> list[Sample]:
        ts = float(header["lastEpochMicrosec"]) / 1e6
        out: list[Sample] = []
        for array_name, (prefix, id_field) in _ARRAYS.items():
            for item in fields.get(array_name) or ():
                if not isinstance(item, dict):
                    continue
                item_labels = dict(labels)
                if id_field is not None and id_field in item:
                    item_labels[_LABEL_OF[prefix]] = str(item[id_field])
                for key, value in item.items():
                    number = _number(value) if key != id_field else None
                    if number is not None:
                        out.append(Sample(f"ves_{prefix}_{snake(key)}", item_labels, ts, number))
        for group in fields.get("additionalMeasurements") or ():
            if isinstance(group, dict) and isinstance(group.get("hashMap"), dict):
                base = snake(str(group.get("name", "")))
                for key, value in group["hashMap"].items():
                    number = _number(value)
                    if number is not None:
                        out.append(Sample(f"ves_{base}_{snake(key)}", labels, ts, number))
        extra = fields.get("additionalFields")
        if isinstance(extra, dict):
            for key, value in extra.items():
                number = _number(value)
                if number is not None:
                    out.append(Sample(f"ves_{snake(key)}", labels, ts, number))
        for key, value in fields.items():
            if key in MEASUREMENT_FIELDS or isinstance(value, list | dict):
                continue
            number = _number(value) if not isinstance(value, str) else None
            if number is not None:
                out.append(Sample(f"ves_{snake(key)}", labels, ts, number))
        return out


def _fault(fields: Mapping[str, Any], header: Mapping[str, Any], labels: dict[str, str]) -> Fault:
    return Fault(
        event_id=str(header["eventId"]),
        alarm=str(fields["alarmCondition"]),
        severity=str(fields["eventSeverity"]),
        specific_problem=str(fields["specificProblem"]),
        source=str(header["sourceName"]),
        labels=labels,
        started_at=float(header["startEpochMicrosec"]) / 1e6,
        at=float(header["lastEpochMicrosec"]) / 1e6,
    )
