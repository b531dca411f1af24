"""Replay: recorded KPI history through the detectors, offline, as fast as the CPU allows.

:func:`replay` feeds time-ordered samples to an :class:`~analytics.engine.Engine`
one timestamp at a time, evaluating after each, with the clock at that
timestamp: the same engine, and so the same events, as the running stage
would have produced from those samples. No Redis, no sleeping.

The topology is built from the samples themselves: a VNF instance per
``vnf`` label (of the ``vnfd`` label's VNFD), a VNFC per ``vnfc`` label,
created when its first sample appears and placed on the ``host`` of its
newest sample, and an NS instance per ``ns`` label, made of the VNFs of
the samples that carry it (so conditions of scope ``ns`` have targets).
Every timestamp counts as one scrape of the VNFCs that have a sample at
it, so absence (``kind: absent``) is judged as live,
for the KPIs the history holds: a KPI it has no sample of at all was not
recorded, which says nothing of the VNFCs, so its absence is not judged.

The policy stage's backtest builds on :func:`replay`; ``nfv-assure analytics
replay`` prints its events.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from analytics.engine import Engine
from analytics.feed import ScrapeWindow
from bus.conditions import ConditionSpec
from bus.contracts import SCRAPE_SOURCE, Sample, SampleBatch, Violation
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from mano_core.nfvo.records import NsInstance, NsState, NsVnf


@dataclass
class ReplayResult:
    """What a replay produced."""

    events: list[Violation] = field(default_factory=list)
    """Every ONSET and ABATED, in the order they were raised."""
    samples: int = 0
    """Samples read (of a KPI some condition watches)."""
    evaluations: int = 0
    unjudged: list[str] = field(default_factory=list)
    """Keys of the absence conditions not judged: the history holds none of their KPI."""
    start: float | None = None
    end: float | None = None


class _TopologyFromSamples:
    """VNF instances and VNFCs as the samples reveal them."""

    def __init__(self) -> None:
        self.vnfs: dict[str, VnfInstance] = {}
        self.network_services: dict[str, NsInstance] = {}
        self.ns_changed = False
        """Whether :meth:`note` added an NS instance or a VNF to one."""

    def note(self, samples: Sequence[Sample]) -> dict[str, VnfInstance | None]:
        changed: dict[str, VnfInstance | None] = {}
        self.ns_changed = False
        for sample in samples:
            labels = sample.labels
            vnf_id, vnfc_id = labels.get("vnf"), labels.get("vnfc")
            if not vnf_id or not vnfc_id:
                continue
            ns_id = labels.get("ns")
            if ns_id:
                self._note_ns(ns_id, vnf_id, labels.get("vnfd", ""), sample.ts)
            vnf = self.vnfs.get(vnf_id)
            if vnf is None:
                vnf = VnfInstance(
                    id=vnf_id, name=vnf_id, vnfd_id=labels.get("vnfd", ""), vim="replay",
                    state=InstantiationState.INSTANTIATED, scale_levels={}, vnfcs=[],
                    created_at=sample.ts, updated_at=sample.ts,
                )  # fmt: skip
                self.vnfs[vnf_id] = vnf
            vnfc = vnf.vnfc(vnfc_id)
            host = labels.get("host")
            if vnfc is None:
                vnf.vnfcs.append(
                    VnfcInstance(vnfc_id, "", vnfc_id, host, None, None, created_at=sample.ts)
                )
                changed[vnf_id] = vnf
            elif host and vnfc.host != host:
                vnfc.host = host
                changed[vnf_id] = vnf
        return changed

    def _note_ns(self, ns_id: str, vnf_id: str, vnfd: str, ts: float) -> None:
        ns = self.network_services.get(ns_id)
        if ns is None:
            ns = NsInstance(
                id=ns_id, name=ns_id, nsd_id="", nsd_version="", state=NsState.INSTANTIATED,
                created_at=ts, updated_at=ts, vnfs=[],
            )  # fmt: skip
            self.network_services[ns_id] = ns
            self.ns_changed = True
        if vnf_id not in ns.vnf_ids():
            index = sum(v.member == vnfd for v in ns.vnfs)
            ns.vnfs.append(NsVnf(vnfd, index, "replay", "", vnf_id=vnf_id, name=vnf_id))
            self.ns_changed = True


def replay(
    samples: Sequence[Sample],
    conditions: Sequence[ConditionSpec],
    *,
    stale_after_s: float = 15.0,
    on_event: Callable[[Violation], None] | None = None,
) -> ReplayResult:
    """Run time-ordered ``samples`` through ``conditions``; see the module docstring.

    ``on_event`` is called with each event as it is raised (the result
    holds them all too).
    """
    recorded = {sample.kpi for sample in samples}
    judged = [c for c in conditions if not c.watches_silence or c.series_kpi in recorded]
    # Models train inline when due: a replay has no event loop to keep free.
    engine = Engine(judged, stale_after_s=stale_after_s, inline_training=True)
    topology = _TopologyFromSamples()
    result = ReplayResult(unjudged=[c.key for c in conditions if c not in judged])
    watching_since: float | None = None
    for ts, group in itertools.groupby(samples, key=lambda s: s.ts):
        batch = list(group)
        if result.end is not None and ts < result.end:
            raise ValueError(f"samples out of time order: {ts} after {result.end}")
        if watching_since is None:
            watching_since = ts
            result.start = ts
        result.end = ts
        engine.topology.apply(topology.note(batch))
        if topology.ns_changed:
            engine.topology.replace_ns(topology.network_services.values())
        engine.feed.note(SampleBatch(SCRAPE_SOURCE, ts, []))
        result.samples += engine.ingest(batch)
        window = engine.feed.window(ts)
        if window is not None:
            window = ScrapeWindow(since=max(window.since, watching_since), until=window.until)
        events = engine.evaluate(ts, window).events
        result.evaluations += 1
        for event in events:
            if on_event is not None:
                on_event(event)
        result.events.extend(events)
    return result
