"""Correlation: one host fault, one violation to act on.

When a host breaks (it fails, degrades, saturates), every VNFC on it
breaks too, and acting on each VNFC (healing or scaling once per VM) is
the alarm flood operators learned to dread. A violation of a host-scope
condition firing on a host *explains* the VNFC violations that start on
that host while it fires: they carry its id as ``caused_by``, so the
policy stage records them without acting on them, and acts once, on the
host. A VNFC violation that started before its host's carries none.

Sharded workers share the firing host violations through Redis (the hash
``keys.host_faults()``, written by the host's owner as its events are
published): a VNFC and its host may belong to different workers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from analytics.evaluator import ConditionEvaluator
from bus.contracts import Target, TargetKind, Violation


class HostCauses:
    """The firing host-level violations, by host name."""

    def __init__(self) -> None:
        self._by_condition: dict[str, dict[str, str]] = {}
        self.elsewhere: dict[str, str] = {}
        """Host -> violation id of the host faults other workers own (from Redis)."""

    def refresh(self, evaluators: Iterable[ConditionEvaluator]) -> None:
        """Read the open episodes of the host-scope ones among ``evaluators``."""
        for evaluator in evaluators:
            if evaluator.cond.scope is not TargetKind.HOST:
                continue
            targets = evaluator.index.targets
            self._by_condition[evaluator.cond.key] = {
                targets[i].id: vid for i, vid in evaluator.open_episodes().items()
            }

    def cause_of(self, target: Target) -> str | None:
        """The host violation explaining a violation on ``target`` (a VNFC), if any."""
        if target.kind is not TargetKind.VNFC or target.host is None:
            return None
        found = sorted(
            vid for firing in self._by_condition.values() if (vid := firing.get(target.host))
        )
        if not found and target.host in self.elsewhere:
            return self.elsewhere[target.host]
        return found[0] if found else None


def fault_field(event: Violation) -> str:
    """The field of a host violation in the shared hash: ``<host>|<policy>/<condition>``."""
    return f"{event.target.id}|{event.policy}/{event.condition}"


def faults_by_host(fields: Mapping[str, str]) -> dict[str, str]:
    """The shared hash as host -> violation id (the smallest id when several fire)."""
    out: dict[str, str] = {}
    for field, vid in sorted(fields.items()):
        host = field.partition("|")[0]
        out[host] = min(out.get(host, vid), vid)
    return out
