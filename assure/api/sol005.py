"""ETSI SOL005 shapes: the NS LCM request bodies and the records the API answers with.

Field names and meanings are SOL005's (``nsdId``, ``nsState``,
``lcmOperationType``, ``operationState``, ``_links``, ...), trimmed to what
the NFVO does; requests refuse fields that would be silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assure.api.sol003 import Link, VnfInstanceRecord, iso
from mano_core.nfvo.records import NsInstance, NsOperation

NSLCM = "/nslcm/v2"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Record(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


# --- requests ----------------------------------------------------------------
class CreateNsRequest(_Request):
    nsdId: str = Field(min_length=1)
    nsName: str = Field(min_length=1, max_length=200)
    nsDescription: str = ""


class InstantiateNsRequest(_Request):
    nsFlavourId: Literal["default"] = "default"
    """This platform's NSDs have one deployment flavour, ``default``."""


class ScaleNsByStepsData(_Request):
    scalingDirection: Literal["SCALE_OUT", "SCALE_IN"]
    aspectId: str = Field(min_length=1)
    numberOfSteps: int = Field(default=1, ge=1, le=100)


class ScaleNsData(_Request):
    scaleNsByStepsData: ScaleNsByStepsData


class ScaleNsRequest(_Request):
    scaleType: Literal["SCALE_NS"]
    """Scaling a member VNF on its own is the VNF LCM's (``vnf_instances/{id}/scale``)."""
    scaleNsData: ScaleNsData


class HealVnfParams(_Request):
    vnfcInstanceId: list[str] | None = Field(default=None, min_length=1)
    """The VNFCs to heal (default: those the VIM sees unwell)."""
    level: str | None = None
    """The recovery-ladder step (default: each VNFC climbs its ladder)."""


class HealVnfData(_Request):
    vnfInstanceId: str = Field(min_length=1)
    cause: str = ""
    additionalParams: HealVnfParams = Field(default_factory=HealVnfParams)


class HealNsData(_Request):
    degreeHealing: Literal["HEAL_RESTORE"]
    """Every member VNF: the VNFCs the VIM sees unwell, each up its recovery ladder."""


class HealNsRequest(_Request):
    """Either ``healNsData`` (the whole NS) or ``healVnfData`` (named member VNFs)."""

    healNsData: HealNsData | None = None
    healVnfData: list[HealVnfData] | None = Field(default=None, min_length=1)


class TerminateNsRequest(_Request):
    """Every member VNF is drained (its hooks), terminated, then the NS's networks go."""


# --- records -----------------------------------------------------------------
class NsScaleInfo(_Record):
    nsScalingAspectId: str
    nsScaleLevelId: str


class NsInstanceLinks(_Record):
    self_: Link = Field(alias="self")
    instantiate: Link | None = None
    scale: Link | None = None
    heal: Link | None = None
    terminate: Link | None = None


class NsInstanceRecord(_Record):
    id: str
    nsInstanceName: str
    nsInstanceDescription: str = ""
    nsdId: str
    nsdVersion: str
    nsState: Literal["NOT_INSTANTIATED", "INSTANTIATED"]
    vnfInstance: list[VnfInstanceRecord] = Field(default_factory=list)
    """Its member VNF instances, as the VNF LCM shows them."""
    nsScaleStatus: list[NsScaleInfo] = Field(default_factory=list)
    links: NsInstanceLinks = Field(alias="_links")


class NsOpError(_Record):
    status: int
    title: str
    detail: str


class NsOpOccLinks(_Record):
    self_: Link = Field(alias="self")
    nsInstance: Link


class NsLcmOpOccRecord(_Record):
    id: str
    operationState: Literal["PROCESSING", "COMPLETED", "ROLLING_BACK", "ROLLED_BACK", "FAILED"]
    stateEnteredTime: str
    startTime: str
    nsInstanceId: str
    lcmOperationType: Literal["INSTANTIATE", "SCALE", "HEAL", "TERMINATE"]
    isAutomaticInvocation: bool = False
    operationParams: dict[str, Any] = Field(default_factory=dict)
    isCancelPending: bool = False
    error: NsOpError | None = None
    resourceChanges: dict[str, Any] = Field(default_factory=dict)
    """``affectedVnfs``: the member VNF operations it ran (``vnfInstanceId``, ``vnfLcmOpOccId``)."""
    links: NsOpOccLinks = Field(alias="_links")


_TASKS = ("instantiate", "scale", "heal", "terminate")


def ns_instance_record(ns: NsInstance, members: list[VnfInstanceRecord]) -> NsInstanceRecord:
    base = f"{NSLCM}/ns_instances/{ns.id}"
    instantiated = ns.state == "INSTANTIATED"
    links = {
        name: Link(href=f"{base}/{name}")
        for name in _TASKS
        if instantiated != (name == "instantiate")
    }
    return NsInstanceRecord(
        id=ns.id,
        nsInstanceName=ns.name,
        nsInstanceDescription=ns.description,
        nsdId=ns.nsd_id,
        nsdVersion=ns.nsd_version,
        nsState="INSTANTIATED" if instantiated else "NOT_INSTANTIATED",
        vnfInstance=members,
        nsScaleStatus=[
            NsScaleInfo(nsScalingAspectId=a, nsScaleLevelId=str(level))
            for a, level in ns.scale_levels.items()
        ],
        _links=NsInstanceLinks(self=Link(href=base), **links),
    )


def ns_op_occ_record(ns: NsInstance, op: NsOperation) -> NsLcmOpOccRecord:
    error = None
    if op.error:
        error = NsOpError(status=500, title=f"{op.operation} failed", detail=op.error)
    affected = []
    for ref in op.vnf_ops:
        vnf_id, _, op_id = ref.partition("/")
        affected.append({"vnfInstanceId": vnf_id, "vnfLcmOpOccId": op_id})
    return NsLcmOpOccRecord(
        id=op.id,
        operationState=op.state.value,
        stateEnteredTime=iso(op.finished_at or op.started_at) or "",
        startTime=iso(op.started_at) or "",
        nsInstanceId=ns.id,
        lcmOperationType=op.operation,  # type: ignore[arg-type]
        operationParams=dict(op.params),
        error=error,
        resourceChanges={"affectedVnfs": affected} if affected else {},
        _links=NsOpOccLinks(
            self=Link(href=f"{NSLCM}/ns_lcm_op_occs/{op.id}"),
            nsInstance=Link(href=f"{NSLCM}/ns_instances/{ns.id}"),
        ),
    )
