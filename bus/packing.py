"""The packed form of sample batches (``samples.v2``): arrays on the wire, little-endian.

A :class:`~bus.contracts.PackedBatch` carries series ids (``'Q'``), values
(``'d'``) and timestamps as runs (counts ``'I'``, times ``'d'``), each array
as its bytes; :func:`pack` makes one of arrays, :func:`pack_samples` of
labelled samples, and :func:`from_wire` reads an array back (see
:mod:`bus.series` for what an id stands for).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterable
from typing import Any

from bus.contracts import ContractError, PackedBatch, Sample, SeriesDef
from bus.series import series_id

_BIG_ENDIAN = sys.byteorder == "big"


def _to_wire(values: array[Any]) -> bytes:
    if _BIG_ENDIAN:  # pragma: no cover - the wire is little-endian
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def from_wire(typecode: str, data: bytes, what: str) -> array[Any]:
    values = array(typecode)
    if len(data) % values.itemsize:
        raise ContractError(f"samples.v2 {what}: {len(data)} bytes is not whole items")
    values.frombytes(data)
    if _BIG_ENDIAN:  # pragma: no cover
        values.byteswap()
    return values


def pack(
    source: str,
    collected_at: float,
    *,
    series: list[SeriesDef],
    ids: array[int],
    values: array[float],
    ts_counts: array[int],
    ts_values: array[float],
    complete: bool = True,
    collector: str = "",
) -> PackedBatch:
    """A :class:`PackedBatch` of arrays: ids ``'Q'``, values ``'d'``, runs ``'I'`` and ``'d'``."""
    return PackedBatch(
        source,
        collected_at,
        series,
        _to_wire(ids),
        _to_wire(values),
        _to_wire(ts_counts),
        _to_wire(ts_values),
        complete,
        collector,
    )


def pack_samples(
    source: str,
    collected_at: float,
    samples: Iterable[Sample],
    kind: Callable[[str], Any] | None = None,
) -> PackedBatch:
    """Labelled samples as one packed batch defining every series it holds (tools, tests)."""
    defs: dict[int, SeriesDef] = {}
    columns = Columns()
    for sample in samples:
        sid = series_id(sample.kpi, sample.labels)
        if sid not in defs:
            defs[sid] = SeriesDef(
                sid, sample.kpi, dict(sample.labels), kind(sample.kpi) if kind else "unknown"
            )
        columns.add(sid, sample.value, sample.ts)
    return pack(
        source,
        collected_at,
        series=list(defs.values()),
        ids=columns.ids,
        values=columns.values,
        ts_counts=columns.counts,
        ts_values=columns.times,
    )


class Columns:
    """Samples as the columns of a packed batch: series ids and values, and the
    timestamps as runs (``counts[i]`` consecutive samples share ``times[i]``)."""

    __slots__ = ("counts", "ids", "times", "values")

    def __init__(self) -> None:
        self.ids: array[int] = array("Q")
        self.values: array[float] = array("d")
        self.counts: array[int] = array("I")
        self.times: array[float] = array("d")

    def add(self, sid: int, value: float, ts: float) -> None:
        self.ids.append(sid)
        self.values.append(value)
        times = self.times
        if times and times[-1] == ts:
            self.counts[-1] += 1
        else:
            times.append(ts)
            self.counts.append(1)
