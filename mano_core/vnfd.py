"""VNF descriptors (VNFD): the YAML schema and the accessors the VNFM uses.

A VNFD says what a VNF is made of (VDUs: flavour, software image, instance
bounds, start order, connection points, configuration hooks), how it starts
(instantiation levels), scales (scaling aspects, per-VDU deltas, the
scale-in victim rule) and heals (the recovery ladder of each VDU), which
KPIs it must keep (monitoring parameters with objectives) and the load it
is accepted under (the load profile). ``docs/vnfd.md`` documents every field.

The models check each field where it stands; the rules across fields
(references that must resolve, bounds that must hold) are in
:mod:`mano_core.vnfd_checks`, run by :func:`parse_vnfd` and at onboarding.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from bus.conditions import Aggregate, Comparison, breaches
from bus.fields import Duration
from mano_core.descriptor import ID_PATTERN, DescriptorError, Strict, read_text

Id = Annotated[str, Field(pattern=ID_PATTERN)]


class RecoveryLevel(enum.StrEnum):
    """The steps a recovery ladder may hold, mildest first."""

    SOFT_REBOOT = "soft_reboot"
    """Ask the guest to restart (ACPI); useless on a server in ERROR."""
    HARD_REBOOT = "hard_reboot"
    """Power-cycle the server in place."""
    REBUILD = "rebuild"
    """Re-image the server in place (same id, same host, fresh disk)."""
    RECREATE = "recreate"
    """Delete the server and create a new one, anywhere the VIM places it."""


Level = Annotated[RecoveryLevel, Field(strict=False)]
"""A recovery level written as its value (``soft_reboot``)."""


class Flavour(Strict):
    """The compute resources of each VNFC of a VDU."""

    vcpus: StrictInt = Field(gt=0)
    ram_mb: StrictInt = Field(gt=0)
    disk_gb: StrictInt = Field(default=0, ge=0)
    name: StrictStr | None = None
    """A VIM flavour name; when unset one is derived from the sizes."""


class SoftwareImage(Strict):
    """The software image a VDU's servers boot."""

    name: StrictStr = Field(min_length=1)
    version: StrictStr = Field(min_length=1)
    """The servers boot the VIM's image of this name and version."""


class ExporterTls(Strict):
    """How the collector checks an ``https`` exporter and, optionally, proves itself to it.

    Paths are on the collector's hosts, as in a Prometheus scrape config.
    """

    ca_file: StrictStr | None = Field(default=None, min_length=1)
    """The CA bundle that signs the exporter's certificate; None: the system's."""
    cert_file: StrictStr | None = Field(default=None, min_length=1)
    """The collector's client certificate (mutual TLS), with ``key_file``."""
    key_file: StrictStr | None = Field(default=None, min_length=1)
    insecure_skip_verify: StrictBool = False
    """Take any certificate the exporter shows (never in production)."""

    @model_validator(mode="after")
    def _cert_with_key(self) -> ExporterTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class BasicAuth(Strict):
    """HTTP basic auth; the password is read from a file on the collector's hosts."""

    username: StrictStr = Field(min_length=1)
    password_file: StrictStr = Field(min_length=1)


class Exporter(Strict):
    """Where each VNFC of the VDU serves its Prometheus exposition, and how to get in."""

    port: StrictInt = Field(gt=0, lt=65536)
    path: StrictStr = Field(default="/metrics", pattern=r"^/")
    scheme: Literal["http", "https"] = "http"
    tls: ExporterTls | None = None
    """Only with ``scheme: https``."""
    bearer_token_file: StrictStr | None = Field(default=None, min_length=1)
    """A file holding the token sent as ``Authorization: Bearer``, read every scrape cycle."""
    basic_auth: BasicAuth | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> Exporter:
        if self.bearer_token_file is not None and self.basic_auth is not None:
            raise ValueError("bearer_token_file and basic_auth exclude each other")
        if self.tls is not None and self.scheme != "https":
            raise ValueError("tls needs scheme https")
        return self


class ConnectionPoint(Strict):
    """A port of each VNFC of a VDU."""

    id: Id
    virtual_link: Id | None = None
    """The VNFD's internal virtual link the port is on; None: only an
    external connection point exposes it (an NS virtual link attaches it)."""


ParameterValue = StrictStr | StrictBool | StrictInt | StrictFloat


class HttpHook(Strict):
    """An HTTP call to a VNFC's own address, e.g. ``POST http://ADDRESS:8080/config``."""

    port: StrictInt = Field(gt=0, lt=65536)
    path: StrictStr = Field(default="/", pattern=r"^/")
    scheme: Literal["http", "https"] = "http"
    method: Literal["POST", "PUT"] = "POST"
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    """Sent as the JSON body."""
    timeout: Duration = 10.0
    """How long the call may take before the hook counts as failed."""


HookName = Literal["day1", "day2", "drain"]


class Hooks(Strict):
    """Configuration hooks of a VDU, each run on one VNFC."""

    day1: HttpHook | None = None
    """Run on each new VNFC once its server is ACTIVE (instantiate, scale out, recreate)."""
    day2: HttpHook | None = None
    """Run on each VNFC by the configure operation."""
    drain: HttpHook | None = None
    """Run on a VNFC before it is removed (scale in, terminate), to move its traffic away."""


class Vdu(Strict):
    """A virtualisation deployment unit: one kind of VNFC (one server each)."""

    id: Id
    name: StrictStr = ""
    description: StrictStr = ""
    flavour: Flavour
    image: SoftwareImage
    min_instances: StrictInt = Field(ge=0)
    max_instances: StrictInt = Field(gt=0)
    start_order: StrictInt = Field(default=0, ge=0)
    """VDUs start in increasing order; VDUs of one order start together."""
    exporter: Exporter | None = None
    connection_points: list[ConnectionPoint] = Field(default_factory=list)
    hooks: Hooks = Field(default_factory=Hooks)


class VirtualLink(Strict):
    """A network internal to the VNF, joining connection points of its VDUs."""

    id: Id
    description: StrictStr = ""
    protocol: Literal["ipv4", "ipv6"] = "ipv4"
    cidr: StrictStr | None = None
    """The subnet, e.g. ``10.0.0.0/24``; None: the VNFM picks one (see docs/vnfd.md)."""


class ExternalConnectionPoint(Strict):
    """A connection point of the VNF that an NS virtual link can attach to."""

    id: Id
    connection_point: Id
    """The VDU connection point it exposes."""


class InstantiationLevel(Strict):
    """How many VNFCs of each VDU, and which scale levels, an instantiation starts with."""

    id: Id
    description: StrictStr = ""
    vdu_instances: dict[str, StrictInt] = Field(default_factory=dict)
    """VNFCs per VDU; a VDU not named starts with its ``min_instances``."""
    scale_levels: dict[str, StrictInt] = Field(default_factory=dict)
    """Scale level per aspect; an aspect not named starts at 0."""


VictimRule = Literal["newest_first", "least_loaded"]


class ScalingAspect(Strict):
    """A named unit of scaling: each step adds (out) or removes (in) ``deltas`` VNFCs."""

    id: Id
    name: StrictStr = ""
    description: StrictStr = ""
    max_scale_level: StrictInt = Field(gt=0)
    deltas: dict[str, StrictInt] = Field(min_length=1)
    """VNFCs of each VDU one step adds or removes."""
    scale_in_victims: VictimRule = "newest_first"
    """Which VNFCs a scale in removes: the newest, or the least loaded (lowest
    server CPU, the newest first among equals)."""

    def delta(self, vdu_id: str) -> int:
        """VNFCs of ``vdu_id`` one step adds or removes (0: the VDU is not scaled)."""
        return self.deltas.get(vdu_id, 0)

    def change(self, from_level: int, to_level: int) -> dict[str, int]:
        """VNFCs of each VDU to add (positive) or remove (negative) between two levels."""
        steps = to_level - from_level
        return {vdu: steps * delta for vdu, delta in self.deltas.items()}


class HealStep(Strict):
    """One step of a recovery ladder."""

    level: Level
    timeout: Duration = 300.0
    """Default 5m. How long the step may take to bring the VNFC back before it counts as failed."""


DEFAULT_LADDER: tuple[HealStep, ...] = tuple(
    HealStep.model_validate({"level": level, "timeout": timeout})
    for level, timeout in (
        ("soft_reboot", "2m"),
        ("hard_reboot", "3m"),
        ("rebuild", "5m"),
        ("recreate", "5m"),
    )
)
"""The ladder of a VDU that ``healing`` does not name."""


class Objective(Strict):
    """What a KPI must satisfy: ``value OP threshold`` (e.g. ``<= 0.05``)."""

    op: Comparison
    threshold: StrictFloat

    def met(self, value: float) -> bool:
        return not breaches(_negation(self.op), value, self.threshold)

    def describe(self) -> str:
        return f"{self.op} {self.threshold:g}"


class MonitoringParameter(Strict):
    """A KPI of the VNF: where it comes from, its unit, and its objective."""

    name: StrictStr = Field(min_length=1)
    """The KPI name, as its samples carry it (e.g. ``vnf_cpu_utilisation``)."""
    source: Literal["exporter", "vim", "promql", "push"]
    """``exporter``: the VNFCs' Prometheus endpoints; ``vim``: VIM telemetry of their
    servers; ``promql``: ``query`` against an existing Prometheus (``collector.promql_url``);
    ``push``: remote_write or VES pushes to the server."""
    query: StrictStr | None = None
    """The PromQL expression of a ``promql`` KPI (and only of one): evaluated each scrape
    interval; each result series becomes a sample of ``name``, about the VNFC its labels
    name (``vnfc_id``, ``server_id`` or ``instance``)."""
    vdu: Id | None = None
    """Only VNFCs of this VDU; None: every VDU (with an exporter, for ``exporter``)."""
    unit: StrictStr = Field(min_length=1)
    aggregate: Aggregate = "avg"
    """How the VNFCs' values combine into the VNF's value."""
    objective: Objective | None = None

    @model_validator(mode="after")
    def _query_for_promql(self) -> MonitoringParameter:
        if (self.source == "promql") != (self.query is not None):
            raise ValueError("a promql monitoring parameter needs a query, and only it has one")
        return self


class LoadPhase(Strict):
    """Traffic offered to the VNF for a while."""

    requests_per_second: StrictFloat = Field(ge=0)
    duration: Duration = Field(alias="for")


class LoadProfile(Strict):
    """The traffic onboarding acceptance drives through the VNF."""

    warmup: Duration = 0.0
    """Time at the first phase's traffic before KPIs are judged."""
    phases: list[LoadPhase] = Field(min_length=1)


class Vnfd(Strict):
    """A VNF descriptor (``apiVersion: assure/v1``, ``kind: Vnfd``)."""

    api_version: Literal["assure/v1"] = Field(alias="apiVersion")
    kind: Literal["Vnfd"]
    id: Id
    name: StrictStr = ""
    description: StrictStr = ""
    provider: StrictStr = ""
    version: StrictStr = Field(default="1.0", min_length=1)
    """The descriptor's version; the catalogue keeps every onboarded version."""
    vdus: list[Vdu] = Field(min_length=1)
    virtual_links: list[VirtualLink] = Field(default_factory=list)
    external_connection_points: list[ExternalConnectionPoint] = Field(default_factory=list)
    instantiation_levels: list[InstantiationLevel] = Field(default_factory=list)
    default_instantiation_level: Id | None = None
    """The level an instantiation starts at unless it names one; default: the first."""
    scaling_aspects: list[ScalingAspect] = Field(default_factory=list)
    healing: dict[str, list[HealStep]] = Field(default_factory=dict)
    """The recovery ladder of each VDU, in the order its steps are tried."""
    monitoring_parameters: list[MonitoringParameter] = Field(default_factory=list)
    load_profile: LoadProfile | None = None

    # -- lookups ------------------------------------------------------------
    def vdu(self, vdu_id: str) -> Vdu:
        for vdu in self.vdus:
            if vdu.id == vdu_id:
                return vdu
        raise KeyError(vdu_id)

    def aspect(self, aspect_id: str) -> ScalingAspect:
        for aspect in self.scaling_aspects:
            if aspect.id == aspect_id:
                return aspect
        raise KeyError(aspect_id)

    def vdus_in_start_order(self) -> list[list[Vdu]]:
        """The VDUs grouped by ``start_order``, lowest first (a group starts together)."""
        orders = sorted({vdu.start_order for vdu in self.vdus})
        return [[v for v in self.vdus if v.start_order == order] for order in orders]

    # -- instantiation ------------------------------------------------------
    def instantiation_level(self, level_id: str | None = None) -> InstantiationLevel:
        """The named level, else the default; without levels, each VDU at its minimum."""
        if level_id is None:
            if not self.instantiation_levels:
                return InstantiationLevel(id="default")
            level_id = self.default_instantiation_level or self.instantiation_levels[0].id
        for level in self.instantiation_levels:
            if level.id == level_id:
                return level
        raise KeyError(level_id)

    def initial_instances(self, level_id: str | None = None) -> dict[str, int]:
        """VNFCs of each VDU an instantiation at ``level_id`` creates, in start order."""
        level = self.instantiation_level(level_id)
        return {
            vdu.id: level.vdu_instances.get(vdu.id, vdu.min_instances)
            for group in self.vdus_in_start_order()
            for vdu in group
        }

    def initial_scale_levels(self, level_id: str | None = None) -> dict[str, int]:
        """The scale level of each aspect after an instantiation at ``level_id``."""
        level = self.instantiation_level(level_id)
        return {a.id: level.scale_levels.get(a.id, 0) for a in self.scaling_aspects}

    # -- healing ------------------------------------------------------------
    def ladder(self, vdu_id: str) -> tuple[HealStep, ...]:
        """The recovery ladder of ``vdu_id``, in the order its steps are tried."""
        self.vdu(vdu_id)  # KeyError for an unknown VDU
        steps = self.healing.get(vdu_id)
        return DEFAULT_LADDER if steps is None else tuple(steps)

    def heal_step(self, vdu_id: str, level: RecoveryLevel | str) -> HealStep | None:
        """The step ``level`` of the ladder of ``vdu_id``; None when it has none."""
        return next((s for s in self.ladder(vdu_id) if s.level == level), None)

    def levels_after(self, vdu_id: str, level: RecoveryLevel | str) -> list[RecoveryLevel]:
        """The ladder's levels after ``level`` (none when ``level`` is not in it)."""
        levels = [s.level for s in self.ladder(vdu_id)]
        return levels[levels.index(RecoveryLevel(level)) + 1 :] if level in levels else []

    # -- hooks and KPIs -----------------------------------------------------
    def hook(self, vdu_id: str, name: HookName) -> HttpHook | None:
        """The VDU's ``day1``, ``day2`` or ``drain`` hook, if it has one."""
        hook: HttpHook | None = getattr(self.vdu(vdu_id).hooks, name)
        return hook

    def kpis_with_objectives(self) -> list[MonitoringParameter]:
        return [p for p in self.monitoring_parameters if p.objective is not None]


def _negation(op: Comparison) -> Comparison:
    """The comparison that breaks an objective: ``<= t`` is broken by ``> t``."""
    negated: dict[Comparison, Comparison] = {
        "<=": ">", "<": ">=", ">=": "<", ">": "<=", "==": "!=", "!=": "==",
    }  # fmt: skip
    return negated[op]


def parse_vnfd(text: str, source: str = "<string>") -> Vnfd:
    """Parse and check a VNFD from YAML text; raises :class:`DescriptorError` with every problem."""
    from mano_core.vnfd_checks import parse_located_vnfd  # noqa: PLC0415 - checks import models

    return parse_located_vnfd(text, source).model


def load_vnfd(path: str | Path) -> Vnfd:
    """Read a VNFD file; raises :class:`DescriptorError` naming the file."""
    return parse_vnfd(read_text(path), str(path))


__all__ = ["DescriptorError", "RecoveryLevel", "Vnfd", "load_vnfd", "parse_vnfd"]
