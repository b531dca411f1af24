"""One condition evaluated on all its targets at once: readings, judgement, episodes, events.

:class:`ConditionEvaluator` owns a condition's targets (stable indices),
their episodes (:mod:`analytics.episodes`) and what is needed to explain
each event. Each :meth:`~ConditionEvaluator.evaluate` reads every present
target's value (:mod:`analytics.readings`), lets the detector judge it
(:mod:`analytics.judges`), steps the episodes, and returns the events and
the state changes to persist. Nothing here touches Redis.

Targets this evaluation did not see: a VNF or VNFC missing from the
inventory is gone for good, so its firing episode abates (nothing would
ever clear it otherwise); a host simply sent no fresh data, so it stays
FIRING. A PENDING episode of either resets.

Absence (``absent``, ``stale``): a VNFC that scrape batches went without
for ``for_s`` (see :mod:`analytics.feed`) fires at once, its episode
started when the silence began, and abates when a sample newer than that
arrives. ``stale`` watches only VNFCs that did send the KPI; for ``absent``,
the silence of a VNFC that never sent it begins ``startup_s`` after its
creation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from analytics.aggregate import grouped
from analytics.codes import Codes
from analytics.episodes import FIRING, IDLE, PENDING, Episodes, Transitions
from analytics.events import Explainer
from analytics.feed import ScrapeWindow
from analytics.judges import Judge, judge_for
from analytics.membership import LabelFilter, Membership, TargetIndex, build
from analytics.ownership import Ownership
from analytics.readings import FunctionCache, ReadingBuilder, Readings
from analytics.state import DetectorState, Phase, violation_id
from analytics.table import Floats, Ints, SeriesTable
from analytics.topology import Topology
from bus.conditions import ConditionSpec
from bus.contracts import Evidence, Target, TargetKind, Violation, ViolationStatus

Causes = Callable[[Target], str | None]
"""Which violation, if any, explains an ONSET on a target (see :mod:`analytics.correlation`)."""


@dataclass
class Outcome:
    """The events of one evaluation of one condition, and the states to persist."""

    events: list[Violation] = field(default_factory=list)
    changes: dict[str, DetectorState | None] = field(default_factory=dict)
    """Target key -> its new state (None: no open episode any more)."""


@dataclass
class _Open:
    """A FIRING episode: what its events share."""

    violation_id: str
    since: float
    onset_at: float
    caused_by: str | None = None


class ConditionEvaluator:
    """Evaluates one condition; see the module docstring."""

    def __init__(
        self,
        cond: ConditionSpec,
        table: SeriesTable,
        cache: FunctionCache | None,
        *,
        topology: Topology,
        codes: Codes,
        stale_after_s: float,
        judge: Judge | None = None,
        causes: Causes | None = None,
    ) -> None:
        self.cond = cond
        self.table = table
        self.topology = topology
        self.codes = codes
        self.stale_after_s = stale_after_s
        self.index = TargetIndex()
        self.episodes = Episodes(
            for_s=0.0 if cond.watches_silence else cond.for_s,
            clear_for_s=cond.clear_for_s,
            n_of_m=cond.n_of_m,
        )
        self.judge = judge or (None if cond.watches_silence else judge_for(cond))
        self.causes = causes
        self._builder = ReadingBuilder(cond, table, cache)
        self._labels = LabelFilter(cond.labels)
        self._explain = Explainer(cond, table, self.judge.name if self.judge else cond.kind)
        self._open: dict[int, _Open] = {}
        self._built: tuple[int, int, int] | None = None
        self.ownership: Ownership | None = None
        """The shards this worker owns (None: everything)."""
        self._membership: Membership | None = None
        self.last_readings: Readings | None = None

    # --- membership --------------------------------------------------------
    def membership(self) -> Membership:
        shards = self.ownership.generation if self.ownership is not None else 0
        key = (self.table.membership, self.topology.generation, shards)
        if self._membership is None or self._built != key:
            self._membership = build(
                self.cond,
                self.table,
                topology=self.topology,
                codes=self.codes,
                index=self.index,
                labels=self._labels,
                ownership=self.ownership,
            )
            self._builder.rebuilt(self._membership)
            self._built = key
        return self._membership

    # --- restart ------------------------------------------------------------
    def load(self, state: DetectorState) -> None:
        """Resume an open episode persisted by an earlier worker."""
        idx = self.index.index(state.target)
        self.episodes.ensure(len(self.index))
        ep = self.episodes
        ep.phase[idx] = FIRING if state.phase is Phase.FIRING else PENDING
        ep.since[idx] = state.since
        ep.onset_at[idx] = np.nan if state.onset_at is None else state.onset_at
        ep.seen[idx] = -np.inf if state.seen is None else state.seen
        ep.history[idx] = state.history
        ep.clear_since[idx] = np.nan if state.clear_since is None else state.clear_since
        if state.phase is Phase.FIRING:
            vid = state.violation_id or violation_id(self.cond.key, state.target, state.since)
            onset = state.onset_at if state.onset_at is not None else state.since
            self._open[idx] = _Open(vid, state.since, onset, state.caused_by)

    def owns(self, target: Target) -> bool:
        """Whether ``target`` is in one of this worker's shards."""
        o = self.ownership
        if o is None:
            return True
        if target.kind is TargetKind.HOST:
            return o.owns_host(target.id)
        if target.kind is TargetKind.NS:
            return o.owns_ns(target.id)
        return target.vnf is not None and o.owns_vnf(target.vnf)

    def forget_unowned(self) -> int:
        """Drop, without events, the episodes of targets no longer owned; returns how many."""
        active = np.flatnonzero(self.episodes.phase[: len(self.index)] != IDLE)
        gone = [i for i in active.tolist() if not self.owns(self.index.targets[i])]
        self.episodes.reset(np.asarray(gone, dtype=np.int64))
        for idx in gone:
            self._open.pop(idx, None)
        return len(gone)

    def open_episodes(self) -> dict[int, str]:
        """Target index -> violation id of every FIRING episode."""
        return {idx: o.violation_id for idx, o in self._open.items()}

    def state_of(self, idx: int) -> DetectorState | None:
        """The persisted form of target ``idx``'s episode (None: idle)."""
        ep = self.episodes
        phase = int(ep.phase[idx])
        if phase == IDLE:
            return None
        opened = self._open.get(idx)
        return DetectorState(
            condition=self.cond.key,
            target=self.index.targets[idx],
            phase=Phase.FIRING if phase == FIRING else Phase.PENDING,
            since=float(ep.since[idx]),
            violation_id=opened.violation_id if opened else None,
            onset_at=opened.onset_at if opened else None,
            seen=None if not np.isfinite(ep.seen[idx]) else float(ep.seen[idx]),
            history=int(ep.history[idx]),
            clear_since=None if np.isnan(ep.clear_since[idx]) else float(ep.clear_since[idx]),
            caused_by=opened.caused_by if opened else None,
        )

    # --- evaluation ---------------------------------------------------------
    def evaluate(self, now: float, window: ScrapeWindow | None) -> Outcome:
        """One evaluation at ``now``; ``window``: where absence is judged (None: suspended)."""
        m = self.membership()
        self.episodes.ensure(len(self.index))
        out = Outcome()
        present = m.present
        if self.cond.watches_silence:
            if window is not None:
                self._silences(m, present, window, now, out)
        else:
            readings = self._builder.readings(m, now, self.stale_after_s)
            self.last_readings = readings
            assert self.judge is not None
            judged = self.judge.judge(present, readings, now)
            step = self.episodes.step(present, judged.holds, judged.cleared, readings.at, now)
            self._emit(step, m, readings, signal=judged.signal, now=now, out=out)
        self._unseen(present, now, out)
        return out

    def _silences(
        self, m: Membership, present: Ints, window: ScrapeWindow, now: float, out: Outcome
    ) -> None:
        if not len(present):
            return
        last = np.full(len(present), np.nan)
        last[m.obj_tgt] = grouped("max", m.row_obj, self.table.last[m.rows], m.n_obj)
        created = np.asarray(m.created_at, dtype=np.float64)
        never_sent = np.isnan(last)
        # A VNFC that never sent the KPI is still starting for startup_s after its creation.
        created = np.where(never_sent, created + self.cond.startup_s, created)
        began = np.fmax(np.fmax(created, window.since), last)
        silent = window.until - began
        phase = self.episodes.phase[present]
        since = self.episodes.since[present]
        returned = np.flatnonzero((phase == FIRING) & (last > since))
        start = (phase == IDLE) & (silent >= self.cond.for_s)
        if self.cond.kind == "stale":
            start &= ~np.isnan(last)
        starting = np.flatnonzero(start)
        for pos in returned.tolist():
            idx = int(present[pos])
            self._abate(idx, now, self._explain.returned(float(since[pos]), now), out)
        self.episodes.reset(present[returned])
        self.episodes.fire(present[starting], began[starting], now)
        for pos in starting.tolist():
            idx = int(present[pos])
            evidence = self._explain.silent(
                float(began[pos]), now, never_sent=bool(never_sent[pos])
            )
            self._onset(idx, float(began[pos]), now, evidence, out)
        for idx in present[np.r_[returned, starting]].tolist():
            out.changes[self.index.targets[idx].key()] = self.state_of(idx)

    def _emit(
        self,
        step: Transitions,
        m: Membership,
        readings: Readings,
        *,
        signal: Floats,
        now: float,
        out: Outcome,
    ) -> None:
        if not len(step.changed):
            return
        changed = np.concatenate([step.onset, step.abated])
        where = np.searchsorted(np.sort(m.present), changed)
        order = np.argsort(m.present)
        position = dict(zip(changed.tolist(), order[where].tolist(), strict=True))
        for idx in step.abated.tolist():
            pos = position[idx]
            opened = self._open.get(idx)
            since = opened.since if opened else now
            evidence = self._explain.reading(
                ViolationStatus.ABATED, m, readings, pos=pos, signal=float(signal[pos]),
                since=since, now=now, judge=self._judge(),
            )  # fmt: skip
            self._abate(idx, now, evidence, out)
        for idx in step.onset.tolist():
            pos = position[idx]
            since = float(self.episodes.since[idx])
            evidence = self._explain.reading(
                ViolationStatus.ONSET, m, readings, pos=pos, signal=float(signal[pos]),
                since=since, now=now, judge=self._judge(),
            )  # fmt: skip
            self._onset(idx, since, now, evidence, out)
        for idx in step.changed.tolist():
            out.changes[self.index.targets[idx].key()] = self.state_of(idx)

    def _unseen(self, present: Ints, now: float, out: Outcome) -> None:
        ep = self.episodes
        seen = np.zeros(len(self.index), dtype=np.bool_)
        seen[present] = True
        unseen = np.flatnonzero((ep.phase[: len(self.index)] != IDLE) & ~seen)
        if not len(unseen):
            return
        ends = np.asarray(
            [self.index.targets[i].kind is not TargetKind.HOST for i in unseen.tolist()],
            dtype=np.bool_,
        )
        for idx in unseen[(ep.phase[unseen] == FIRING) & ends].tolist():
            opened = self._open.get(idx)
            since = opened.since if opened else now
            self._abate(idx, now, self._explain.gone(self.index.targets[idx], since, now), out)
        step = ep.drop_unseen(unseen, ends)
        for idx in step.changed.tolist():
            out.changes[self.index.targets[idx].key()] = None

    # --- events ---------------------------------------------------------------
    def _judge(self) -> Judge:
        assert self.judge is not None, "value conditions have a judge"
        return self.judge

    def _onset(self, idx: int, since: float, now: float, evidence: Evidence, out: Outcome) -> None:
        target = self.index.targets[idx]
        cause = self.causes(target) if self.causes is not None else None
        opened = _Open(violation_id(self.cond.key, target, since), since, now, cause)
        self._open[idx] = opened
        out.events.append(
            self._explain.violation(
                target,
                opened.violation_id,
                ViolationStatus.ONSET,
                evidence,
                started_at=since,
                now=now,
                caused_by=cause,
            )
        )

    def _abate(self, idx: int, now: float, evidence: Evidence, out: Outcome) -> None:
        opened = self._open.pop(idx, None)
        if opened is None:  # FIRING without a known id cannot happen; nothing to send
            return
        target = self.index.targets[idx]
        out.events.append(
            self._explain.violation(
                target,
                opened.violation_id,
                ViolationStatus.ABATED,
                evidence,
                started_at=opened.since,
                now=now,
                caused_by=opened.caused_by,
            )
        )
