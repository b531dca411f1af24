"""Anomaly detection: a streaming statistical score, confirmed by a scikit-learn model.

Each new value of a target is described by three residuals, judged before
the value is taken in: its distance from the target's EWMA (of lightly
smoothed values), from the EWMA of its time-of-day bucket, and the
unusualness of its step from the previous value, each in standard
deviations. The *statistical score* is the tail probability of the larger
of the first two, on a log scale: ``-log10(p) / 12`` clipped to [0, 1]
(0.5 is one chance in a million). It needs no training: it covers the
cold start.

An :class:`~sklearn.ensemble.IsolationForest`, one per KPI and VNFD,
learns what those residuals (with their last three values: the recent
shape) usually look like, from a bounded history of them
(:class:`ModelStore`, kept in Redis by :mod:`analytics.models`). Once it is
trained, a value's score is the statistical score times the model's
agreement that the residuals are unusual (a logistic of the model's
anomaly score, in robust standard deviations of its training scores): a
value the statistics find extreme but the model finds ordinary for this
KPI scores low. Training is heavy: the running stage does it off the
event loop (:mod:`analytics.models`), a replay inline.

That *raw* score is then judged against the target's own raw scores, and
new extremes of its values score 1 (:mod:`analytics.likelihood`): the
score a condition compares with ``anomaly.score``.

Parameters are per value: the NAB benchmark (``benchmarks/nab.py``) chose them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr
from sklearn.ensemble import IsolationForest

from analytics.judges import Judged, compared, number
from analytics.likelihood import Likelihood
from analytics.readings import Readings
from analytics.streaming import Ewma, NewValues, Seasonal
from analytics.table import Bools, Floats, Ints
from bus.conditions import AnomalySpec, Comparison, ConditionSpec

SMOOTHING = 0.3
"""Weight of a new value in the smoothed value the residuals read."""
GLOBAL_ALPHA = 0.005
SEASONAL_ALPHA = 0.05
STEP_ALPHA = 0.01
SEASON_S = 86_400.0
BUCKETS = 24
LAGS = 3
RESIDUALS = 3
FEATURES = RESIDUALS * (LAGS + 1)
CLIP = 20.0
WARM = 20
"""Values a target needs before its residuals mean anything."""
GATE_CENTRE = 2.0
"""The model agrees at half strength at 2 robust standard deviations."""
TREES = 50
HISTORY_ROWS = 4000
"""Feature rows a model is trained on at most (the newest)."""


def tail_score(z: Floats) -> Floats:
    """``-log10`` of the two-sided normal tail probability of ``z``, over 12, in [0, 1]."""
    z = np.nan_to_num(np.abs(z), nan=0.0)
    log10_p = (math.log(2.0) + log_ndtr(-z)) / math.log(10.0)
    out: Floats = np.clip(-log10_p / 12.0, 0.0, 1.0)
    return out


@dataclass(frozen=True)
class Fitted:
    """A trained model and what calibrates its scores."""

    model: IsolationForest
    median: float
    spread: float
    rows: int


def fit(rows: Floats) -> Fitted:
    """Train a model on feature ``rows`` (blocking: run it off the event loop)."""
    model = IsolationForest(n_estimators=TREES, random_state=0).fit(rows)
    raw = -model.score_samples(rows)
    median = float(np.median(raw))
    spread = float(np.median(np.abs(raw - median)) * 1.4826) + 1e-9
    return Fitted(model, median, spread, len(rows))


class ModelStore:
    """The model of one KPI and VNFD, and the history it learns from (bounded).

    Running as a stage, new feature rows wait in ``pending`` until the
    keeper (:mod:`analytics.models`) appends them to the history in Redis,
    which every worker shares and training reads. A replay keeps the
    history here instead (``local``) and trains on it inline.
    """

    def __init__(self, key: str, max_rows: int = HISTORY_ROWS) -> None:
        self.key = key
        self.max_rows = max_rows
        self.local = False
        """Whether the history is kept here (replays) rather than in Redis."""
        self.history: Floats = np.zeros((0, FEATURES))
        """The history, when kept here."""
        self.pending: list[Floats] = []
        """Rows not written to Redis yet (as a stage)."""
        self.stored = 0
        """Rows of the history in Redis, when last written or counted."""
        self.fitted: Fitted | None = None
        self.version = 0
        self.trained_at: float | None = None
        self.training = False

    def add(self, rows: Floats) -> None:
        if not len(rows):
            return
        if self.local:
            self.history = np.vstack([self.history, rows])[-self.max_rows :]
            return
        self.pending.append(rows)
        # Rows Redis cannot take now are not hoarded beyond what it would keep.
        while sum(len(r) for r in self.pending) - len(self.pending[0]) >= self.max_rows:
            self.pending.pop(0)

    @property
    def rows(self) -> int:
        """Rows of history there are to train on."""
        return len(self.history) if self.local else self.stored

    def due(self, now: float, spec: AnomalySpec) -> bool:
        """Whether a (new) model should be trained now."""
        if self.training or self.rows < spec.min_history:
            return False
        return self.trained_at is None or now - self.trained_at >= spec.retrain_s

    def install(self, fitted: Fitted, version: int, trained_at: float) -> None:
        self.fitted = fitted
        self.version = version
        self.trained_at = trained_at

    def agreement(self, rows: Floats) -> Floats | None:
        """How much the model agrees ``rows`` are unusual (0..1); None without a model."""
        if self.fitted is None:
            return None
        f = self.fitted
        z = (-f.model.score_samples(rows) - f.median) / f.spread
        out: Floats = 1.0 / (1.0 + np.exp(-(z - GATE_CENTRE)))
        return out


class AnomalyScorer:
    """The per-target state behind the score of each new value (vectorised)."""

    def __init__(self) -> None:
        self.new = NewValues()
        self.smooth = Ewma()  # only its mean is used: the smoothed value
        self.level = Ewma()
        self.seasonal = Seasonal(BUCKETS, SEASON_S)
        self.step = Ewma()
        self.previous: Floats = np.full(16, np.nan)
        self.lags: Floats = np.zeros((16, LAGS + 1, RESIDUALS))

    def ensure(self, size: int) -> None:
        for part in (self.new, self.smooth, self.level, self.seasonal, self.step):
            part.ensure(size)
        if len(self.previous) < size:
            grow = max(size, 2 * len(self.previous)) - len(self.previous)
            self.previous = np.r_[self.previous, np.full(grow, np.nan)]
            self.lags = np.concatenate([self.lags, np.zeros((grow, LAGS + 1, RESIDUALS))])

    def arrays(self) -> list[Floats]:
        """The per-target arrays (their state), in a fixed order."""
        parts = (self.new, self.smooth, self.level, self.seasonal, self.step)
        return [a for part in parts for a in part.arrays()] + [self.previous, self.lags]

    def warm(self, idx: Ints) -> Bools:
        """Which of ``idx`` have taken enough values for their residuals to mean something."""
        out: Bools = self.level.count[idx] > WARM
        return out

    def take(self, idx: Ints, x: Floats, at: Floats) -> tuple[Floats, Floats]:
        """Judge then take in new values: their statistical scores and feature rows."""
        self.ensure(int(idx.max()) + 1 if len(idx) else 0)
        self.new.took(idx, at)
        self.smooth.update(idx, x, np.full(len(idx), SMOOTHING))
        smoothed = self.smooth.mean[idx]
        zg = self.level.z(idx, smoothed)
        zs = self.seasonal.z(idx, smoothed, at, warmup=3)
        previous = self.previous[idx]
        step = np.abs(x - np.where(np.isnan(previous), x, previous))
        zd = self.step.z(idx, step)
        self.level.update(idx, smoothed, np.full(len(idx), GLOBAL_ALPHA))
        self.seasonal.update(idx, smoothed, at, np.full(len(idx), SEASONAL_ALPHA))
        self.step.update(idx, step, np.full(len(idx), STEP_ALPHA))
        self.previous[idx] = x
        warm = self.warm(idx)
        residuals = np.column_stack([zg, zs, zd])
        residuals = np.clip(np.nan_to_num(residuals, nan=0.0), -CLIP, CLIP)
        residuals[~warm] = 0.0
        self.lags[idx, 1:] = self.lags[idx, :-1]
        self.lags[idx, 0] = residuals
        rows = self.lags[idx].reshape(len(idx), FEATURES)
        score = np.where(warm, np.maximum(tail_score(zg), tail_score(zs)), 0.0)
        return score, rows


class AnomalyJudge:
    """``kind: anomaly``: the score of each target's newest value against ``anomaly.score``.

    It clears when the score falls back to ``clear`` (default: the score
    threshold); an unknown value has no score.
    """

    name = "anomaly/isolation_forest"
    op: Comparison = ">"

    def __init__(self, cond: ConditionSpec, store: ModelStore) -> None:
        self.cond = cond
        self.spec = cond.anomaly or AnomalySpec()
        self.threshold = self.spec.score
        self.clear = self.spec.score if cond.clear is None else cond.clear
        self.store = store
        self.scorer = AnomalyScorer()
        self.likelihood = Likelihood()
        self.scores: Floats = np.full(16, np.nan)
        self.unsaved: Bools = np.zeros(16, dtype=np.bool_)
        """Targets whose state changed since :meth:`saved` last took it."""
        self.inline_training = False
        """Train when due, right away (replays); else the stage's keeper trains."""

    def ensure(self, size: int) -> None:
        self.scorer.ensure(size)
        self.likelihood.ensure(size)
        if len(self.scores) < size:
            self.scores = np.r_[self.scores, np.full(size - len(self.scores), np.nan)]
            self.unsaved = np.r_[self.unsaved, np.zeros(size - len(self.unsaved), dtype=np.bool_)]

    def state(self, idx: Ints) -> Floats:
        """The scoring state of targets ``idx``: one row of floats each (see :meth:`restore`)."""
        arrays = self._arrays()
        return np.hstack([a[idx].reshape(len(idx), -1) for a in arrays])

    def restore(self, idx: Ints, rows: Floats) -> None:
        """Resume scoring targets ``idx`` from ``rows`` of :meth:`state` (of the same width)."""
        if rows.shape[1] != self.width:
            raise ValueError(f"a scoring state of {rows.shape[1]} values, expected {self.width}")
        self.ensure(int(idx.max()) + 1 if len(idx) else 0)
        at = 0
        for a in self._arrays():
            width = int(np.prod(a.shape[1:], dtype=np.int64))
            a[idx] = rows[:, at : at + width].reshape((len(idx), *a.shape[1:]))
            at += width

    @property
    def width(self) -> int:
        """Floats in a row of :meth:`state`."""
        return sum(int(np.prod(a.shape[1:], dtype=np.int64)) for a in self._arrays())

    def saved(self) -> Ints:
        """The targets whose state changed since the last call (marked saved now)."""
        out: Ints = np.flatnonzero(self.unsaved)
        self.unsaved[out] = False
        return out

    def _arrays(self) -> list[Floats]:
        return [*self.scorer.arrays(), *self.likelihood.arrays(), self.scores]

    def judge(self, targets: Ints, readings: Readings, now: float) -> Judged:
        """Score the targets' new values; judge every target's latest score."""
        self.ensure(int(targets.max()) + 1 if len(targets) else 0)
        value, at = readings.value, readings.at
        fresh = self.scorer.new.new(targets, value, at)
        self.scores[targets[np.isnan(value)]] = np.nan
        idx = targets[fresh]
        if len(idx):
            stat, rows = self.scorer.take(idx, value[fresh], at[fresh])
            agreement = self.store.agreement(rows)
            raw = stat if agreement is None else stat * agreement
            self.scores[idx] = self.likelihood.score(idx, raw, value[fresh])
            self.unsaved[idx] = True
            self.store.add(rows[self.scorer.warm(idx)])
        if self.inline_training and self.store.due(now, self.spec):
            assert self.store.local, "inline training learns from the history kept here"
            self.store.install(fit(self.store.history), self.store.version + 1, now)
        return compared(">", self.scores[targets], self.threshold, self.clear)

    def phrase(self, subject: str, value: float, signal: float) -> str:
        model = f"model v{self.store.version}" if self.store.fitted else "no model yet"
        return f"anomaly score {signal:.2f} of {subject} {number(value)} ({model})"

    def limit(self, value: float) -> str:
        return f"{value:g}"
