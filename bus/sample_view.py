"""Reading sample batches of either form: :class:`SeriesResolver` and its :class:`SampleView`.

Consumers hand every batch of the samples stream, labelled (``samples.v1``)
or packed (``samples.v2``, :mod:`bus.packing`), to a resolver and get a view:
the packed arrays plus the definition of each series id, learned from the
batch itself or looked up in the registry (:mod:`bus.series`).
"""

from __future__ import annotations

import logging
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import repeat
from typing import Any

from bus.contracts import ContractError, PackedBatch, Sample, SampleBatch, Samples, SeriesDef
from bus.keys import Keys
from bus.packing import Columns, from_wire
from bus.series import GENERATION_S, SeriesRegistry, series_id
from bus.streams import read_all

log = logging.getLogger(__name__)


class SampleView:
    """One batch, resolved: its samples as arrays, and what each series id stands for.

    ``ids``, ``values`` and ``timestamps`` are parallel arrays (``'Q'``,
    ``'d'``, ``'d'``), ready for ``numpy.frombuffer``. Samples whose series
    could not be resolved are left out (``unresolved`` counts them).
    Iterating yields :class:`Sample` objects, for consumers that want them.
    """

    __slots__ = (
        "_timestamps",
        "collected_at",
        "collector",
        "complete",
        "defs",
        "ids",
        "new",
        "runs",
        "source",
        "unresolved",
        "values",
    )

    def __init__(
        self,
        source: str,
        collected_at: float,
        *,
        ids: array[int],
        values: array[float],
        runs: tuple[array[int], array[float]],
        defs: Mapping[int, SeriesDef],
        new: list[SeriesDef],
        unresolved: int = 0,
        complete: bool = True,
        collector: str = "",
    ) -> None:
        self.source = source
        self.collected_at = collected_at
        self.complete = complete
        """Whether the batch ends its collection cycle (see :attr:`PackedBatch.complete`)."""
        self.collector = collector
        """Which collector wrote the batch (see :attr:`PackedBatch.collector`)."""
        self.ids = ids
        self.values = values
        self.runs = runs
        """Timestamps as runs: ``(counts, times)``; see :class:`PackedBatch`."""
        self.defs = defs
        """Series id -> definition, for at least every id in ``ids`` (valid until the
        resolver's next :meth:`SeriesResolver.view`: use a view, then drop it)."""
        self.new = new
        """Definitions this resolver had not seen before (or had forgotten)."""
        self.unresolved = unresolved
        self._timestamps: array[float] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def timestamps(self) -> array[float]:
        """One timestamp per sample."""
        if self._timestamps is None:
            out: array[float] = array("d")
            for count, ts in zip(*self.runs, strict=True):
                out.extend(repeat(ts, count))
            self._timestamps = out
        return self._timestamps

    def series(self, sid: int) -> SeriesDef:
        """The definition of series ``sid``."""
        return self.defs[sid]

    def labelled(self) -> SampleBatch:
        """The same samples in the labelled form (for tools, tests and logs)."""
        return SampleBatch(self.source, self.collected_at, list(self))

    def __iter__(self) -> Iterator[Sample]:
        defs = self.defs
        for sid, ts, value in zip(self.ids, self.timestamps, self.values, strict=True):
            d = defs[sid]
            yield Sample(d.kpi, d.labels, ts, value)


class SeriesResolver:
    """Turns sample batches of either form into :class:`SampleView` objects.

    Keeps the definitions it learned (from batches and from the registry);
    one not used for a whole generation (``forget_after_s``, wall time) is
    forgotten, so memory follows the live series, not all that ever were.
    Without a registry, only definitions carried by batches resolve.
    """

    def __init__(
        self,
        registry: SeriesRegistry | None,
        *,
        forget_after_s: float = GENERATION_S,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._forget_after_s = forget_after_s
        self._wall = wall
        self._current: dict[int, SeriesDef] = {}
        self._previous: dict[int, SeriesDef] = {}
        self._swapped_at = wall()
        self.unresolved = 0
        """Samples left out so far because their series could not be resolved."""
        self.looked_up = 0
        """Definitions fetched from the registry so far."""

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    async def view(self, batch: Samples) -> SampleView:
        """``batch`` resolved; raises :class:`ContractError` for a malformed packed batch."""
        self._age()
        if isinstance(batch, SampleBatch):
            return self._view_v1(batch)
        return await self._view_v2(batch)

    def _age(self) -> None:
        now = self._wall()
        if now - self._swapped_at >= self._forget_after_s:
            # Two generations: what was used in the last period survives one more.
            self._previous, self._current = self._current, {}
            self._swapped_at = now

    def _learn(self, defs: Iterable[SeriesDef], new: list[SeriesDef]) -> None:
        current = self._current
        for d in defs:
            known = current.get(d.id) or self._previous.pop(d.id, None)
            if known != d:
                new.append(d)
            current[d.id] = d

    def _view_v1(self, batch: SampleBatch) -> SampleView:
        new: list[SeriesDef] = []
        columns = Columns()
        current = self._current
        for sample in batch.samples:
            sid = series_id(sample.kpi, sample.labels)
            if sid not in current:
                self._learn([SeriesDef(sid, sample.kpi, dict(sample.labels))], new)
            columns.add(sid, sample.value, sample.ts)
        return SampleView(
            batch.source,
            batch.collected_at,
            ids=columns.ids,
            values=columns.values,
            runs=(columns.counts, columns.times),
            defs=current,
            new=new,
        )

    async def _view_v2(self, batch: PackedBatch) -> SampleView:
        ids = from_wire("Q", batch.ids, "ids")
        values = from_wire("d", batch.values, "values")
        counts = from_wire("I", batch.ts_counts, "ts_counts")
        times = from_wire("d", batch.ts_values, "ts_values")
        if len(ids) != len(values) or len(counts) != len(times) or sum(counts) != len(ids):
            raise ContractError(
                f"samples.v2 arrays disagree: {len(ids)} ids, {len(values)} values, "
                f"{sum(counts)} timestamps in {len(counts)}/{len(times)} runs"
            )
        new: list[SeriesDef] = []
        self._learn(batch.series, new)
        current = self._current
        missing = set(ids).difference(current)
        if missing:
            previous = self._previous
            again = [previous.pop(sid) for sid in missing if sid in previous]
            current.update((d.id, d) for d in again)
            missing.difference_update(d.id for d in again)
        if missing and self._registry is not None:
            found = await self._registry.lookup(sorted(missing))
            self.looked_up += len(found)
            self._learn(found.values(), new)
            missing.difference_update(found)
        unresolved = 0
        if missing:
            ids, values, counts, times, unresolved = _without(missing, ids, values, counts, times)
            self.unresolved += unresolved
            log.warning(
                "%d samples of %d unknown series left out of a %s batch",
                unresolved,
                len(missing),
                batch.source,
            )
        return SampleView(
            batch.source,
            batch.collected_at,
            ids=ids,
            values=values,
            runs=(counts, times),
            defs=current,
            new=new,
            unresolved=unresolved,
            complete=batch.complete,
            collector=batch.collector,
        )


def _without(
    missing: set[int],
    ids: array[int],
    values: array[float],
    counts: array[int],
    times: array[float],
) -> tuple[array[int], array[float], array[int], array[float], int]:
    """The arrays without the samples of ``missing`` series (runs kept consistent)."""
    kept_ids: array[int] = array("Q")
    kept_values: array[float] = array("d")
    kept_counts: array[int] = array("I")
    kept_times: array[float] = array("d")
    start = 0
    for count, ts in zip(counts, times, strict=True):
        kept = 0
        for i in range(start, start + count):
            if ids[i] not in missing:
                kept_ids.append(ids[i])
                kept_values.append(values[i])
                kept += 1
        if kept:
            kept_counts.append(kept)
            kept_times.append(ts)
        start += count
    return kept_ids, kept_values, kept_counts, kept_times, len(ids) - len(kept_ids)


async def read_samples(redis: Any, keys: Keys) -> list[tuple[str, SampleBatch]]:
    """Every samples-stream entry, in the labelled form (for tools and tests)."""
    resolver = SeriesResolver(SeriesRegistry(redis, keys))
    out: list[tuple[str, SampleBatch]] = []
    for entry_id, message in await read_all(redis, keys.stream("samples")):
        if isinstance(message, SampleBatch | PackedBatch):
            out.append((entry_id, (await resolver.view(message)).labelled()))
    return out
