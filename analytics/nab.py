"""A scorer for the Numenta Anomaly Benchmark (NAB), written from NAB's published description.

NAB scores a detector that gives every row of every data file an anomaly
score in [0, 1]. A row whose score reaches the threshold is a detection.

- **Windows.** Each labelled anomaly has a window of rows around it
  (``labels/combined_windows.json``). A window's first detection scores
  ``tp_weight * S(p) / S(-1)``, where ``p`` is the detection's relative
  position, ``-(right - i + 1) / width`` (-1 at the window's left edge,
  near 0 at its right), and ``S(p) = 2 / (1 + e^(5p)) - 1`` (the scaled
  sigmoid, -1 from ``p >= 3`` on): early detections score more. Only the
  best detection of a window counts; a window without any scores
  ``-fn_weight``.
- **False positives.** A detection outside every window scores
  ``fp_weight * S(p)`` with ``p`` its distance past the last window that
  ended before it, relative to that window's width (``|right - i| / (width - 1)``):
  a detection just after a window costs little, a far one ``-fp_weight``.
  Before the first window it costs ``-fp_weight``.
- **Probation.** The first ``min(⌊0.15 n⌋, 750)`` rows of each file are the
  detector's learning period and are not scored.
- **Profiles.** Three cost matrices (``config/profiles.json``): standard
  (``fp_weight`` 0.11), reward_low_FP_rate (0.22), reward_low_FN_rate
  (``fn_weight`` 2).
- **Threshold.** For each profile, the one threshold (across the corpus)
  that maximises the raw total is chosen (every distinct score is tried).
- **Normalisation.** ``100 * (raw - null) / (perfect - null)``, where *null*
  is the raw score of a detector that detects nothing (every window
  missed) and *perfect* is ``tp_weight`` times the number of windows.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

PROBATION_SHARE = 0.15
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def scaled_sigmoid(position: Floats) -> Floats:
    """NAB's S: 0.987 at the left edge of a window (-1), 0 at its right (0), -1 from 3 on."""
    with np.errstate(over="ignore"):
        out = 2.0 / (1.0 + np.exp(5.0 * position)) - 1.0
    return np.where(position >= 3.0, -1.0, out)


MAX_TP = float(scaled_sigmoid(np.array([-1.0]))[0])


@dataclass(frozen=True)
class CostMatrix:
    tp: float
    fp: float
    fn: float


@dataclass
class DataFile:
    """One file of the corpus: its values and its anomaly windows (row indices)."""

    name: str
    """The path below ``data/``, e.g. ``realKnownCause/nyc_taxi.csv``."""
    timestamps: list[str]
    values: Floats
    windows: list[tuple[int, int]]
    """Each window's first and last row, inclusive."""

    @property
    def probation(self) -> int:
        """Rows of the learning period, left unscored."""
        n = len(self.values)
        return int(min(math.floor(PROBATION_SHARE * n), PROBATION_SHARE * 5000))


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


class Corpus:
    """The NAB corpus: ``data/``, ``labels/combined_windows.json``, ``config/profiles.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        with (root / "labels" / "combined_windows.json").open() as f:
            labels: dict[str, list[list[str]]] = json.load(f)
        with (root / "config" / "profiles.json").open() as f:
            profiles = json.load(f)
        self.profiles = {
            name: CostMatrix(
                tp=p["CostMatrix"]["tpWeight"],
                fp=p["CostMatrix"]["fpWeight"],
                fn=p["CostMatrix"]["fnWeight"],
            )
            for name, p in profiles.items()
        }
        self.files: dict[str, DataFile] = {}
        for name in sorted(labels):
            self.files[name] = self._read(name, labels[name])

    def _read(self, name: str, windows: list[list[str]]) -> DataFile:
        timestamps: list[str] = []
        values: list[float] = []
        with (self.root / "data" / name).open(newline="") as f:
            for row in csv.DictReader(f):
                timestamps.append(row["timestamp"])
                values.append(float(row["value"]))
        index = {_stamp(t): i for i, t in enumerate(timestamps)}
        spans = [(index[_stamp(a)], index[_stamp(b)]) for a, b in windows]
        return DataFile(name, timestamps, np.asarray(values), spans)

    @property
    def window_count(self) -> int:
        return sum(len(f.windows) for f in self.files.values())

    def __iter__(self) -> Iterator[DataFile]:
        return iter(self.files.values())


def sweep_scores(file: DataFile, cost: CostMatrix) -> tuple[Floats, npt.NDArray[np.int64]]:
    """Each row's score if it were a detection, and its window (-1: none; -2: probation)."""
    n = len(file.values)
    score = np.empty(n)
    window = np.full(n, -1, dtype=np.int64)
    rows = np.arange(n)
    # Before the first window: as far past a window as can be.
    score[:] = -1.0 * cost.fp
    previous_end = None
    previous_width = 0.0
    edges = [*file.windows, (n, n)]
    start_of_gap = 0
    for w, (left, right) in enumerate(edges):
        gap = rows[start_of_gap:left]
        if previous_end is not None and len(gap):
            past = np.abs(previous_end - gap) / (previous_width - 1.0)
            score[start_of_gap:left] = scaled_sigmoid(past) * cost.fp
        if left >= n:
            break
        width = float(right - left + 1)
        inside = rows[left : right + 1]
        score[left : right + 1] = scaled_sigmoid(-(right - inside + 1) / width) * cost.tp / MAX_TP
        window[left : right + 1] = w
        previous_end, previous_width = right, width
        start_of_gap = right + 1
    window[: file.probation] = -2
    return score, window


@dataclass(frozen=True)
class ProfileScore:
    """A detector's result on one profile."""

    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    tp: int
    fp: int
    fn: int

    @property
    def normalised(self) -> float:
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)


def score(
    corpus: Corpus, anomaly_scores: Mapping[str, Floats], profile: str = "standard"
) -> ProfileScore:
    """The NAB score of a detector (its anomaly scores per file) on ``profile``."""
    cost = corpus.profiles[profile]
    parts_score: list[Floats] = []
    parts_gain: list[Floats] = []
    parts_window: list[npt.NDArray[np.int64]] = []
    windows_total = 0
    for file in corpus:
        scores = np.asarray(anomaly_scores[file.name], dtype=np.float64)
        if len(scores) != len(file.values):
            raise ValueError(f"{file.name}: {len(scores)} scores for {len(file.values)} rows")
        sweep, window = sweep_scores(file, cost)
        scorable = window != -2
        counted = np.unique(window[scorable & (window >= 0)])
        remap = np.full(len(file.windows) + 1, -1, dtype=np.int64)
        remap[counted] = np.arange(windows_total, windows_total + len(counted))
        windows_total += len(counted)
        parts_score.append(scores[scorable])
        parts_gain.append(sweep[scorable])
        w = window[scorable]
        parts_window.append(np.where(w >= 0, remap[np.maximum(w, 0)], -1))
    anomaly = np.concatenate(parts_score)
    gain = np.concatenate(parts_gain)
    window = np.concatenate(parts_window)
    null = -cost.fn * windows_total
    # Every detection changes the raw total by an amount: a false positive
    # by its own (negative) score; a detection in a window by how much it
    # raises the window's best so far (from -fn_weight), in order of
    # falling anomaly score. The total at threshold t sums the changes of
    # every row scoring at least t.
    change = np.where(window < 0, gain, 0.0)
    inside = np.flatnonzero(window >= 0)
    order = inside[np.lexsort((-anomaly[inside], window[inside]))]
    w = window[order]
    best = _group_running_max(gain[order], w)
    before = np.r_[-cost.fn, best[:-1]]
    first = np.r_[True, w[1:] != w[:-1]]
    before = np.where(first, -cost.fn, before)
    change[order] = best - before
    by_score = np.argsort(-anomaly, kind="stable")
    totals = null + np.cumsum(change[by_score])
    ranked = anomaly[by_score]
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    candidates = np.flatnonzero(last_of_tie)
    best_at = candidates[np.argmax(totals[candidates])] if len(candidates) else None
    if best_at is None or totals[best_at] <= null:
        threshold, raw = math.inf, null
    else:
        threshold, raw = float(ranked[best_at]), float(totals[best_at])
    detected = anomaly >= threshold
    tp_windows = np.unique(window[detected & (window >= 0)])
    return ProfileScore(
        profile=profile,
        threshold=threshold,
        raw=raw,
        null=null,
        perfect=cost.tp * corpus.window_count,
        tp=len(tp_windows),
        fp=int(np.count_nonzero(detected & (window < 0))),
        fn=windows_total - len(tp_windows),
    )


def _group_running_max(values: Floats, groups: npt.NDArray[np.int64]) -> Floats:
    """The running maximum of ``values`` within each run of equal, ascending ``groups``."""
    if not len(values):
        return values
    # Offset each group far above the one before, so one accumulate serves all.
    scale = 2.0 * (float(np.abs(values).max()) + 1.0)
    keyed = groups * scale + values
    out: Floats = np.maximum.accumulate(keyed) - groups * scale
    return out
