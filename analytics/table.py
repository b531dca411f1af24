"""Per-series windows: the recent samples of every series of one KPI, in bounded numpy arrays.

A :class:`SeriesTable` holds one row per series and, in each row, its
newest samples in time order, right-aligned: column ``-1`` is the newest,
empty slots hold ``ts = -inf`` and ``value = NaN``. Appending shifts the
row left by one, so window functions read rows that are already sorted
(:mod:`analytics.functions`).

Memory is bounded twice: a row keeps at most ``capacity`` samples, and the
capacity grows (doubling, up to ``max_capacity``) only while a full row's
oldest sample is still inside ``keep_s``, the longest window a condition
reads; a series silent for ``retention`` is dropped by :meth:`prune` and
its row reused.

A series is a KPI plus labels, except that a series with a ``vnfc`` label
is identified without its ``host`` label: a VNFC that migrates keeps its
window, and the host of its newest sample is its host (series that differ
in their ``host`` label alone are one VNFC that moved). A series with a
``vnf`` label and no ``vnfc`` is about the VNF as a whole (a pushed or
queried KPI of the VNF itself): its row's ``vnf`` column says which.

Samples out of order are put in their place when they are newer than the
row's oldest sample (a late scrape still counts); a sample with a
timestamp the series already has is a duplicate and dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from analytics.codes import Codes
from bus.series import series_id

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

A = TypeVar("A", bound=npt.NDArray[Any])

NO_CODE = -1
"""The code of a label a series does not carry."""


class LabelsAt(Protocol):
    """Each sample's labels by position (a list, or a look-up)."""

    def __getitem__(self, i: int, /) -> Mapping[str, str]: ...


def identity(labels: Mapping[str, str]) -> int:
    """What identifies a series within its KPI (``host`` left out for VNFC series): a hash."""
    if "vnfc" in labels:
        return series_id("", {k: v for k, v in labels.items() if k != "host"})
    return series_id("", labels)


class SeriesTable:
    """The windows of every series of one KPI."""

    def __init__(
        self,
        kpi: str,
        codes: Codes,
        *,
        keep_s: float,
        capacity: int = 8,
        max_capacity: int = 512,
    ) -> None:
        self.kpi = kpi
        self.codes = codes
        self.keep_s = keep_s
        """The longest window a condition reads on this KPI (seconds)."""
        self.capacity = max(2, min(capacity, max_capacity))
        self.max_capacity = max_capacity
        rows = 16
        self.ts: Floats = np.full((rows, self.capacity), -np.inf)
        self.values: Floats = np.full((rows, self.capacity), np.nan)
        self.last: Floats = np.full(rows, -np.inf)
        """Timestamp of each row's newest sample (``-inf``: free row)."""
        self.version: Ints = np.zeros(rows, dtype=np.int64)
        """Bumped on every change of a row, so caches know what to recompute."""
        self.vnfc: Ints = np.full(rows, NO_CODE, dtype=np.int64)
        self.vnf: Ints = np.full(rows, NO_CODE, dtype=np.int64)
        """The VNF of a VNF-level row (a ``vnf`` label and no ``vnfc``), else NO_CODE."""
        self.host: Ints = np.full(rows, NO_CODE, dtype=np.int64)
        self.obj: Ints = np.full(rows, NO_CODE, dtype=np.int64)
        """The object a row measures: its VNFC, else its server, else its host."""
        self.vnfd: Ints = np.full(rows, NO_CODE, dtype=np.int64)
        self.info: list[Mapping[str, str] | None] = [None] * rows
        """Each row's labels (of its newest sample; None: a free row)."""
        self._row_of: dict[int, int] = {}
        self._free: list[int] = list(range(rows - 1, -1, -1))
        self.membership = 0
        """Bumped whenever a row is added, removed or changes its labels."""
        self.dropped = 0
        """Samples dropped: duplicates, or older than everything a full row keeps."""

    def __len__(self) -> int:
        return len(self._row_of)

    @property
    def rows(self) -> int:
        """Allocated rows (some may be free)."""
        return len(self.last)

    def live_rows(self) -> Ints:
        """The rows that hold a series."""
        return np.flatnonzero(self.last > -np.inf)

    # --- rows ------------------------------------------------------------
    def row(self, labels: Mapping[str, str]) -> int:
        """The row of the series with ``labels`` (created when new)."""
        key = identity(labels)
        found = self._row_of.get(key)
        if found is not None:
            return found
        if not self._free:
            self._grow_rows()
        row = self._free.pop()
        self._row_of[key] = row
        # The labels are kept as given (a series' definition), not copied.
        self.info[row] = labels
        self._set_codes(row, labels)
        self.last[row] = np.nan  # allocated, no sample yet (not free, not live)
        self.membership += 1
        return row

    def _set_codes(self, row: int, labels: Mapping[str, str]) -> None:
        code = self.codes.code
        vnfc = labels.get("vnfc")
        host = labels.get("host")
        self.vnfc[row] = code(vnfc) if vnfc else NO_CODE
        vnf = None if vnfc else labels.get("vnf")
        self.vnf[row] = code(vnf) if vnf else NO_CODE
        self.host[row] = code(host) if host else NO_CODE
        name = vnfc or labels.get("server") or host
        self.obj[row] = code(name) if name else NO_CODE
        vnfd = labels.get("vnfd")
        self.vnfd[row] = code(vnfd) if vnfd else NO_CODE

    def labels(self, row: int) -> Mapping[str, str]:
        info = self.info[row]
        assert info is not None, f"row {row} of {self.kpi} is free"
        return info

    def _grow_rows(self) -> None:
        old = self.rows
        new = old * 2
        self.ts = _grown(self.ts, new, -np.inf)
        self.values = _grown(self.values, new, np.nan)
        self.last = _grown(self.last, new, -np.inf)
        self.version = _grown(self.version, new, 0)
        self.vnfc = _grown(self.vnfc, new, NO_CODE)
        self.vnf = _grown(self.vnf, new, NO_CODE)
        self.host = _grown(self.host, new, NO_CODE)
        self.obj = _grown(self.obj, new, NO_CODE)
        self.vnfd = _grown(self.vnfd, new, NO_CODE)
        self.info.extend([None] * (new - old))
        self._free.extend(range(new - 1, old - 1, -1))

    def _grow_capacity(self) -> bool:
        if self.capacity >= self.max_capacity:
            return False
        new = min(self.capacity * 2, self.max_capacity)
        pad = new - self.capacity
        self.ts = np.hstack([np.full((self.rows, pad), -np.inf), self.ts])
        self.values = np.hstack([np.full((self.rows, pad), np.nan), self.values])
        self.capacity = new
        self.version += 1
        return True

    # --- samples ---------------------------------------------------------
    def append(
        self,
        rows: Ints,
        ts: Floats,
        values: Floats,
        labels: LabelsAt,
        hosts: Ints | None = None,
    ) -> Ints:
        """Add samples (``labels``: each sample's full labels); returns the rows changed.

        Samples may come in any order, several per row. ``hosts``: the code
        of each sample's ``host`` label (:meth:`host_code`), when known: then
        only the rows whose host changed read their labels.
        """
        if len(rows) == 0:
            return rows
        order = np.lexsort((ts, rows))
        rows, ts, values = rows[order], ts[order], values[order]
        changed: list[int] = []
        # In rounds: the k-th sample of each row in round k, so that each
        # round touches a row once (vectorised shift-and-write).
        first = np.r_[True, rows[1:] != rows[:-1]]
        starts = np.flatnonzero(first)
        rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
        for k in range(int(rank.max()) + 1):
            sel = np.flatnonzero(rank == k)
            changed.extend(self._append_round(rows[sel], ts[sel], values[sel]))
        newest = np.flatnonzero(np.r_[rows[1:] != rows[:-1], True])
        if hosts is not None:
            newest = newest[hosts[order[newest]] != self.host[rows[newest]]]
        for i in newest.tolist():
            # The newest sample of each row says which host it is on now.
            self._note_host(int(rows[i]), float(ts[i]), labels[int(order[i])])
        out = np.unique(np.asarray(changed, dtype=np.int64))
        self.version[out] += 1
        return out

    def _append_round(self, rows: Ints, ts: Floats, values: Floats) -> list[int]:
        last = self.last[rows]
        fresh = ~(ts <= last)  # NaN last (no sample yet) counts as fresh
        ahead = rows[fresh]
        if len(ahead):
            self._make_room(ahead, ts[fresh])
            self.ts[ahead, :-1] = self.ts[ahead, 1:]
            self.values[ahead, :-1] = self.values[ahead, 1:]
            self.ts[ahead, -1] = ts[fresh]
            self.values[ahead, -1] = values[fresh]
            self.last[ahead] = ts[fresh]
        changed = [int(r) for r in ahead]
        for i in np.flatnonzero(~fresh):
            if self._insert_late(int(rows[i]), float(ts[i]), float(values[i])):
                changed.append(int(rows[i]))
        return changed

    def _make_room(self, rows: Ints, ts: Floats) -> None:
        # A full row whose oldest sample is still inside the longest window
        # needs more capacity than the table has: grow (rarely, doubling).
        full = self.ts[rows, 0] > -np.inf
        if not full.any():
            return
        needed = self.ts[rows[full], 0] > ts[full] - self.keep_s
        if needed.any():
            self._grow_capacity()

    def _insert_late(self, row: int, ts: float, value: float) -> bool:
        times = self.ts[row]
        at = int(np.searchsorted(times, ts))
        if at < self.capacity and times[at] == ts:
            self.dropped += 1  # a duplicate (e.g. a batch delivered twice)
            return False
        if at == 0 and times[0] > -np.inf:
            self.dropped += 1  # older than everything a full row keeps
            return False
        # Shift the older part left by one and put the sample in its place.
        self.ts[row, : at - 1] = times[1:at].copy()
        self.values[row, : at - 1] = self.values[row, 1:at].copy()
        self.ts[row, at - 1] = ts
        self.values[row, at - 1] = value
        return True

    def _note_host(self, row: int, ts: float, labels: Mapping[str, str]) -> None:
        if ts < self.last[row]:
            return
        if self.host_code(labels) != self.host[row]:
            assert self.info[row] is not None
            self.info[row] = dict(labels)
            self._set_codes(row, labels)
            self.membership += 1

    def host_code(self, labels: Mapping[str, str]) -> int:
        """The code of the host ``labels`` name (NO_CODE: none)."""
        host = labels.get("host")
        return self.codes.code(host) if host else NO_CODE

    def prune(self, before: float) -> int:
        """Drop the series whose newest sample is older than ``before``; returns how many."""
        old = np.flatnonzero((self.last < before) & (self.last > -np.inf))
        if len(old) == 0:
            return 0
        for row in old.tolist():
            info = self.info[row]
            assert info is not None
            del self._row_of[identity(info)]
            self.info[row] = None
            self._free.append(row)
        self.ts[old] = -np.inf
        self.values[old] = np.nan
        self.last[old] = -np.inf
        self.vnfc[old] = NO_CODE
        self.vnf[old] = NO_CODE
        self.host[old] = NO_CODE
        self.obj[old] = NO_CODE
        self.vnfd[old] = NO_CODE
        self.version[old] += 1
        self.membership += 1
        return len(old)

    def nbytes(self) -> int:
        """Memory held by the arrays (the windows and the per-row columns)."""
        arrays = (self.ts, self.values, self.last, self.version, self.vnfc, self.host)
        columns = (self.obj, self.vnfd, self.vnf)
        return sum(a.nbytes for a in arrays) + sum(a.nbytes for a in columns)


def _grown(array: A, rows: int, fill: object) -> A:
    shape = (rows, *array.shape[1:])
    out = np.full(shape, fill, dtype=array.dtype)
    out[: len(array)] = array
    return out  # type: ignore[return-value]
