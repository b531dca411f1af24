"""The KpiPolicy schema: what a policy file may say, as pydantic models.

A policy names the VNFD it watches, the conditions that make it act (any
condition's ONSET triggers the action), one action and its guards::

    apiVersion: assure/v1
    kind: KpiPolicy
    metadata: {name: vfw-cpu-high, description: "Scale out when CPU saturates"}
    spec:
      target: {vnfd: vfw}
      conditions:
        - {name: cpu-high, kpi: vnf_cpu_utilisation, scope: vnf, aggregate: avg,
           op: ">", threshold: 75, clear: 60, for: 30s}
      action: {type: scale_out, aspect: fw-scale, steps: 1}
      guards: {cooldown: 120s}

Every field is checked where it stands, so an error names its own place.
Rules that tie several fields together raise :class:`PydanticCustomError`
with the place (relative to the model) in ``ctx["at"]``, which the loader
appends to the error's location.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bus.conditions import Aggregate, Comparison
from bus.fields import Duration
from bus.problems import rule_error
from mano_core.vnfd import RecoveryLevel

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""Policy and condition names: DNS labels, because they end up in Redis keys and ids."""


Scope = Literal["vnf", "vnfc", "host"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Metadata(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    """Unique across all loaded policies; violations and decisions name it."""
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


class PolicyTarget(_Strict):
    vnfd: str = Field(min_length=1)
    """The policy applies to every VNF instance of this VNFD."""


class Condition(_Strict):
    """One condition; the analytics stage evaluates it (see :mod:`bus.conditions`)."""

    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["threshold", "absent"] = "threshold"
    kpi: str = Field(min_length=1)
    scope: Scope
    aggregate: Aggregate | None = None
    """How per-VNFC values combine; scope ``vnf`` only (default ``avg``)."""
    op: Comparison | None = Field(default=None, validate_default=True)
    threshold: float | None = Field(default=None, validate_default=True, allow_inf_nan=False)
    clear: float | None = Field(default=None, allow_inf_nan=False)
    """Hysteresis: the value to cross back for ABATED; defaults to the threshold."""
    for_: Duration | None = Field(default=None, alias="for")
    """How long the condition must hold (``absent``: how long the series is silent)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra label matchers a sample must carry to count."""

    @field_validator("op", "threshold")
    @classmethod
    def _threshold_fields(cls, value: object, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind == "threshold" and value is None:
            raise PydanticCustomError(
                "missing_for_kind",
                "required for a threshold condition (kind defaults to threshold)",
                {"field": info.field_name},
            )
        if kind == "absent" and value is not None:
            raise PydanticCustomError(
                "not_for_kind",
                "an absent condition has no {field} (it fires when the series stops)",
                {"field": info.field_name},
            )
        return value

    @field_validator("clear")
    @classmethod
    def _clear_on_the_safe_side(cls, value: float | None, info: ValidationInfo) -> Any:
        if value is None:
            return value
        op, threshold = info.data.get("op"), info.data.get("threshold")
        if info.data.get("kind") == "absent":
            raise PydanticCustomError("not_for_kind", "an absent condition has no clear", {})
        if op is None or threshold is None:
            return value  # the missing op/threshold is reported on its own
        if op in (">", ">=") and value > threshold:
            raise PydanticCustomError(
                "clear_side",
                "clear {clear} must not be above threshold {threshold} for op '{op}' "
                "(the condition clears when the value falls back to it)",
                {"clear": f"{value:g}", "threshold": f"{threshold:g}", "op": op},
            )
        if op in ("<", "<=") and value < threshold:
            raise PydanticCustomError(
                "clear_side",
                "clear {clear} must not be below threshold {threshold} for op '{op}' "
                "(the condition clears when the value rises back to it)",
                {"clear": f"{value:g}", "threshold": f"{threshold:g}", "op": op},
            )
        return value

    @model_validator(mode="after")
    def _absent_rules(self) -> Condition:
        if self.kind != "absent":
            return self
        # Absence is detected per VNFC the inventory knows (a VNFC that stopped answering).
        if self.scope != "vnfc":
            raise rule_error(f"an absent condition needs scope vnfc, got {self.scope}", "scope")
        if self.for_ is None:
            raise rule_error(
                "an absent condition needs for (how long the series must be silent, e.g. '15s')",
                "for",
            )
        return self

    @property
    def for_s(self) -> float:
        return self.for_ or 0.0


class ScaleAction(_Strict):
    type: Literal["scale_out", "scale_in"]
    aspect: str = Field(min_length=1)
    """The VNFD's scaling aspect to step."""
    steps: StrictInt = Field(default=1, ge=1)


class HealAction(_Strict):
    type: Literal["heal"]
    level: RecoveryLevel = RecoveryLevel.SOFT_REBOOT
    """The first step of the recovery ladder to try."""


class MigrateAction(_Strict):
    type: Literal["migrate"]
    live: StrictBool = True
    destination: str | None = None
    """A host to move to; None lets the VIM scheduler pick one."""


class NotifyAction(_Strict):
    type: Literal["notify"]
    message: str = ""


PolicyAction = Annotated[
    ScaleAction | HealAction | MigrateAction | NotifyAction, Field(discriminator="type")
]

ACTION_SCOPES: dict[str, tuple[Scope, ...]] = {
    "scale_out": ("vnf", "vnfc"),
    "scale_in": ("vnf", "vnfc"),
    "heal": ("vnfc",),
    "migrate": ("vnfc", "host"),
    "notify": ("vnf", "vnfc", "host"),
}
"""Which condition scopes can drive each action (scale a VNF, heal a VNFC, empty a host)."""


class Guards(_Strict):
    cooldown: Duration = 0.0
    """After an approved decision, the same policy on the same target is denied this long."""


class PolicySpec(_Strict):
    target: PolicyTarget
    conditions: list[Condition] = Field(min_length=1)
    action: PolicyAction
    guards: Guards = Field(default_factory=Guards)

    @model_validator(mode="after")
    def _condition_names_unique(self) -> PolicySpec:
        seen: dict[str, int] = {}
        for index, condition in enumerate(self.conditions):
            if condition.name in seen:
                raise rule_error(
                    f"duplicate condition name {condition.name!r} "
                    f"(also conditions[{seen[condition.name]}])",
                    "conditions",
                    index,
                    "name",
                )
            seen[condition.name] = index
        return self

    @model_validator(mode="after")
    def _scopes_fit_action(self) -> PolicySpec:
        allowed = ACTION_SCOPES[self.action.type]
        for index, condition in enumerate(self.conditions):
            if condition.scope not in allowed:
                raise rule_error(
                    f"scope {condition.scope} cannot drive a {self.action.type} action "
                    f"(it needs scope {' or '.join(allowed)})",
                    "conditions",
                    index,
                    "scope",
                )
        return self


class KpiPolicy(_Strict):
    api_version: Literal["assure/v1"] = Field(alias="apiVersion")
    kind: Literal["KpiPolicy"]
    metadata: Metadata
    spec: PolicySpec

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def vnfd(self) -> str:
        return self.spec.target.vnfd
