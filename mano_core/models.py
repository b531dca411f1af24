"""Records of the inventory: VNF and VNFC instances, LCM operation occurrences.

They are stored in Redis as JSON (see :mod:`mano_core.inventory` and
:mod:`mano_core.lcm`) and are the shapes the API and CLI show.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from bus.contracts import OpState


class InstantiationState(enum.StrEnum):
    NOT_INSTANTIATED = "NOT_INSTANTIATED"
    INSTANTIATED = "INSTANTIATED"


class VnfcInstance(msgspec.Struct):
    """One running instance of a VDU: one server."""

    id: str
    vdu: str
    server_id: str
    host: str | None
    address: str | None
    metrics_url: str | None
    """Where its Prometheus exposition is scraped, if the VDU has one."""
    created_at: float


class VnfState(enum.StrEnum):
    """Whether the VNF's servers run (SOL003 ``vnfState``), as the operate operation left it."""

    STARTED = "STARTED"
    STOPPED = "STOPPED"


class ComputeFlavour(msgspec.Struct, frozen=True):
    """The compute resources of each VNFC of a VDU, when a change of flavour set them."""

    vcpus: int
    ram_mb: int
    disk_gb: int = 0
    name: str = ""
    """The VIM flavour's name; empty: one is derived from the sizes."""

    def flavour_name(self) -> str:
        return self.name or f"{self.vcpus}c-{self.ram_mb}m-{self.disk_gb}g"


class VnfInstance(msgspec.Struct):
    """One VNF instance and its VNFCs."""

    id: str
    name: str
    vnfd_id: str
    vim: str
    state: InstantiationState
    scale_levels: dict[str, int]
    """Current scale level of each scaling aspect of the VNFD."""
    vnfcs: list[VnfcInstance]
    created_at: float
    updated_at: float
    vnfd_version: str | None = None
    """The VNFD version it runs (None in records of older versions: the latest)."""
    ns_id: str | None = None
    """The NS instance it is a member of, if any."""
    labels: dict[str, str] = {}
    """The operator's labels (an NS member carries its NS's labels too)."""

    vnf_state: VnfState = VnfState.STARTED
    """STOPPED after an operate operation stopped it: not to be healed meanwhile."""
    flavours: dict[str, ComputeFlavour] = {}
    """Per VDU, the flavour a change of flavour gave it (else the VNFD's)."""
    ext_networks: dict[str, str] = {}
    """External connection point id -> the network (on its VIM) its ports are on."""

    def vnfcs_of(self, vdu: str) -> list[VnfcInstance]:
        return [c for c in self.vnfcs if c.vdu == vdu]

    def vnfc(self, vnfc_id: str) -> VnfcInstance | None:
        return next((c for c in self.vnfcs if c.id == vnfc_id), None)


class LcmOperation(enum.StrEnum):
    """Operation names as in ETSI SOL003 (MIGRATE and CONFIGURE are ours: SOL003 has none)."""

    INSTANTIATE = "INSTANTIATE"
    SCALE = "SCALE"
    SCALE_TO_LEVEL = "SCALE_TO_LEVEL"
    HEAL = "HEAL"
    OPERATE = "OPERATE"
    MIGRATE = "MIGRATE"
    CHANGE_FLAVOUR = "CHANGE_FLAVOUR"
    CHANGE_VNFPKG = "CHANGE_VNFPKG"
    CONFIGURE = "CONFIGURE"
    TERMINATE = "TERMINATE"


class StateChange(msgspec.Struct):
    state: OpState
    at: float
    detail: str = ""


class LcmOpOcc(msgspec.Struct):
    """One lifecycle operation occurrence and its state (SOL003 ``VnfLcmOpOcc``)."""

    id: str
    vnf_id: str
    operation: LcmOperation
    state: OpState
    operation_params: dict[str, Any]
    started_at: float
    state_entered_at: float
    decision_id: str | None = None
    """The decision that caused it (its idempotency key), if any."""
    error: str | None = None
    retry_after: float | None = None
    """Set with FAILED_TEMP when the failure was temporary."""
    result: dict[str, Any] = {}
    """What it changed, e.g. ``{"added": [vnfc ids], "removed": [...]}``."""
    history: list[StateChange] = []
    is_automatic: bool = False
    """True when the closed loop (a decision) started it, not an operator."""
    is_cancel_pending: bool = False
    """An operator asked to cancel it; the worker running it stops at its next step."""
    grant_id: str | None = None
    """The grant it runs under, once granted."""
