"""Where each series id's samples go, looked up for a whole batch at once.

A batch of the samples stream carries series ids; the engine routes each
id once (:meth:`~analytics.engine.Engine.ingest_view`) to its table, its
row and the owned shards that need it, and the host its labels name. The
routes are kept as arrays sorted by id, so the samples of a batch find
theirs with one vectorised search; only ids not seen before are routed
one by one, and merged in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analytics.table import Ints

Ids = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class Route:
    """One series id's route."""

    table: int
    """Its table (index in the engine's tables; -1: a KPI nobody reads, or not needed)."""
    row: int
    owners: tuple[int, ...]
    """The owned shards that need its samples (the first one is its own)."""
    host: int
    """The code of the host its labels name (NO_CODE: none)."""


@dataclass(frozen=True)
class Routed:
    """A batch's samples, routed."""

    table: Ints
    row: Ints
    owner: Ints
    """The first owning shard of each sample (-1: none)."""
    host: Ints
    extra: list[tuple[int, int]]
    """``(sample position, shard)`` for each further shard that needs a sample."""


class Routes:
    """The routes of the series ids seen so far (cleared when rows or ownership change)."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._ids: Ids = np.empty(0, dtype=np.uint64)
        self._table: Ints = np.empty(0, dtype=np.int64)
        self._row: Ints = np.empty(0, dtype=np.int64)
        self._owner: Ints = np.empty(0, dtype=np.int64)
        self._host: Ints = np.empty(0, dtype=np.int64)
        self._extra: dict[int, tuple[int, ...]] = {}
        """The further owners of the ids that have more than one."""

    def __len__(self) -> int:
        return len(self._ids)

    def route(self, ids: Ids, resolve: Callable[[int], Route]) -> Routed:
        """The routes of ``ids``; ``resolve`` routes an id not seen before."""
        pos, found = self._find(ids)
        if not found.all():
            # In the batch's order: rows are given out in that order, and rows
            # of one VNF side by side keep the evaluation's groups in order.
            missing = ids[~found]
            _, first = np.unique(missing, return_index=True)
            self._add(missing[np.sort(first)], resolve)
            pos, found = self._find(ids)
        extra: list[tuple[int, int]] = []
        if self._extra:
            for i, sid in enumerate(ids.tolist()):
                more = self._extra.get(sid)
                if more:
                    extra.extend((i, s) for s in more)
        return Routed(self._table[pos], self._row[pos], self._owner[pos], self._host[pos], extra)

    def _find(self, ids: Ids) -> tuple[Ints, npt.NDArray[np.bool_]]:
        if not len(self._ids):
            return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=np.bool_)
        pos = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        return pos.astype(np.int64), self._ids[pos] == ids

    def _add(self, new: Ids, resolve: Callable[[int], Route]) -> None:
        routes = [resolve(sid) for sid in new.tolist()]
        for sid, r in zip(new.tolist(), routes, strict=True):
            if len(r.owners) > 1:
                self._extra[sid] = r.owners[1:]
        ids = np.r_[self._ids, new]
        order = np.argsort(ids, kind="stable")

        def merged(old: Ints, values: list[int]) -> Ints:
            out: Ints = np.r_[old, np.asarray(values, dtype=np.int64)][order]
            return out

        self._table = merged(self._table, [r.table for r in routes])
        self._row = merged(self._row, [r.row for r in routes])
        self._owner = merged(self._owner, [r.owners[0] if r.owners else -1 for r in routes])
        self._host = merged(self._host, [r.host for r in routes])
        self._ids = ids[order]
