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

    def vnfcs_of(self, vdu: str) -> list[VnfcInstance]:
        return [c for c in self.vnfcs if c.vdu == vdu]

    def vnfc(self, vnfc_id: str) -> VnfcInstance | None:
        return next((c for c in self.vnfcs if c.id == vnfc_id), None)


class LcmOperation(enum.StrEnum):
    """Operation names as in ETSI SOL003 (MIGRATE is ours: SOL003 has none)."""

    INSTANTIATE = "INSTANTIATE"
    SCALE = "SCALE"
    HEAL = "HEAL"
    MIGRATE = "MIGRATE"
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
