"""Backtest: what the policies would have decided about recorded KPI history.

:func:`backtest` takes the samples of the history and the ONSET and ABATED
events a replay of it raised (``analytics.replay``), and runs the events
through the closed loop (:class:`~policy.offline.OfflineLoop`) on the
events' own timestamps: cooldowns, frequency limits, stabilisation and
blackout windows, verify windows and approval timeouts are all counted in
the history's time. Nothing touches a VIM:

- the VNF instances are those the samples reveal (a VNF per ``vnf``
  label of the ``vnfd`` label's VNFD, a VNFC per ``vnfc`` label, on its
  newest ``host``; its VDU is the ``vdu`` label, else the VNFD's only VDU);
- every approved decision's operation completes the moment it is decided,
  and changes nothing but the VNF's VNFC count: a scale-out adds
  placeholder VNFCs, a scale-in removes the newest, so the VNFD's bounds
  apply to later steps. Its effect on the KPIs is left out (the history
  is what it is), so a violation that held on in the history makes the
  loop verify, find it unrecovered and take its next step, as it would
  have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bus.contracts import Action, Decision, OpResult, OpState, Sample, Violation
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from mano_core.vnfd import Vnfd
from policy.offline import MemoryWorld, OfflineLoop
from policy.plans import aspect_vdu
from policy.schema import KpiPolicy
from policy.state import Episode

PLACEHOLDER = "backtest"
"""The server id of a VNFC a backtest's scale-out added (it has no samples)."""


@dataclass
class BacktestResult:
    decisions: list[Decision] = field(default_factory=list)
    """Every decision in the order it was taken; a decision queued and later
    approved appears at each verdict, under the same id."""
    episodes: list[Episode] = field(default_factory=list)
    """Every episode: those that closed, then those still open at the end."""
    events: int = 0
    start: float | None = None
    end: float | None = None


class SampledVnfs:
    """The VNF instances of the history, as far as it has been read, with the scales decided."""

    def __init__(self, vnfds: Sequence[Vnfd]) -> None:
        self.world = MemoryWorld(vnfds={v.id: v for v in vnfds})
        self._removed: set[str] = set()
        self._added = 0

    def note(self, sample: Sample) -> None:
        labels = sample.labels
        vnf_id, vnfc_id, host = labels.get("vnf"), labels.get("vnfc"), labels.get("host")
        if host:
            self.world.hosts.add(host)
        if not vnf_id or not vnfc_id or vnfc_id in self._removed:
            return
        vnf = self.world.vnfs.get(vnf_id)
        if vnf is None:
            vnf = VnfInstance(
                id=vnf_id, name=vnf_id, vnfd_id=labels.get("vnfd", ""), vim="backtest",
                state=InstantiationState.INSTANTIATED, scale_levels={}, vnfcs=[],
                created_at=sample.ts, updated_at=sample.ts,
            )  # fmt: skip
            self.world.vnfs[vnf_id] = vnf
        vnfc = vnf.vnfc(vnfc_id)
        if vnfc is None:
            vdu = labels.get("vdu") or self._only_vdu(vnf)
            vnf.vnfcs.append(VnfcInstance(vnfc_id, vdu, vnfc_id, host, None, None, sample.ts))
            self._levels(vnf)
        elif host and vnfc.host != host:
            vnfc.host = host

    def apply(self, decision: Decision, now: float) -> None:
        """What the decision's operation leaves: more or fewer VNFCs of the scaled VDU."""
        vnf = self.world.vnfs.get(decision.target.vnf or decision.target.id)
        vnfd = None if vnf is None else self.world.vnfds.get(vnf.vnfd_id)
        aspect_id = decision.parameters.get("aspect")
        if vnf is None or vnfd is None or not isinstance(aspect_id, str):
            return
        try:
            vdu, per_step = aspect_vdu(vnfd.aspect(aspect_id))
        except KeyError:
            return
        count = int(decision.parameters.get("steps", 1)) * per_step
        if decision.action is Action.SCALE_OUT:
            for _ in range(count):
                self._added += 1
                name = f"{vnf.id}-{PLACEHOLDER}-{self._added}"
                vnf.vnfcs.append(VnfcInstance(name, vdu, PLACEHOLDER, None, None, None, now))
        elif decision.action is Action.SCALE_IN:
            newest = sorted(vnf.vnfcs_of(vdu), key=lambda c: c.created_at)[-count:]
            self._removed.update(c.id for c in newest)
            vnf.vnfcs = [c for c in vnf.vnfcs if c.id not in self._removed]
        self._levels(vnf)

    def _only_vdu(self, vnf: VnfInstance) -> str:
        vnfd = self.world.vnfds.get(vnf.vnfd_id)
        return vnfd.vdus[0].id if vnfd is not None and len(vnfd.vdus) == 1 else ""

    def _levels(self, vnf: VnfInstance) -> None:
        """Each aspect's scale level as the VNFC count says (its VDU's minimum is level 0)."""
        vnfd = self.world.vnfds.get(vnf.vnfd_id)
        if vnfd is None:
            return
        for aspect in vnfd.scaling_aspects:
            vdu, per_step = aspect_vdu(aspect)
            above = len(vnf.vnfcs_of(vdu)) - vnfd.vdu(vdu).min_instances
            vnf.scale_levels[aspect.id] = min(aspect.max_scale_level, max(0, above // per_step))


class _Backtest:
    def __init__(self, samples: Sequence[Sample], loop: OfflineLoop, vnfs: SampledVnfs) -> None:
        self._samples = samples
        self._read = 0
        self.loop = loop
        self.vnfs = vnfs
        self.decisions: list[Decision] = []

    def read_until(self, at: float) -> None:
        while self._read < len(self._samples) and self._samples[self._read].ts <= at:
            self.vnfs.note(self._samples[self._read])
            self._read += 1

    async def advance(self, until: float) -> None:
        """Every follow-up due up to ``until``, each at its own time."""

        async def tick(at: float) -> list[Decision]:
            self.read_until(at)
            return await self.settle(await self.loop.tick(at), at)

        await self.loop.run_until(until, tick)
        self.read_until(until)

    async def settle(self, decisions: list[Decision], now: float) -> list[Decision]:
        """Record decisions; each approved one's operation completes at once."""
        pending = list(decisions)
        while pending:
            decision = pending.pop(0)
            self.decisions.append(decision)
            if not decision.approved:
                continue
            self.vnfs.apply(decision, now)
            done = OpResult(
                op_id=f"{PLACEHOLDER}-{decision.id}", decision_id=decision.id,
                vnf=decision.target.vnf or "", operation=decision.action.value.upper(),
                action=decision.action, target=decision.target, state=OpState.COMPLETED,
                started_at=now, finished_at=now, request_id=decision.request_id,
            )  # fmt: skip
            pending.extend(await self.loop.result(done, now))
        return decisions


async def backtest(
    samples: Sequence[Sample],
    events: Sequence[Violation],
    policies: Sequence[KpiPolicy],
    vnfds: Sequence[Vnfd],
    *,
    max_concurrent: int = 0,
    max_concurrent_per_host: int = 0,
) -> BacktestResult:
    """The decisions ``policies`` take about ``events`` raised from ``samples``.

    ``samples`` and ``events`` are in time order; see the module docstring.
    """
    vnfs = SampledVnfs(vnfds)
    loop = OfflineLoop(
        policies,
        vnfs.world,
        max_concurrent=max_concurrent,
        max_concurrent_per_host=max_concurrent_per_host,
    )
    run = _Backtest(samples, loop, vnfs)
    for event in events:
        await run.advance(event.at)
        await run.settle(await loop.violation(event, event.at), event.at)
    end = samples[-1].ts if samples else None
    if end is not None:
        await run.advance(end)
    closed = {e.id for e in loop.closed}
    still_open = [
        e for s in loop.states.values() for e in s.episodes.values() if e.id not in closed
    ]
    return BacktestResult(
        decisions=run.decisions,
        episodes=[*loop.closed, *still_open],
        events=len(events),
        start=samples[0].ts if samples else None,
        end=end,
    )


__all__ = ["BacktestResult", "SampledVnfs", "backtest"]
