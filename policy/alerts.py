"""Which policies an Alertmanager alert triggers.

An alert triggers a policy whose ``spec.trigger`` matches its labels
(:meth:`~policy.schema.AlertTrigger.matches`) and whose VNFD (when it names
one) is that of the VNF the alert is about. An alert about a host names no VNF: it triggers
every policy whose trigger matches, and the policy stage then acts on that
policy's VNFCs on the host.
"""

from __future__ import annotations

from collections.abc import Iterable

from policy.schema import AlertTrigger, KpiPolicy


def triggered_by(
    policies: Iterable[KpiPolicy], labels: dict[str, str], vnfd: str | None
) -> list[KpiPolicy]:
    """The policies an alert with ``labels``, about a VNF of ``vnfd`` (None: a host), triggers."""
    return [
        policy
        for policy in policies
        if isinstance(policy.spec.trigger, AlertTrigger)
        and policy.spec.trigger.matches(labels)
        and (vnfd is None or policy.vnfd is None or policy.vnfd == vnfd)
    ]
