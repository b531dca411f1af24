"""What each target of a condition shows now: one value per target, vectorised.

:class:`ReadingBuilder` turns a condition's membership into the value of
every target: each series' function value (cached per table row and
recomputed only for rows that changed, :class:`FunctionCache`), the
series of one object combined with the condition's ``aggregate``, then
the objects of each target the same way (so ``avg`` over a VNF weighs
every VNFC alike, whatever its number of devices). A series whose newest
sample is older than ``stale_after_s`` is unknown; a target without any
known series is unknown (NaN), which never breaches.

A reading's sample time ``at`` is the newest sample behind its value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.aggregate import grouped
from analytics.functions import bucket_quantile, compute
from analytics.membership import Membership
from analytics.table import Floats, Ints, SeriesTable
from bus.conditions import ConditionSpec
from bus.contracts import TargetKind

CHUNK_ROWS = 16_384
"""Rows a window function is computed over at once."""


class FunctionCache:
    """One function of every row of a table, recomputed for changed rows only."""

    def __init__(self, table: SeriesTable, function: str, range_s: float, q: float | None) -> None:
        self.table = table
        self.function = function
        self.range_s = range_s
        self.q = q
        self._values: Floats = np.zeros(0)
        self._version = np.zeros(0, dtype=np.int64)
        self.computed = 0
        """Row evaluations done so far (for benchmarks)."""

    def values(self, rows: Ints) -> Floats:
        table = self.table
        if len(self._values) < table.rows:
            grow = table.rows - len(self._values)
            self._values = np.r_[self._values, np.full(grow, np.nan)]
            self._version = np.r_[self._version, np.full(grow, -1, dtype=np.int64)]
        dirty = rows[self._version[rows] != table.version[rows]]
        # In chunks of rows: a function's temporaries (masks, sums, sorted
        # copies) are a chunk's size, not the table's.
        if 2 * len(dirty) > table.rows:
            # Most rows changed: the whole table, by slices (no gathered copies).
            for lo in range(0, table.rows, CHUNK_ROWS):
                hi = min(lo + CHUNK_ROWS, table.rows)
                self._values[lo:hi] = compute(
                    self.function, table.ts[lo:hi], table.values[lo:hi], self.range_s,
                    quantile=self.q,
                )  # fmt: skip
            self._version[: table.rows] = table.version
            self.computed += len(dirty)
        elif len(dirty):
            for lo in range(0, len(dirty), CHUNK_ROWS):
                part = dirty[lo : lo + CHUNK_ROWS]
                self._values[part] = compute(
                    self.function, table.ts[part], table.values[part], self.range_s,
                    quantile=self.q,
                )  # fmt: skip
            self._version[dirty] = table.version[dirty]
            self.computed += len(dirty)
        return self._values[rows]


@dataclass
class Readings:
    """The value of every present target of one condition at one evaluation."""

    value: Floats
    """Per target position (NaN: unknown)."""
    at: Floats
    """Sample time of each value (NaN: unknown)."""
    obj_value: Floats
    unit_value: Floats
    """Per counted series (row, or histogram): its value (NaN: unknown or stale)."""
    unit_row: Ints
    """A table row behind each series (its row, or a histogram's first bucket)."""
    unit_obj: Ints


class ReadingBuilder:
    """Builds one condition's readings."""

    def __init__(
        self, cond: ConditionSpec, table: SeriesTable | None, cache: FunctionCache | None
    ) -> None:
        self.cond = cond
        self.table = table
        self.cache = cache
        self._layout: tuple[list[list[int]], Ints, list[Floats]] | None = None

    def rebuilt(self, m: Membership) -> None:
        """Take note that the membership changed (histograms are laid out again)."""
        if self.cond.function == "histogram_quantile" and self.table is not None:
            self._layout = _histogram_layout(self.table, m)

    def readings(self, m: Membership, now: float, stale_after_s: float) -> Readings:
        """The readings of every present target of ``m`` at ``now``."""
        if self.table is None or not len(m.rows):
            n = len(m.targets)
            nan = np.full(n, np.nan)
            return Readings(nan, nan.copy(), np.full(m.n_obj, np.nan), np.empty(0), m.rows, m.rows)
        if self.cond.function == "histogram_quantile":
            unit_obj, unit_val, unit_at, groups = self._histogram_values(m)
            unit_row = np.asarray([g[0] for g in groups], dtype=np.int64)
        else:
            assert self.cache is not None
            unit_obj = m.row_obj
            unit_val = self.cache.values(m.rows)
            unit_at = self.table.last[m.rows]
            unit_row = m.rows
        unit_val = np.where(now - unit_at > stale_after_s, np.nan, unit_val)
        cond = self.cond
        q = cond.aggregate_quantile
        obj_val = grouped(cond.aggregate, unit_obj, unit_val, m.n_obj, q)
        obj_at = grouped("max", unit_obj, np.where(np.isnan(unit_val), np.nan, unit_at), m.n_obj)
        n_tgt = len(m.targets)
        if cond.scope is TargetKind.VNFC:
            value = np.full(n_tgt, np.nan)
            at = np.full(n_tgt, np.nan)
            value[m.obj_tgt] = obj_val
            at[m.obj_tgt] = obj_at
        else:
            value = grouped(cond.aggregate, m.obj_tgt, obj_val, n_tgt, q)
            at = grouped("max", m.obj_tgt, np.where(np.isnan(obj_val), np.nan, obj_at), n_tgt)
        return Readings(value, at, obj_val, unit_val, unit_row, unit_obj)

    def _histogram_values(self, m: Membership) -> tuple[Ints, Floats, Floats, list[list[int]]]:
        """One value per histogram (a VNFC's buckets of one label set but ``le``)."""
        table = self.table
        assert table is not None and self.cache is not None
        if self._layout is None:
            self._layout = _histogram_layout(table, m)
        groups, hist_obj, uppers = self._layout
        increase = np.full(table.rows, np.nan)
        if groups:
            flat = np.concatenate([np.asarray(g, dtype=np.int64) for g in groups])
            increase[flat] = self.cache.values(flat)
        values = np.full(len(groups), np.nan)
        at = np.full(len(groups), np.nan)
        q = self.cond.quantile
        assert q is not None
        by_width: dict[int, list[int]] = {}
        for g, rows in enumerate(groups):
            by_width.setdefault(len(rows), []).append(g)
        for width, members in by_width.items():
            block = np.asarray([groups[g] for g in members], dtype=np.int64).reshape(-1, width)
            upper = np.stack([uppers[g] for g in members])
            values[members] = bucket_quantile(q, upper, increase[block])
            at[members] = table.last[block].max(axis=1)
        return hist_obj, values, at, groups


def _histogram_layout(
    table: SeriesTable, m: Membership
) -> tuple[list[list[int]], Ints, list[Floats]]:
    """The histograms among ``m``'s rows: their bucket rows (by upper bound), object, bounds."""
    found: dict[tuple[int, tuple[tuple[str, str], ...]], list[tuple[float, int]]] = {}
    for row, obj in zip(m.rows.tolist(), m.row_obj.tolist(), strict=True):
        labels = table.labels(row)
        try:
            upper = float(labels.get("le", "nan"))
        except ValueError:
            continue  # not a bucket: an ``le`` that is no number
        if np.isnan(upper):
            continue
        rest = tuple(sorted((k, v) for k, v in labels.items() if k not in ("le", "host")))
        found.setdefault((obj, rest), []).append((upper, row))
    groups: list[list[int]] = []
    objs: list[int] = []
    uppers: list[Floats] = []
    for (obj, _), buckets in sorted(found.items()):
        buckets.sort()
        groups.append([row for _, row in buckets])
        objs.append(obj)
        uppers.append(np.asarray([upper for upper, _ in buckets]))
    return groups, np.asarray(objs, dtype=np.int64), uppers
