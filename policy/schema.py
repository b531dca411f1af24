"""The KpiPolicy schema: what a policy file may say, as pydantic models.

A policy selects what it watches (``target``), the conditions the analytics
stage evaluates, when they make it act (``trigger``), the chain of steps it
takes (``action`` or ``steps``), how autonomously (``mode``), the guards that
can hold a step back, and where it notifies::

    apiVersion: assure/v1
    kind: KpiPolicy
    metadata: {name: vfw-cpu-high, labels: {team: edge}}
    spec:
      target: {vnfd: vfw}
      conditions:
        - {name: cpu-high, kpi: vnf_cpu_utilisation, scope: vnf, aggregate: avg,
           op: ">", threshold: 75, clear: 60, for: 30s}
      action: {type: scale_out, aspect: fw-scale, steps: 1}
      verify: 2m
      guards: {cooldown: 120s}

Every field is checked where it stands, so an error names its own place.
Rules that tie several fields together raise :func:`rule_error` with the
place (relative to the model) in ``ctx["at"]``, which the loader appends to
the error's location. The parts live in ``schema_*`` modules by subject.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bus.fields import Duration
from bus.problems import rule_error
from policy.schema_actions import (
    ACTION_SCOPES,
    NS_ACTIONS,
    SCALING_ACTIONS,
    ChangeFlavourAction,
    HealAction,
    MigrateAction,
    NotifyAction,
    OperateAction,
    PolicyAction,
    ProportionalScaleAction,
    ScaleAction,
    ScaleNsAction,
    ScaleNsToLevelAction,
    ScaleToLevelAction,
)
from policy.schema_base import NAME_PATTERN, Scope
from policy.schema_base import Strict as _Strict
from policy.schema_chain import FINAL, REPEAT, Approval, Mode, Receiver, Step
from policy.schema_conditions import Condition
from policy.schema_guards import Guards
from policy.schema_triggers import AlertTrigger, Trigger, holds, names

__all__ = [
    "ACTION_SCOPES",
    "FINAL",
    "NAME_PATTERN",
    "NS_ACTIONS",
    "REPEAT",
    "SCALING_ACTIONS",
    "AlertTrigger",
    "Approval",
    "ChangeFlavourAction",
    "Condition",
    "Duration",
    "Guards",
    "HealAction",
    "KpiPolicy",
    "MigrateAction",
    "Mode",
    "NotifyAction",
    "OperateAction",
    "PolicyAction",
    "PolicySpec",
    "PolicyTarget",
    "ProportionalScaleAction",
    "Receiver",
    "ScaleAction",
    "ScaleNsAction",
    "ScaleNsToLevelAction",
    "ScaleToLevelAction",
    "Scope",
    "Step",
    "rule_error",
]


class Metadata(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    """Unique across all loaded policies; violations and decisions name it."""
    description: str = ""
    """Shown with its decisions (the audit trail) and in its notifications."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Carried on every decision, audit record and notification of the policy
    (e.g. ``team: edge``, ``severity: major``); ``nfv-assure decisions list
    --label`` selects by them."""


class PolicyTarget(_Strict):
    """What the policy applies to; every selector given must match."""

    vnfd: str | None = Field(default=None, min_length=1)
    """VNF instances of this VNFD."""
    vnfd_version: str | None = Field(default=None, min_length=1)
    """Only while the onboarded VNFD has this version (needs ``vnfd``)."""
    nsd: str | None = Field(default=None, min_length=1)
    """NS instances of this NSD (for conditions of scope ``ns``)."""
    ns: str | None = Field(default=None, min_length=1)
    """Only VNF instances that are members of this NS instance (its id); with
    conditions of scope ``ns``, only that NS instance (its id or name)."""
    vnf_labels: dict[str, str] = Field(default_factory=dict)
    """Only VNF instances carrying every one of these labels, with these values
    (with scope ``ns``: NS instances carrying them)."""
    hosts: list[str] = Field(default_factory=list)
    """Only VNFCs on these hosts (and host violations of these hosts)."""

    @model_validator(mode="after")
    def _selects_something(self) -> PolicyTarget:
        if self.vnfd is None and not (self.hosts or self.nsd or self.ns or self.vnf_labels):
            raise rule_error(
                "a target needs vnfd, nsd, ns, vnf_labels or hosts (what the policy applies to)"
            )
        if self.vnfd_version is not None and self.vnfd is None:
            raise rule_error("vnfd_version needs vnfd", "vnfd_version")
        return self


class PolicySpec(_Strict):
    target: PolicyTarget
    conditions: list[Condition] = Field(default_factory=list)
    trigger: Trigger | None = None
    """When the policy acts: a combination of its conditions (None: any of them
    holds), or an Alertmanager alert (then it has no conditions)."""
    action: PolicyAction | None = None
    """The one step of a simple policy (give ``action`` or ``steps``)."""
    steps: list[Step] = Field(default_factory=list)
    """A chain of steps, the first taken first; see :mod:`policy.schema_chain`."""
    verify: Duration = Field(default=120.0, ge=0)
    """After an operation completes, how long the KPI may take to recover
    before the chain moves on (steps may set their own)."""
    timeout: Duration | None = Field(default=None, gt=0)
    """The whole episode gives up (not recovered) after this."""
    mode: Mode = "enforce"
    approval: Approval | None = None
    """With mode ``approve``: how long a decision waits, and the default answer."""
    notify: Receiver | None = None
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
    def _one_chain(self) -> PolicySpec:
        if (self.action is None) == (not self.steps):
            raise rule_error("give either action (one step) or steps (a chain), not both")
        seen: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            if step.id in seen:
                raise rule_error(f"duplicate step id {step.id!r}", "steps", index, "id")
            seen[step.id] = index
        for index, step in enumerate(self.steps):
            for branch in ("on_unrecovered", "on_failure", "on_timeout", "on_denied"):
                goes = getattr(step, branch)
                if goes is not None and goes not in seen and goes not in (REPEAT, FINAL):
                    raise rule_error(
                        f"{branch} names unknown step {goes!r} "
                        f"(a step id, {REPEAT!r} or {FINAL!r})",
                        "steps",
                        index,
                        branch,
                    )
        return self

    @model_validator(mode="after")
    def _trigger_fits(self) -> PolicySpec:
        by_name = {c.name: c for c in self.conditions}
        if isinstance(self.trigger, AlertTrigger):
            if self.conditions:
                raise rule_error(
                    "a policy triggered by an alert has no conditions of its own", "conditions"
                )
            return self
        if not self.conditions:
            raise rule_error(
                "a policy needs at least one condition, or an alert trigger", "conditions"
            )
        if self.trigger is None:
            return self
        used: set[str] = set()
        for name, at in names(self.trigger):
            if name not in by_name:
                raise rule_error(f"trigger names unknown condition {name!r}", "trigger", *at)
            used.add(name)
        unused = [c.name for c in self.conditions if c.name not in used]
        if unused:
            index = next(i for i, c in enumerate(self.conditions) if c.name == unused[0])
            raise rule_error(
                f"condition {unused[0]!r} is not used by the trigger", "conditions", index
            )
        scopes = {by_name[n].scope for n in used}
        if len(scopes) > 1:
            raise rule_error(
                f"a trigger combines conditions of one scope, got {', '.join(sorted(scopes))}",
                "trigger",
            )
        if holds(self.trigger, set()):
            raise rule_error(
                "the trigger holds when no condition does (a 'not' needs an 'all' "
                "with a condition that must hold beside it)",
                "trigger",
            )
        return self

    @model_validator(mode="after")
    def _scopes_fit_actions(self) -> PolicySpec:
        for action, at in self.actions():
            allowed = ACTION_SCOPES[action.type]
            for index, condition in enumerate(self.conditions):
                if condition.scope not in allowed:
                    raise rule_error(
                        f"scope {condition.scope} cannot drive a {action.type} action "
                        f"(it needs scope {' or '.join(allowed)})",
                        "conditions",
                        index,
                        "scope",
                    )
            if action.type == "notify" and self.notify is None:
                raise rule_error("a notify action needs the policy's notify receiver", *at)
            if action.type in NS_ACTIONS and isinstance(self.trigger, AlertTrigger):
                raise rule_error(
                    f"a {action.type} action needs conditions of scope ns "
                    "(an alert names no network service to scale)",
                    *at,
                )
        return self

    @model_validator(mode="after")
    def _target_fits_scopes(self) -> PolicySpec:
        """Conditions of scope ns select network services; the others select VNFs."""
        target = self.target
        ns_scoped = [c.scope == "ns" for c in self.conditions]
        if target.nsd is not None and not (ns_scoped and all(ns_scoped)):
            raise rule_error(
                "nsd selects network services: it goes with conditions of scope ns only",
                "target",
                "nsd",
            )
        if any(ns_scoped):
            for name in ("vnfd", "vnfd_version", "hosts"):
                if getattr(target, name):
                    raise rule_error(
                        f"{name} selects VNFs; conditions of scope ns apply to network "
                        "services (select them by nsd, ns or vnf_labels)",
                        "target",
                        name,
                    )
        return self

    @model_validator(mode="after")
    def _autonomy(self) -> PolicySpec:
        if self.approval is not None and self.mode != "approve":
            raise rule_error(f"approval is for mode approve, the mode is {self.mode}", "approval")
        if self.guards.stabilisation is not None and not any(
            a.type in ("scale_in", "scale", "scale_to_level") for a, _ in self.actions()
        ):
            raise rule_error(
                "stabilisation applies to scaling in only (a VNF's: scale_in, scale, "
                "scale_to_level)",
                "guards",
                "stabilisation",
            )
        return self

    def actions(self) -> list[tuple[PolicyAction, tuple[str | int, ...]]]:
        """Every action of the chain with its place in the spec."""
        if self.action is not None:
            return [(self.action, ("action",))]
        return [(s.action, ("steps", i, "action")) for i, s in enumerate(self.steps)]

    def chain(self) -> list[Step]:
        """The steps, the one-``action`` form as a chain of one step named ``main``."""
        if self.action is not None:
            return [Step(id="main", action=self.action)]
        return list(self.steps)

    @property
    def effective_approval(self) -> Approval:
        return self.approval or Approval()


class KpiPolicy(_Strict):
    api_version: Literal["assure/v1"] = Field(alias="apiVersion")
    kind: Literal["KpiPolicy"]
    metadata: Metadata
    spec: PolicySpec

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def vnfd(self) -> str | None:
        return self.spec.target.vnfd

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.metadata.labels)
