"""The conditions the analytics stage must evaluate, taken from the loaded policies."""

from __future__ import annotations

from collections.abc import Iterable

from bus.conditions import ConditionSpec
from bus.contracts import TargetKind
from policy.schema import Condition, KpiPolicy


def conditions_of(policies: Iterable[KpiPolicy]) -> list[ConditionSpec]:
    """One :class:`ConditionSpec` per condition of each policy, in policy order."""
    return [condition_spec(p, c) for p in policies for c in p.spec.conditions]


def condition_spec(policy: KpiPolicy, condition: Condition) -> ConditionSpec:
    """The bus form of one condition of ``policy``."""
    scope = TargetKind(condition.scope)
    return ConditionSpec(
        policy=policy.name,
        name=condition.name,
        kind=condition.kind,
        kpi=condition.kpi,
        scope=scope,
        # Host series carry no VNFD label: filtering them by VNFD would hide
        # every host. The engine narrows a host violation to the policy's
        # VNFD when it picks the VNFCs on that host.
        vnfd=None if scope is TargetKind.HOST else policy.vnfd,
        aggregate=condition.aggregate or "avg",
        op=condition.op or ">",
        threshold=condition.threshold,
        clear=condition.clear,
        for_s=condition.for_s,
        labels=dict(condition.labels),
    )
