"""ETSI SOL003 shapes: the VNF LCM request bodies and the records the API answers with.

Field names and meanings are SOL003's (``vnfdId``, ``instantiationState``,
``operationState``, ``_links``, ...), trimmed to what this platform does;
requests accept SOL003's optional fields that it uses and refuse others
that would be silently ignored. Times are ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mano_core.models import LcmOpOcc, VnfInstance

VNFLCM = "/vnflcm/v2"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Record(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``2026-01-01T10:00:00.000000Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class Link(_Record):
    href: str


# --- requests ----------------------------------------------------------------
class CreateVnfRequest(_Request):
    vnfdId: str = Field(min_length=1)
    vnfInstanceName: str = Field(min_length=1, max_length=200)
    vnfInstanceDescription: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    """Kept as the instance's labels."""


class InstantiateVnfRequest(_Request):
    flavourId: Literal["default"] = "default"
    """This platform's VNFDs have one deployment flavour, ``default``."""
    instantiationLevelId: str | None = None
    """An instantiation level of the VNFD (default: its default level)."""


class ScaleVnfRequest(_Request):
    type: Literal["SCALE_OUT", "SCALE_IN"]
    aspectId: str = Field(min_length=1)
    numberOfSteps: int = Field(default=1, ge=1, le=100)


class HealVnfRequest(_Request):
    vnfcInstanceId: list[str] = Field(min_length=1, max_length=1)
    """The VNFC to heal (one per operation here)."""
    cause: str = ""
    additionalParams: dict[str, str] = Field(default_factory=dict)
    """``level``: the recovery-ladder step to start from (default: the ladder's first)."""


class TerminateVnfRequest(_Request):
    terminationType: Literal["FORCEFUL", "GRACEFUL"] = "FORCEFUL"
    """Both remove every VNFC at once (no graceful drain here)."""


class ScaleLevel(_Request):
    """SOL003 ``ScaleInfo`` in a request: the level one aspect is brought to."""

    aspectId: str = Field(min_length=1)
    scaleLevel: int = Field(ge=0, le=1000)


class ScaleVnfToLevelRequest(_Request):
    """Either an instantiation level of the VNFD or a level per aspect, not both."""

    instantiationLevelId: str | None = None
    scaleInfo: list[ScaleLevel] | None = Field(default=None, min_length=1)


class OperateVnfRequest(_Request):
    changeStateTo: Literal["STARTED", "STOPPED"]
    stopType: Literal["FORCEFUL", "GRACEFUL"] | None = None
    """Only with ``STOPPED``: GRACEFUL runs each VNFC's drain hook first; FORCEFUL
    (the default, as in SOL003) stops the servers at once."""


class VduFlavour(_Request):
    """The VDU a change of flavour resizes, and the compute resources it gets."""

    vduId: str = Field(min_length=1)
    vcpus: int = Field(ge=1, le=1024)
    ramMb: int = Field(ge=1)
    diskGb: int = Field(default=0, ge=0)


class ChangeVnfFlavourRequest(_Request):
    """This platform's VNFDs have one deployment flavour: a change of flavour resizes
    the VNFCs of one VDU, one at a time, to a compute flavour."""

    newFlavourId: str = Field(min_length=1, max_length=100)
    """The name the VIM gives the new compute flavour."""
    additionalParams: VduFlavour


class PackageVersion(_Request):
    vnfdVersion: str | None = Field(default=None, min_length=1)
    """The VNFD version to run (default: the catalogue's latest)."""


class ChangeCurrentVnfPkgRequest(_Request):
    """Another version of the instance's own VNFD: a rolling, health-checked image change."""

    vnfdId: str = Field(min_length=1)
    """The instance's VNFD (versions of one VNFD share its id)."""
    additionalParams: PackageVersion = Field(default_factory=PackageVersion)


class CancelModeRequest(_Request):
    cancelMode: Literal["GRACEFUL", "FORCEFUL"]
    """GRACEFUL: the operation stops at its next step, once the VIM call under way
    ends, and goes FAILED_TEMP. FORCEFUL (interrupting that VIM call) is refused."""


# --- records -----------------------------------------------------------------
class ScaleInfo(_Record):
    aspectId: str
    scaleLevel: int


class ComputeResource(_Record):
    vimConnectionId: str
    resourceId: str


class VnfcResourceInfo(_Record):
    id: str
    vduId: str
    computeResource: ComputeResource
    metadata: dict[str, str] = Field(default_factory=dict)
    """``host``, ``address`` and ``metricsUrl``, where known."""


class InstantiatedVnfInfo(_Record):
    flavourId: str = "default"
    vnfState: Literal["STARTED", "STOPPED"]
    scaleStatus: list[ScaleInfo]
    vnfcResourceInfo: list[VnfcResourceInfo]


class VnfInstanceLinks(_Record):
    self_: Link = Field(alias="self")
    instantiate: Link | None = None
    scale: Link | None = None
    scaleToLevel: Link | None = None
    heal: Link | None = None
    operate: Link | None = None
    changeFlavour: Link | None = None
    changeVnfPkg: Link | None = None
    terminate: Link | None = None


class VnfInstanceRecord(_Record):
    id: str
    vnfInstanceName: str
    vnfInstanceDescription: str = ""
    vnfdId: str
    vnfdVersion: str | None = None
    instantiationState: Literal["NOT_INSTANTIATED", "INSTANTIATED"]
    instantiatedVnfInfo: InstantiatedVnfInfo | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    links: VnfInstanceLinks = Field(alias="_links")


class OpError(_Record):
    """SOL013 ProblemDetails of a failed operation."""

    status: int
    title: str
    detail: str


class OpOccLinks(_Record):
    self_: Link = Field(alias="self")
    vnfInstance: Link
    cancel: Link | None = None
    retry: Link | None = None
    rollback: Link | None = None
    fail: Link | None = None


class StateChangeRecord(_Record):
    state: str
    at: str
    detail: str = ""


class VnfLcmOpOccRecord(_Record):
    id: str
    operationState: Literal[
        "STARTING", "PROCESSING", "COMPLETED", "FAILED_TEMP", "ROLLING_BACK", "ROLLED_BACK",
        "FAILED",
    ]  # fmt: skip
    stateEnteredTime: str
    startTime: str
    vnfInstanceId: str
    operation: str
    isAutomaticInvocation: bool
    """True when the closed loop started it (a decision), False for a REST request."""
    operationParams: dict[str, Any]
    isCancelPending: bool = False
    error: OpError | None = None
    resourceChanges: dict[str, Any] = Field(default_factory=dict)
    """What it changed, e.g. ``{"added": [VNFC ids], "removed": [...]}``."""
    decisionId: str | None = None
    history: list[StateChangeRecord] = Field(default_factory=list)
    links: OpOccLinks = Field(alias="_links")


_TASKS = {
    "instantiate": "instantiate", "scale": "scale", "scaleToLevel": "scale_to_level",
    "heal": "heal", "operate": "operate", "changeFlavour": "change_flavour",
    "changeVnfPkg": "change_vnfpkg", "terminate": "terminate",
}  # fmt: skip
"""``_links`` name -> task resource of a VNF instance (all but instantiate need it instantiated)."""


def vnf_instance_record(vnf: VnfInstance, description: str = "") -> VnfInstanceRecord:
    base = f"{VNFLCM}/vnf_instances/{vnf.id}"
    instantiated = vnf.state == "INSTANTIATED"
    info = None
    if instantiated:
        info = InstantiatedVnfInfo(
            vnfState=vnf.vnf_state.value,
            scaleStatus=[
                ScaleInfo(aspectId=a, scaleLevel=lvl) for a, lvl in vnf.scale_levels.items()
            ],
            vnfcResourceInfo=[
                VnfcResourceInfo(
                    id=c.id,
                    vduId=c.vdu,
                    computeResource=ComputeResource(
                        vimConnectionId=vnf.vim, resourceId=c.server_id
                    ),
                    metadata={
                        k: v
                        for k, v in (("host", c.host), ("address", c.address),
                                     ("metricsUrl", c.metrics_url))
                        if v
                    },
                )
                for c in vnf.vnfcs
            ],
        )  # fmt: skip
    tasks = {
        name: Link(href=f"{base}/{path}")
        for name, path in _TASKS.items()
        if instantiated != (name == "instantiate")
    }
    links = VnfInstanceLinks(self=Link(href=base), **tasks)
    return VnfInstanceRecord(
        id=vnf.id,
        vnfInstanceName=vnf.name,
        vnfInstanceDescription=description,
        vnfdId=vnf.vnfd_id,
        vnfdVersion=vnf.vnfd_version,
        instantiationState="INSTANTIATED" if instantiated else "NOT_INSTANTIATED",
        instantiatedVnfInfo=info,
        metadata=dict(vnf.labels),
        _links=links,
    )


def op_occ_record(op: LcmOpOcc) -> VnfLcmOpOccRecord:
    base = f"{VNFLCM}/vnf_lcm_op_occs/{op.id}"
    failed_temp = op.state == "FAILED_TEMP"
    running = op.state in ("STARTING", "PROCESSING", "ROLLING_BACK")
    error = None
    if op.error:
        error = OpError(status=500, title=f"{op.operation} failed", detail=op.error)
    return VnfLcmOpOccRecord(
        id=op.id,
        operationState=op.state.value,
        stateEnteredTime=iso(op.state_entered_at) or "",
        startTime=iso(op.started_at) or "",
        vnfInstanceId=op.vnf_id,
        operation=op.operation.value,
        isAutomaticInvocation=op.decision_id is not None,
        operationParams=dict(op.operation_params),
        isCancelPending=op.is_cancel_pending,
        error=error,
        resourceChanges=dict(op.result),
        decisionId=op.decision_id,
        history=[
            StateChangeRecord(state=c.state.value, at=iso(c.at) or "", detail=c.detail)
            for c in op.history
        ],
        _links=OpOccLinks(
            self=Link(href=base),
            vnfInstance=Link(href=f"{VNFLCM}/vnf_instances/{op.vnf_id}"),
            cancel=Link(href=f"{base}/cancel") if running else None,
            retry=Link(href=f"{base}/retry") if failed_temp else None,
            rollback=Link(href=f"{base}/rollback") if failed_temp else None,
            fail=Link(href=f"{base}/fail") if failed_temp else None,
        ),
    )


def dump(model: BaseModel) -> dict[str, Any]:
    """A record as JSON-ready data: SOL003 names (``_links``, ``self``), no null fields."""
    data = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert isinstance(data, dict)
    return data
