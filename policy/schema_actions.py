"""The actions a KpiPolicy can take, as schema models.

- ``scale_out`` / ``scale_in``: ``steps`` steps of a scaling aspect.
- ``scale_to_level``: the aspect to one scale level (out or in, as needed).
- ``scale``: proportional, as the Kubernetes HPA computes it: the desired
  count of VNFCs is ``ceil(current * value / target)``, where ``value`` is
  the KPI value the violation reports; nothing is done while
  ``value / target`` is within ``tolerance`` of 1. It may take several steps
  at once, out or in.
- ``heal``: one VNFC, starting at ``level`` and climbing its VDU's recovery
  ladder while the KPI does not recover.
- ``migrate``: VNFCs off a host; a live migration that fails or does not
  help is followed by a cold one when ``cold_fallback`` is set.
- ``change_flavour``: vertical scaling: every VNFC of one VDU resized to
  new compute resources, one at a time.
- ``operate``: stop or start the whole VNF.
- ``scale_ns_out`` / ``scale_ns_in``: ``steps`` steps of an NSD's NS
  scaling aspect (SOL005 ``ScaleNsRequest`` with ``scaleNsByStepsData``);
  each step scales the member VNFs the aspect lists by their own aspects.
- ``scale_ns_to_level``: the NS aspect to one level (``scaleNsToLevelData``),
  out or in as needed.
- ``notify``: a message to the policy's ``notify`` receiver.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt

from mano_core.vnfd import RecoveryLevel
from policy.schema_base import Scope, Strict


class ScaleAction(Strict):
    type: Literal["scale_out", "scale_in"]
    aspect: str = Field(min_length=1)
    """The VNFD's scaling aspect to step."""
    steps: StrictInt = Field(default=1, ge=1)
    """How many steps one decision takes."""


class ScaleToLevelAction(Strict):
    type: Literal["scale_to_level"]
    aspect: str = Field(min_length=1)
    level: StrictInt = Field(ge=0)
    """The scale level to reach (bounded by the aspect's max_scale_level)."""


class ProportionalScaleAction(Strict):
    type: Literal["scale"]
    aspect: str = Field(min_length=1)
    target: float = Field(gt=0, allow_inf_nan=False)
    """The KPI value each VNFC should run at (e.g. 60 for 60% CPU)."""
    tolerance: float = Field(default=0.1, ge=0, lt=1, allow_inf_nan=False)
    """No change while ``value / target`` is within this of 1 (the HPA's 0.1)."""
    max_steps: StrictInt | None = Field(default=None, ge=1)
    """At most this many steps per decision (None: as many as the formula says)."""


class HealAction(Strict):
    type: Literal["heal"]
    level: RecoveryLevel = RecoveryLevel.SOFT_REBOOT
    """The first step of the recovery ladder to try; the chain climbs from there."""


class MigrateAction(Strict):
    type: Literal["migrate"]
    live: StrictBool = True
    destination: str | None = None
    """A host to move to; None lets the VIM scheduler pick one."""
    cold_fallback: StrictBool = True
    """After a live migration that failed or did not help, try a cold one."""


class ChangeFlavourAction(Strict):
    type: Literal["change_flavour"]
    vdu: str = Field(min_length=1)
    """The VDU whose VNFCs are resized."""
    vcpus: StrictInt = Field(ge=1)
    ram_mb: StrictInt = Field(ge=1)
    disk_gb: StrictInt = Field(default=0, ge=0)


class OperateAction(Strict):
    type: Literal["operate"]
    state: Literal["STARTED", "STOPPED"]
    """The state to bring the VNF to."""
    graceful: StrictBool = True
    """Stopping: run the VNFCs' drain hooks first."""


class ScaleNsAction(Strict):
    type: Literal["scale_ns_out", "scale_ns_in"]
    aspect: str = Field(min_length=1)
    """The NSD's scaling aspect to step (``scaling_aspects[].id`` of the NSD)."""
    steps: StrictInt = Field(default=1, ge=1)
    """How many NS steps one decision takes."""


class ScaleNsToLevelAction(Strict):
    type: Literal["scale_ns_to_level"]
    aspect: str = Field(min_length=1)
    level: StrictInt = Field(ge=0)
    """The NS scale level to reach (bounded by the aspect's max_scale_level)."""


class NotifyAction(Strict):
    type: Literal["notify"]
    message: str = ""
    """Sent with the violation's own description to the policy's ``notify`` receiver."""


PolicyAction = Annotated[
    ScaleAction
    | ScaleToLevelAction
    | ProportionalScaleAction
    | HealAction
    | MigrateAction
    | ChangeFlavourAction
    | OperateAction
    | ScaleNsAction
    | ScaleNsToLevelAction
    | NotifyAction,
    Field(discriminator="type"),
]

SCALING_ACTIONS = frozenset({"scale_out", "scale_in", "scale_to_level", "scale"})
"""Actions that change a VNF's scale level (they share one cooldown per aspect)."""
VNF_ACTIONS = SCALING_ACTIONS | {"change_flavour", "operate"}
"""Actions that act on the whole VNF (the others on a VNFC, or notify on the target)."""
NS_ACTIONS = frozenset({"scale_ns_out", "scale_ns_in", "scale_ns_to_level"})
"""Actions that act on a whole network service (they share one cooldown per NS aspect)."""

ACTION_SCOPES: dict[str, tuple[Scope, ...]] = {
    "scale_out": ("vnf", "vnfc"),
    "scale_in": ("vnf", "vnfc"),
    "scale_to_level": ("vnf", "vnfc"),
    "scale": ("vnf",),
    "heal": ("vnfc",),
    "migrate": ("vnfc", "host"),
    "change_flavour": ("vnf", "vnfc"),
    "operate": ("vnf", "vnfc"),
    "scale_ns_out": ("ns",),
    "scale_ns_in": ("ns",),
    "scale_ns_to_level": ("ns",),
    "notify": ("vnf", "vnfc", "host", "ns"),
}
"""Which condition scopes can drive each action (scale a VNF, heal a VNFC, empty a host,
scale an NS)."""


def decision_action(action_type: str) -> str:
    """The decision action (:class:`bus.contracts.Action`) a policy action type decides:
    scaling to a level and proportional scaling decide a scale-out or a scale-in, named
    here by its scale-out."""
    return {
        "scale": "scale_out",
        "scale_to_level": "scale_out",
        "scale_ns_to_level": "scale_ns_out",
    }.get(action_type, action_type)


ACTION_MODELS = (
    ScaleAction,
    ScaleToLevelAction,
    ProportionalScaleAction,
    HealAction,
    MigrateAction,
    ChangeFlavourAction,
    OperateAction,
    ScaleNsAction,
    ScaleNsToLevelAction,
    NotifyAction,
)
