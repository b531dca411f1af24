"""The condition contract: what the analytics stage evaluates, as the policy stage defines it.

The policy stage turns each condition of a KPI policy into a
:class:`ConditionSpec`; the analytics stage evaluates them and raises
violations that name the policy and the condition. Neither stage imports
the other: this is where they meet.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from bus.contracts import TargetKind

Comparison = Literal[">", ">=", "<", "<="]
Aggregate = Literal["avg", "max", "min", "sum"]


class ConditionSpec(msgspec.Struct, frozen=True):
    """One condition of one policy."""

    policy: str
    """The policy's name (``metadata.name``)."""
    name: str
    """The condition's name, unique within its policy."""
    kind: Literal["threshold", "absent"]
    """``threshold``: a KPI compared with a threshold; ``absent``: a series
    that stopped arriving (missing data, e.g. a VNFC that stopped answering)."""
    kpi: str
    scope: TargetKind
    """``vnf``: aggregated across the VNF's VNFCs; ``vnfc``: each VNFC on its
    own; ``host``: each host."""
    vnfd: str | None = None
    """Only VNF instances of this VNFD (None: every VNF)."""
    aggregate: Aggregate = "avg"
    """How values combine, in every scope. The several series one VNFC (or one
    object on a host) exposes of the KPI, e.g. one per ``device`` label, combine
    into its value; for scope ``vnf`` the per-VNFC values then combine across
    the VNF's VNFCs, and for scope ``host`` the per-object values across the
    host. Series that differ in their ``host`` label alone are one VNFC that
    moved (a migration): the newest of them speaks for it."""
    op: Comparison = ">"
    threshold: float | None = None
    """Required for ``threshold`` conditions."""
    clear: float | None = None
    """The value that must be crossed back for ABATED (hysteresis); defaults
    to ``threshold``. For ``>`` it must be <= threshold, for ``<`` >= threshold."""
    for_s: float = 0.0
    """How long (seconds) the condition must hold before ONSET; for ``absent``,
    how long the series must be silent."""
    labels: dict[str, str] = {}
    """Extra label matchers a sample must carry to count."""

    @property
    def key(self) -> str:
        return f"{self.policy}/{self.name}"


def breaches(op: Comparison, value: float, threshold: float) -> bool:
    """Whether ``value`` breaks ``threshold`` under ``op``."""
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    return value <= threshold


def cleared(op: Comparison, value: float, clear: float) -> bool:
    """Whether ``value`` has crossed back over the clear threshold."""
    if op in (">", ">="):
        return value < clear if op == ">=" else value <= clear
    return value > clear if op == "<=" else value >= clear
