"""The message contracts that flow between stages, and their versioned encoding.

Each message type carries a tag (``<kind>.v<version>``) in its encoded form,
so a consumer can tell what it holds and refuse what it does not know.
Messages are packed with msgpack; :func:`encode` and :func:`decode` are the
only way on or off the wire.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

import msgspec


class ContractError(ValueError):
    """An encoded message could not be decoded into a known contract."""


# --------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------
class Sample(msgspec.Struct, array_like=True, frozen=True):
    """One timestamped value of one series.

    A series is a KPI name plus labels; the labels resolve it to an object:
    ``vnf`` and ``vnfc`` (instance ids), ``vnfd``, ``host``, ``server``.
    """

    kpi: str
    labels: dict[str, str]
    ts: float
    value: float


SCRAPE_SOURCE = "scrape"
"""``SampleBatch.source`` of the collector's Prometheus scrapes."""
VIM_SOURCE = "vim"
"""``SampleBatch.source`` of the collector's VIM telemetry reads."""


PROMQL_SOURCE = "promql"
"""``source`` of samples queried from an existing Prometheus."""
REMOTE_WRITE_SOURCE = "remote_write"
"""``source`` of samples pushed by Prometheus remote_write."""
VES_SOURCE = "ves"
"""``source`` of samples pushed as ONAP VES measurement events."""


class SampleBatch(msgspec.Struct, tag="samples.v1", frozen=True):
    """Many samples written in one stream entry, each with its labels (the previous form).

    Still read (see :mod:`bus.series`) so that collectors of the previous
    release can feed consumers of this one during a rolling upgrade; new
    collectors write :class:`PackedBatch`.
    """

    source: str
    """Which collector source produced the batch (e.g. ``vim``, ``scrape``)."""
    collected_at: float
    samples: list[Sample]


SeriesKind = Literal[
    "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"
]
"""The metric type of the family a series belongs to (``unknown``: untyped)."""

_COUNTER_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}


class SeriesDef(msgspec.Struct, array_like=True, frozen=True):
    """What a series id stands for: a KPI name, its full labels, and its family's type.

    The id is :func:`bus.series.series_id` of ``kpi`` and ``labels`` (a 64-bit
    hash), so every writer gives one series the same id, in either form.
    """

    id: int
    kpi: str
    labels: dict[str, str]
    kind: SeriesKind = "unknown"

    @property
    def is_counter(self) -> bool:
        """Whether the values only go up (until a reset): a counter, or a
        histogram's ``_bucket``/``_count``/``_sum``, or a summary's ``_count``/``_sum``
        (never a ``_created`` series: that is a timestamp). Rates are computed
        from these, never thresholds on the raw value."""
        if self.kind == "counter":
            return not self.kpi.endswith("_created")
        return self.kpi.endswith(_COUNTER_SUFFIXES.get(self.kind, ()))


class PackedBatch(msgspec.Struct, tag="samples.v2", frozen=True):
    """Many samples in one stream entry, as series ids and packed arrays.

    A series' labels travel in ``series`` the first time its writer sends it
    (and again when its definition changes); later batches carry its id
    only. Every definition is also in the series registry in Redis
    (:class:`bus.series.SeriesRegistry`), written before the first batch
    that uses it, so a consumer that joined late, restarted, or reads only
    some entries of the stream (a consumer group shared by several
    workers) resolves any id. Read batches with
    :class:`bus.sample_view.SeriesResolver`, never field by field.

    Arrays are little-endian: ``ids`` uint64, ``values`` float64, one per
    sample, in the same order. Timestamps run-length encoded: the first
    ``ts_counts[0]`` samples are at ``ts_values[0]``, the next
    ``ts_counts[1]`` at ``ts_values[1]``, and so on (uint32 and float64);
    the counts add up to the number of samples.
    """

    source: str
    """Which collector source produced the batch (e.g. ``vim``, ``scrape``)."""
    collected_at: float
    series: list[SeriesDef]
    """Definitions sent with this batch (new or changed series)."""
    ids: bytes
    values: bytes
    ts_counts: bytes
    ts_values: bytes
    complete: bool = True
    """False for an entry of a collection cycle that more entries (with the same
    ``collected_at``) follow: a scrape cycle writes its targets as they finish, and
    only its last entry says the cycle is all written (what absence is judged on)."""
    collector: str = ""
    """The collector that wrote the batch (its shard member name): sharded collectors
    each write their own cycles, and absence waits for every live one's. Empty from
    earlier releases and from writers that are not a collector (older readers
    ignore the field)."""


# --------------------------------------------------------------------------
# Targets, violations
# --------------------------------------------------------------------------
class TargetKind(enum.StrEnum):
    VNF = "vnf"
    VNFC = "vnfc"
    HOST = "host"
    NS = "ns"
    """A network service instance (conditions aggregated across its VNFs)."""


class Target(msgspec.Struct, frozen=True):
    """What a violation or decision is about."""

    kind: TargetKind
    id: str
    """The VNF instance id, VNFC instance id or host name."""
    vnf: str | None = None
    """The VNF instance the target belongs to (for VNF and VNFC targets)."""
    vnfd: str | None = None
    """The VNFD id of that VNF instance."""
    host: str | None = None
    """The host the target runs on, where known."""

    def key(self) -> str:
        """A stable text form, e.g. ``vnfc:abc``, used in ids and keys."""
        return f"{self.kind.value}:{self.id}"


class ViolationStatus(enum.StrEnum):
    ONSET = "ONSET"
    ABATED = "ABATED"


class Evidence(msgspec.Struct, frozen=True):
    """Why the analytics stage says a condition holds (or no longer holds)."""

    value: float | None
    """The aggregated value that was compared (None for missing data)."""
    values: dict[str, float]
    """The per-object values behind the aggregate (e.g. per VNFC)."""
    window_s: float
    """How long the condition held (ONSET) or the evaluation window."""
    threshold: float | None
    clear: float | None = None
    """The clear (hysteresis) threshold, when the condition has one."""
    description: str = ""
    """One human sentence, e.g. ``avg(cpu) 82.1 > 75 for 30s``."""
    range_s: float | None = None
    """The window the KPI's function read (e.g. 60 for ``rate(x[1m])``), if any."""
    observed_at: float | None = None
    """The sample time of the value: the newest sample behind it."""
    score: float | None = None
    """A detector's own measure, when it has one: the anomaly model's score
    (0..1), the distance from the baseline in standard deviations, the
    forecast value."""
    detector: str = ""
    """What judged the value: ``threshold``, ``forecast/holt``, ``baseline/ewma``,
    ``anomaly/isolation_forest``, ``absent``, ... (empty from older versions)."""


class Violation(msgspec.Struct, tag="violation.v1", frozen=True):
    """A condition of a policy holding on a target: ONSET once, ABATED once."""

    id: str
    """Stable for one episode: ONSET and its ABATED share the id."""
    status: ViolationStatus
    policy: str
    condition: str
    target: Target
    evidence: Evidence
    started_at: float
    """When the condition started to hold (before its ``for`` duration)."""
    at: float
    """When this event (ONSET or ABATED) was raised."""
    request_id: str
    """Correlates everything that follows from this event in logs."""
    source: Literal["analytics", "alertmanager", "ves"] = "analytics"
    labels: dict[str, str] = {}
    caused_by: str | None = None
    """The id of the violation that explains this one, when there is one: a
    host-level violation firing on the host of this VNFC when it started.
    Such a violation is reported, not acted on: the explaining one is."""


# --------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------
class Action(enum.StrEnum):
    SCALE_OUT = "scale_out"
    SCALE_IN = "scale_in"
    HEAL = "heal"
    MIGRATE = "migrate"
    CHANGE_FLAVOUR = "change_flavour"
    OPERATE = "operate"
    SCALE_NS_OUT = "scale_ns_out"
    """Out by steps of an NS scaling aspect (on an NS target)."""
    SCALE_NS_IN = "scale_ns_in"
    NOTIFY = "notify"


class GuardResult(msgspec.Struct, frozen=True):
    """The verdict of one guard on one decision."""

    guard: str
    """e.g. ``cooldown``, ``max_instances``, ``min_instances``."""
    passed: bool
    detail: str = ""


class Decision(msgspec.Struct, tag="decision.v1", frozen=True):
    """What the policy stage chose to do about a violation.

    Its ``id`` is the idempotency key of the operation it causes: the
    actuator runs at most one operation per decision id.
    """

    id: str
    violation_id: str
    policy: str
    action: Action
    target: Target
    parameters: dict[str, Any]
    """e.g. ``{"aspect": "fw", "steps": 1}``, ``{"level": "reboot"}``,
    ``{"destination": None, "live": True}``."""
    guards: list[GuardResult]
    approved: bool
    """True when the actuator may run it. False when a guard denied it, it waits
    for an operator's approval, or its policy runs dry: recorded, not run."""
    reason: str
    decided_at: float
    request_id: str
    episode: str = ""
    """The episode (one violation of one policy on one target) the decision is a
    step of; every step of a closed loop's chain shares it."""
    step: int = 0
    """The decision's place in its episode's chain (0 for the first)."""
    verdict: str = ""
    """``approved``, ``denied``, ``queued`` (a passing guard: re-checked later),
    ``awaiting_approval``, ``rejected`` or ``dry_run``; empty from older engines."""
    labels: dict[str, str] = {}
    """The policy's ``metadata.labels``, carried into notifications and the audit trail."""
    timeout_s: float | None = None
    """How long (clock seconds from its start) the operation may take; the
    actuator fails it when it takes longer. None: the actuator's own limit."""


# --------------------------------------------------------------------------
# Operation results (modelled on ETSI SOL003 VnfLcmOpOcc)
# --------------------------------------------------------------------------
class OpState(enum.StrEnum):
    STARTING = "STARTING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED_TEMP = "FAILED_TEMP"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"
    FAILED = "FAILED"

    @property
    def final(self) -> bool:
        return self in (OpState.COMPLETED, OpState.ROLLED_BACK, OpState.FAILED)


class OpResult(msgspec.Struct, tag="op_result.v1", frozen=True):
    """The outcome of an operation the actuator ran for a decision."""

    op_id: str
    """The LCM operation occurrence id."""
    decision_id: str
    vnf: str
    operation: str
    """SOL003 name: ``SCALE``, ``HEAL``, ``MIGRATE``, ``INSTANTIATE``, ..."""
    action: Action
    target: Target
    state: OpState
    started_at: float
    finished_at: float | None
    detail: dict[str, Any] = {}
    """e.g. the VNFCs added or removed, the destination host."""
    error: str | None = None
    request_id: str = ""


class LcmNotification(msgspec.Struct, tag="lcm_op_occ.v1", frozen=True):
    """One state change of an LCM operation occurrence (SOL003
    ``VnfLcmOperationOccurrenceNotification``), published on every transition."""

    op_id: str
    vnf: str
    operation: str
    """SOL003 name: ``INSTANTIATE``, ``SCALE``, ``HEAL``, ``CHANGE_FLAVOUR``, ..."""
    state: OpState
    at: float
    is_automatic: bool = False
    """True when the closed loop started the operation, not an operator."""
    error: str | None = None
    detail: str = ""
    """Why it moved (e.g. ``grant refused``, ``cancelled``, ``resumed``)."""


Message = SampleBatch | PackedBatch | Violation | Decision | OpResult | LcmNotification

Samples = SampleBatch | PackedBatch
"""Either form of a samples-stream entry."""

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)


def encode(message: Message) -> bytes:
    """Pack a message for the wire (msgpack, tagged with kind and version)."""
    return _encoder.encode(message)


def decode(data: bytes) -> Message:
    """Unpack a message; raises :class:`ContractError` naming what is wrong."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ContractError(f"undecodable message: {exc}") from exc


def to_builtins(message: Message) -> dict[str, Any]:
    """A JSON-ready dict of a message (for logs, the API and ``--json``)."""
    result = msgspec.to_builtins(message)
    assert isinstance(result, dict)
    return result
