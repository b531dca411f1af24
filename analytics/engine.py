"""The evaluation engine: samples in, ONSET/ABATED events out, with no I/O of its own.

:class:`Engine` keeps the windows of every series the conditions read (one
:class:`~analytics.table.SeriesTable` per KPI), the topology, and one
:class:`~analytics.evaluator.ConditionEvaluator` per condition. The
analytics service feeds it from the samples stream and publishes what it
returns; the replay (:mod:`analytics.replay`) feeds it recorded history as
fast as the CPU allows. Both get the same events from the same samples.

Evaluation order: host-scope conditions first, so that a VNFC violation
starting in the same evaluation as a violation of its host finds it and
carries it as ``caused_by`` (:mod:`analytics.correlation`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from analytics.anomaly import AnomalyJudge, ModelStore
from analytics.archive import Kept, SampleArchive
from analytics.codes import Codes
from analytics.correlation import HostCauses
from analytics.evaluator import ConditionEvaluator
from analytics.feed import ScrapeFeed, ScrapeWindow
from analytics.ownership import Ownership
from analytics.readings import FunctionCache
from analytics.routing import Route, Routes
from analytics.state import DetectorState, StateKey
from analytics.table import NO_CODE, SeriesTable
from analytics.topology import Topology
from analytics.validate import check_conditions
from bus.conditions import AnomalySpec, ConditionSpec
from bus.contracts import Sample, SeriesDef, TargetKind, Violation
from bus.sample_view import SampleView

CacheKey = tuple[str, str, float, float | None]


def model_key(cond: ConditionSpec) -> str:
    """The anomaly model a condition uses: one per KPI and VNFD."""
    return f"{cond.series_kpi}|{cond.vnfd or '*'}"


@dataclass
class Pass:
    """The events and state changes of one evaluation (applied once all succeeded)."""

    now: float
    events: list[Violation] = field(default_factory=list)
    changes: dict[StateKey, DetectorState | None] = field(default_factory=dict)


class Engine:
    """Evaluates conditions over the windows of their series; see the module docstring."""

    def __init__(
        self,
        conditions: Sequence[ConditionSpec],
        *,
        stale_after_s: float = 15.0,
        max_samples: int = 512,
        inline_training: bool = False,
    ) -> None:
        check_conditions(conditions)
        self.conditions = tuple(conditions)
        self.stale_after_s = stale_after_s
        self.codes = Codes()
        self.topology = Topology(self.codes)
        self.feed = ScrapeFeed(stale_after_s)
        self.tables: dict[str, SeriesTable] = {}
        keep: dict[str, float] = {}
        for cond in self.conditions:
            keep[cond.series_kpi] = max(keep.get(cond.series_kpi, 0.0), cond.range_s)
        for kpi, keep_s in keep.items():
            self.tables[kpi] = SeriesTable(kpi, self.codes, keep_s=keep_s, max_capacity=max_samples)
        self._caches: dict[CacheKey, FunctionCache] = {}
        self.inline_training = inline_training
        self.models: dict[str, ModelStore] = {}
        """The anomaly models, by ``<kpi>|<vnfd>`` (one per KPI and VNFD)."""
        self._anomaly: list[AnomalyJudge] = []
        self.causes = HostCauses()
        ordered = sorted(self.conditions, key=lambda c: c.scope is not TargetKind.HOST)
        self.evaluators = [self._evaluator(cond) for cond in ordered]
        silent_for = [c.for_s for c in self.conditions if c.watches_silence]
        ranges = [c.range_s for c in self.conditions]
        self.lookback_s = max([stale_after_s, *silent_for, *ranges])
        """How far back a sample can change an outcome: stale for values,
        silent longer than any absence's for_s, out of every window."""
        # Series silent for longer than this are forgotten.
        self.retention_s = 2 * self.lookback_s
        self.has_silence = bool(silent_for)
        self.ownership: Ownership | None = None
        self.host_kpis = frozenset(
            c.series_kpi for c in self.conditions if c.scope is TargetKind.HOST
        )
        self._routes = Routes()
        self._routed_for = 0
        self.samples_ingested = 0
        """Samples taken in (of a watched KPI)."""
        self.archive: SampleArchive | None = None
        """Where the samples kept go too (the stage's per-shard history in Redis)."""

    def _evaluator(self, cond: ConditionSpec) -> ConditionEvaluator:
        table = self.tables[cond.series_kpi]
        cache = None
        if not cond.watches_silence:
            function = "increase" if cond.function == "histogram_quantile" else cond.function
            key: CacheKey = (cond.series_kpi, function, cond.range_s, cond.quantile)
            cache = self._caches.get(key)
            if cache is None:
                cache = self._caches[key] = FunctionCache(
                    table, function, cond.range_s, cond.quantile
                )
        causes = self.causes.cause_of if cond.scope is TargetKind.VNFC else None
        judge = None
        if cond.kind == "anomaly":
            name = model_key(cond)
            store = self.models.setdefault(name, ModelStore(name))
            store.local = self.inline_training
            judge = AnomalyJudge(cond, store)
            judge.inline_training = self.inline_training
            self._anomaly.append(judge)
        return ConditionEvaluator(
            cond,
            table,
            cache,
            topology=self.topology,
            codes=self.codes,
            stale_after_s=self.stale_after_s,
            judge=judge,
            causes=causes,
        )

    # --- input ------------------------------------------------------------
    def ingest(self, samples: Iterable[Sample], shards: frozenset[int] | None = None) -> int:
        """Take in samples (any order) the owned shards (or ``shards``) need.

        Returns how many were of a watched KPI and needed.
        """
        by_kpi: dict[str, tuple[list[int], list[float], list[float], list[Mapping[str, str]]]] = {}
        tables = self.tables
        for sample in samples:
            table = tables.get(sample.kpi)
            if table is None or (self.ownership is not None and not self.wants(sample, shards)):
                continue
            rows, ts, values, labels = by_kpi.setdefault(sample.kpi, ([], [], [], []))
            rows.append(table.row(sample.labels))
            ts.append(sample.ts)
            values.append(sample.value)
            labels.append(sample.labels)
        kept = 0
        for kpi, (rows, ts, values, labels) in by_kpi.items():
            tables[kpi].append(
                np.asarray(rows, dtype=np.int64),
                np.asarray(ts, dtype=np.float64),
                np.asarray(values, dtype=np.float64),
                labels,
            )
            kept += len(rows)
        self.samples_ingested += kept
        return kept

    def ingest_view(
        self, view: SampleView, shards: frozenset[int] | None = None, *, archive: bool = True
    ) -> int:
        """Take in a resolved batch by its arrays (the stage's path; see :meth:`ingest`).

        Each series id is routed once to its table row and the owned shards
        that need it (or to nothing: a KPI no condition reads, or a series
        of another worker's shards); later batches find their samples'
        routes with one vectorised look-up (:mod:`analytics.routing`).
        ``shards``: keep only what those shards need (a takeover).
        The samples kept go to the :attr:`archive` too, unless ``archive``
        is false (samples read back from it).
        """
        generation = self.ownership.generation if self.ownership is not None else 0
        if generation != self._routed_for:
            self._routes.clear()
            self._routed_for = generation
        ids = np.frombuffer(view.ids, dtype=np.uint64) if len(view.ids) else np.empty(0, np.uint64)
        if not len(ids):
            return 0
        counts = np.frombuffer(view.runs[0], dtype=np.uint32)
        times = np.frombuffer(view.runs[1], dtype=np.float64)
        ts = np.repeat(times, counts)
        values = np.frombuffer(view.values, dtype=np.float64)
        # A takeover routes for its shards alone, and does not disturb the cache.
        routes = self._routes if shards is None or self.ownership is None else Routes()
        tables = list(self.tables.values())
        routed = routes.route(ids, lambda sid: self._route(view.defs[sid], tables, shards))
        which, rows = routed.table, routed.row
        kept = 0
        for t, table in enumerate(tables):
            sel = np.flatnonzero(which == t)
            if len(sel):
                labels = _LabelsOf(view.defs, ids[sel])
                table.append(rows[sel], ts[sel], values[sel], labels, routed.host[sel])
                kept += len(sel)
        if kept and archive and self.archive is not None:
            sel = np.flatnonzero(which >= 0)
            shard = routed.owner[sel]
            if routed.extra:  # samples some other owned shard needs too (a host's, an NS's)
                more = np.asarray(routed.extra, dtype=np.int64)
                sel, shard = np.r_[sel, more[:, 0]], np.r_[shard, more[:, 1]]
            self.archive.add(Kept(shard, ids[sel], ts[sel], values[sel], which[sel], rows[sel]))
        self.samples_ingested += kept
        return kept

    def _route(
        self,
        definition: SeriesDef,
        tables: list[SeriesTable],
        shards: frozenset[int] | None = None,
    ) -> Route:
        table = self.tables.get(definition.kpi)
        if table is None:
            return Route(-1, -1, (), NO_CODE)
        if self.ownership is None:
            owners: tuple[int, ...] = (0,)
        else:
            host_kpi = definition.kpi in self.host_kpis
            owners = self.ownership.shards_for(definition.labels, host_kpi, shards)
            if not owners:
                return Route(-1, -1, (), NO_CODE)
        host = table.host_code(definition.labels)
        return Route(tables.index(table), table.row(definition.labels), owners, host)

    def load(self, states: Mapping[StateKey, DetectorState]) -> None:
        """Resume the open episodes persisted by an earlier worker (of owned targets)."""
        by_key = {e.cond.key: e for e in self.evaluators}
        for (cond_key, _), state in states.items():
            evaluator = by_key.get(cond_key)
            # Conditions no longer configured, and others' shards, are left alone.
            if evaluator is not None and evaluator.owns(state.target):
                evaluator.load(state)
        self.causes.refresh(self.evaluators)

    def own(self, ownership: Ownership) -> None:
        """Evaluate only the targets of ``ownership``'s shards from now on."""
        self.ownership = ownership
        for evaluator in self.evaluators:
            evaluator.ownership = ownership

    def forget_unowned(self) -> int:
        """Drop, without events, the episodes of targets in shards given up."""
        dropped = sum(e.forget_unowned() for e in self.evaluators)
        self.causes.refresh(self.evaluators)
        return dropped

    def wants(self, sample: Sample, shards: frozenset[int] | None = None) -> bool:
        """Whether the owned shards (or ``shards``) need ``sample``."""
        if self.ownership is None:
            return True
        return self.ownership.wants(sample.labels, sample.kpi in self.host_kpis, shards)

    # --- evaluation --------------------------------------------------------
    def evaluate(self, now: float, window: ScrapeWindow | None) -> Pass:
        """Evaluate every condition at ``now``; ``window``: where absence is judged."""
        result = Pass(now)
        for evaluator in self.evaluators:
            outcome = evaluator.evaluate(now, window)
            result.events.extend(outcome.events)
            for target_key, state in outcome.changes.items():
                result.changes[(evaluator.cond.key, target_key)] = state
            if evaluator.cond.scope is TargetKind.HOST:
                self.causes.refresh([evaluator])
        return result

    def training_due(self, now: float) -> list[tuple[ModelStore, AnomalySpec]]:
        """The anomaly models due for training now (each once, with its condition's settings)."""
        due: dict[str, tuple[ModelStore, AnomalySpec]] = {}
        for judge in self._anomaly:
            if judge.store.key not in due and judge.store.due(now, judge.spec):
                due[judge.store.key] = (judge.store, judge.spec)
        return list(due.values())

    def prune(self, now: float) -> int:
        """Forget series silent longer than any condition can look back; returns how many."""
        pruned = sum(table.prune(now - self.retention_s) for table in self.tables.values())
        if pruned:
            self._routes.clear()  # freed rows may be reused by other series
        return pruned

    def nbytes(self) -> int:
        """Memory held by the windows."""
        return sum(table.nbytes() for table in self.tables.values())


class _LabelsOf:
    """The labels of each sample of a batch, by position (looked up when asked for)."""

    def __init__(self, defs: Mapping[int, SeriesDef], ids: npt.NDArray[np.uint64]) -> None:
        self._defs = defs
        self._ids = ids

    def __getitem__(self, i: int) -> Mapping[str, str]:
        return self._defs[int(self._ids[i])].labels
