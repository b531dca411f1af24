"""The KpiPolicy schema: what a policy file may say, as pydantic models.

A policy names the VNFD it watches, the conditions that make it act (any
condition's ONSET triggers the action) and/or an Alertmanager alert that
does (``trigger``), one action and its guards::

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

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt, model_validator

from bus.fields import Duration
from bus.problems import rule_error
from mano_core.vnfd import RecoveryLevel
from policy.schema_base import NAME_PATTERN, Scope, Strict
from policy.schema_conditions import Condition

__all__ = ["NAME_PATTERN", "Condition", "Scope"]

_Strict = Strict


class Metadata(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    """Unique across all loaded policies; violations and decisions name it."""
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


class PolicyTarget(_Strict):
    vnfd: str = Field(min_length=1)
    """The policy applies to every VNF instance of this VNFD."""


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


class AlertTrigger(_Strict):
    """Act on an Alertmanager alert (webhook ``POST /api/v1/alerts``) as on a condition.

    An alert matches when its ``alertname`` label is ``alert`` and it carries
    every label of ``matchers`` with exactly that value; its target comes
    from its labels (``vnfc_id``, ``vnf_instance_id`` or ``vnf``, ``host``).
    Firing is the ONSET of a violation, resolved its ABATED.
    """

    alert: str = Field(min_length=1)
    """The alert's ``alertname``."""
    matchers: dict[str, str] = Field(default_factory=dict)
    """Labels the alert must carry, with these values (equality)."""

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether an alert with ``labels`` is one this trigger acts on."""
        if labels.get("alertname") != self.alert:
            return False
        return all(labels.get(name) == value for name, value in self.matchers.items())


class Guards(_Strict):
    cooldown: Duration = 0.0
    """After an approved decision, the same policy on the same target is denied this long."""


class PolicySpec(_Strict):
    target: PolicyTarget
    conditions: list[Condition] = Field(default_factory=list)
    trigger: AlertTrigger | None = None
    """An Alertmanager alert that acts like a condition (ONSET when it fires)."""
    action: PolicyAction
    guards: Guards = Field(default_factory=Guards)

    @model_validator(mode="after")
    def _something_triggers(self) -> PolicySpec:
        if not self.conditions and self.trigger is None:
            raise rule_error(
                "a policy needs at least one condition, or an alert trigger", "conditions"
            )
        return self

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
