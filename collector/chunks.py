"""Chunks: the samples of one target (or one push), as series ids and packed arrays.

Every source hands its samples to the writer as :class:`Chunk` objects: ids
and values in ``array`` form, timestamps as runs, and the definitions the
writer must send (``new``: first sent by this collector, inline and to the
registry) or only register again (``again``: a new registry generation, or
a registry Redis lost). Sources remember which series they defined against
the writer's ``token`` (:attr:`collector.writer.SampleWriter.token`): when
the token changes, every series they write is registered again.

:class:`SeriesBook` does that bookkeeping for sources whose samples arrive
labelled (VIM telemetry, PromQL results, pushes): from a label set to its
id, computed once per series. The exposition scrape has its own, faster
cache (:mod:`collector.exposition`).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bus.contracts import Sample, SeriesDef, SeriesKind
from bus.series import GENERATION_S, series_id


@dataclass
class Chunk:
    """Samples for the writer: parallel ``ids``/``values``, timestamps as runs."""

    ids: array[int] = field(default_factory=lambda: array("Q"))
    values: array[float] = field(default_factory=lambda: array("d"))
    ts_counts: array[int] = field(default_factory=lambda: array("I"))
    ts_values: array[float] = field(default_factory=lambda: array("d"))
    new: list[SeriesDef] = field(default_factory=list)
    """Definitions this collector sends for the first time (inline, and registered)."""
    again: list[SeriesDef] = field(default_factory=list)
    """Definitions to register again (not inline)."""

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, sid: int, ts: float, value: float) -> None:
        """Append one sample."""
        self.ids.append(sid)
        self.values.append(value)
        if self.ts_values and self.ts_values[-1] == ts:
            self.ts_counts[-1] += 1
        else:
            self.ts_values.append(ts)
            self.ts_counts.append(1)

    def stamp(self, ts: float, count: int) -> None:
        """The next ``count`` samples (already appended to ids/values) are at ``ts``."""
        if count <= 0:
            return
        if self.ts_values and self.ts_values[-1] == ts:
            self.ts_counts[-1] += count
        else:
            self.ts_values.append(ts)
            self.ts_counts.append(count)

    def extend(self, other: Chunk) -> None:
        """Append every sample and definition of ``other``."""
        self.ids.extend(other.ids)
        self.values.extend(other.values)
        for count, ts in zip(other.ts_counts, other.ts_values, strict=True):
            self.stamp(ts, count)
        self.new.extend(other.new)
        self.again.extend(other.again)


KeyedSample = tuple[Hashable, str, Mapping[str, str], float, float]
"""``(key, kpi, labels, ts, value)``: ``key`` one the source keeps per series (its id, say)."""


class DefinitionTerms(Protocol):
    """What a source needs of the writer to know which series to define again."""

    @property
    def token(self) -> int: ...

    def reregister_after_s(self) -> float: ...


class SeriesBook:
    """Ids of labelled series, each computed once, and which the writer has had defined.

    Each series is defined when first seen, again when the writer's token
    changes, and again after the writer's re-registration period. Entries
    unused for ``forget_after_s`` (wall time) are forgotten, so a source
    whose series come and go (VNFCs healed, scaled in) does not grow without
    bound; a forgotten series that returns is simply defined again.
    """

    def __init__(
        self,
        terms: DefinitionTerms,
        *,
        forget_after_s: float = GENERATION_S,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self._terms = terms
        self._forget_after_s = forget_after_s
        self._wall = wall
        # key -> (id, writer token, when to define it again)
        self._current: dict[Hashable, tuple[int, int, float]] = {}
        self._previous: dict[Hashable, tuple[int, int, float]] = {}
        self._swapped_at = wall()

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def chunk(
        self, samples: Iterable[Sample], kind: Callable[[str], SeriesKind] | None = None
    ) -> Chunk:
        """``samples`` as a chunk, with the definitions the writer needs."""
        return self.chunk_keyed(
            (((s.kpi, tuple(sorted(s.labels.items()))), s.kpi, s.labels, s.ts, s.value)
             for s in samples),
            kind,
        )  # fmt: skip

    def chunk_keyed(
        self, rows: Iterable[KeyedSample], kind: Callable[[str], SeriesKind] | None = None
    ) -> Chunk:
        """Samples keyed by their series, as a chunk.

        A source that sees the same series again and again (a push
        receiver) keeps a key per series (cheap to hash: an int, say) and
        saves making one from the labels for every sample; a key must
        stand for one KPI and label set only.
        """
        now = self._wall()
        if now - self._swapped_at >= self._forget_after_s:
            self._previous, self._current = self._current, {}
            self._swapped_at = now
        token = self._terms.token
        out = Chunk()
        current = self._current
        for key, kpi, labels, ts, value in rows:
            known = current.get(key)
            if known is None:
                known = self._previous.pop(key, None)
            if known is None or known[1] != token or now >= known[2]:
                sid = known[0] if known is not None else series_id(kpi, labels)
                d = SeriesDef(sid, kpi, dict(labels), kind(kpi) if kind else "unknown")
                (out.new if known is None else out.again).append(d)
                known = (sid, token, now + self._terms.reregister_after_s())
            current[key] = known
            out.add(known[0], ts, value)
        return out
