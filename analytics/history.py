"""Recorded KPI history: the long-form CSV that replays and backtests read.

One sample per row, with a header naming the columns::

    timestamp,vnf,vnfc,kpi,value,host,vnfd,ns
    2024-05-01T10:00:00Z,fw-1,fw-1-a,vnf_cpu_utilisation,41.5,compute-1,vfw,edge-1
    1714557610,fw-1,fw-1-a,vnf_cpu_utilisation,43,compute-1,vfw,edge-1

``timestamp`` (ISO 8601, UTC when it names no zone, or Unix seconds),
``vnf``, ``vnfc``, ``kpi`` and ``value`` are required; ``host``,
``vnfd`` and ``ns`` are optional (rows without a VNFD take the one given
to :func:`read_csv`, so that policies targeting a VNFD match; ``ns``
names the NS instance the row's VNF belongs to, so that conditions of
scope ``ns`` have targets in a replay). ``vnf`` and
``vnfc`` may be empty on a row that names a ``host``: a sample of the host
itself. Any other column is a label of the series (``device``, ``le``...).
``value`` may be ``NaN`` (no value) or ``Inf``.

A row that cannot be read is reported with its line number and skipped;
the others are read.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bus.contracts import Sample

REQUIRED = ("timestamp", "vnf", "vnfc", "kpi", "value")
OPTIONAL = ("host", "vnfd", "ns")


class HistoryError(ValueError):
    """The history cannot be read at all (no file, no header, a required column missing)."""


@dataclass(frozen=True)
class RowProblem:
    """One row that could not be read."""

    source: str
    line: int
    message: str

    def format(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass
class History:
    """Samples of recorded history, in time order, and what could not be read."""

    samples: list[Sample] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    def sort(self) -> None:
        """Order by timestamp (stable: rows of one timestamp keep their order)."""
        self.samples.sort(key=lambda s: s.ts)


def parse_timestamp(text: str) -> float:
    """Unix seconds from ISO 8601 (UTC when no zone is given) or from Unix seconds."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"timestamp {text!r} is not a time")
        return seconds
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither ISO 8601 nor Unix seconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def read_csv(path: Path, *, vnfd: str | None = None) -> History:
    """Read a history CSV; raises :class:`HistoryError` when it cannot be read at all."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return read_rows(handle, str(path), vnfd=vnfd)
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise HistoryError(f"{path}: not UTF-8 text: {exc}") from exc


def read_rows(lines: Iterable[str], source: str, *, vnfd: str | None = None) -> History:
    """Read history from CSV lines (the first is the header)."""
    reader = csv.reader(lines)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise HistoryError(f"{source}: empty: expected a header line") from None
    except csv.Error as exc:
        raise HistoryError(f"{source}:1: {exc}") from exc
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise HistoryError(
            f"{source}:1: header lacks {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED)}; optional: {', '.join(OPTIONAL)})"
        )
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated or "" in header:
        what = ", ".join(duplicated) if duplicated else "an empty name"
        raise HistoryError(f"{source}:1: header names {what} twice or not at all")
    history = History()
    for line, row in _rows(reader, source, history):
        try:
            history.samples.append(_sample(dict(zip(header, row, strict=False)), header, row, vnfd))
        except ValueError as exc:
            history.problems.append(RowProblem(source, line, str(exc)))
    history.sort()
    return history


def _rows(
    reader: Iterator[list[str]], source: str, history: History
) -> Iterator[tuple[int, list[str]]]:
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = getattr(reader, "line_num", 0)
            history.problems.append(RowProblem(source, line, f"unreadable CSV: {exc}"))
            continue
        line = reader.line_num  # type: ignore[attr-defined]
        if not row or all(not cell.strip() for cell in row):
            continue  # blank lines are no rows
        yield line, row


def _sample(fields: dict[str, str], header: list[str], row: list[str], vnfd: str | None) -> Sample:
    if len(row) != len(header):
        raise ValueError(f"{len(row)} fields, the header has {len(header)}")
    ts = parse_timestamp(fields["timestamp"])
    kpi = fields["kpi"].strip()
    if not kpi:
        raise ValueError("kpi is empty")
    text = fields["value"].strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"value {text!r} is not a number") from None
    labels = {
        name: cell.strip()
        for name, cell in fields.items()
        if name not in ("timestamp", "kpi", "value") and cell.strip()
    }
    if ("vnfc" in labels) != ("vnf" in labels):
        raise ValueError("a row names both its vnf and vnfc, or neither (a host's own sample)")
    if "vnf" not in labels and "host" not in labels:
        raise ValueError("a row needs a vnf and vnfc, or a host")
    if "ns" in labels and "vnf" not in labels:
        raise ValueError("a row that names an ns names its vnf and vnfc too")
    if "vnf" in labels and "vnfd" not in labels:
        if vnfd is None:
            raise ValueError("no vnfd: give a vnfd column or a default VNFD")
        labels["vnfd"] = vnfd
    return Sample(kpi, labels, ts, value)
