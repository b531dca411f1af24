"""The project's anomaly detector on the Numenta Anomaly Benchmark, beside the published table.

Each NAB data file is one KPI of one target. Its values go, in order,
through the detector of ``kind: anomaly`` conditions
(:mod:`analytics.anomaly`): the streaming statistical score from the
first value, and the IsolationForest trained on the residual history once
the file's probationary period (NAB's learning period) has passed, then
trained again every 1000 values on the newest 4000; that raw score judged
against the file's own raw scores so far, with new extremes scoring 1
(:mod:`analytics.likelihood`). Alarms follow the stage's episodes
(:mod:`analytics.episodes`): an ONSET when the score reaches 0.5, then
nothing more until the score has stayed below it for 10 values
(``clear_for``), so a row inside an open episode is reported below the
alarm level (it raises nothing). Every score depends on the values before
it only (no look-ahead). NAB then picks each profile's best threshold and
normalises (:mod:`analytics.nab`).

Model scores between retrainings do not depend on each other, so they are
computed per model in one call: the same numbers as value by value.

    python benchmarks/nab.py                      # ../shared/datasets/nab, or NAB_ROOT
    python benchmarks/nab.py --files realKnownCause
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and the
# benchmark named analytics.py there would hide the analytics package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from datetime import datetime  # noqa: E402

import numpy as np  # noqa: E402

from analytics.anomaly import AnomalyScorer, ModelStore, fit  # noqa: E402
from analytics.episodes import FIRING, Episodes  # noqa: E402
from analytics.likelihood import Likelihood  # noqa: E402
from analytics.nab import PROFILES, Corpus, DataFile, score  # noqa: E402

ALARM = 0.5
"""The score threshold of the alarms (an ``anomaly.score`` of 0.5)."""
CLEAR_VALUES = 10
RETRAIN_VALUES = 1000

REPO = Path(__file__).resolve().parents[1]


def detect(file: DataFile) -> np.ndarray:
    """The detector's per-row scores of one file, as NAB reads them."""
    times = np.array([datetime.fromisoformat(t).timestamp() for t in file.timestamps])
    n = len(file.values)
    scorer = AnomalyScorer()
    store = ModelStore(file.name)
    idx = np.array([0])
    stat = np.zeros(n)
    rows = np.zeros((n, 12))
    for i in range(n):
        s, r = scorer.take(idx, file.values[i : i + 1], times[i : i + 1])
        stat[i], rows[i] = s[0], r[0]
    warm = scorer_warm(n)
    agreement = np.ones(n)
    start = max(file.probation, 200)
    for begin in range(start, n, RETRAIN_VALUES):
        history = rows[:begin][warm[:begin]][-store.max_rows :]
        store.install(fit(history), store.version + 1, times[begin])
        end = min(n, begin + RETRAIN_VALUES)
        found = store.agreement(rows[begin:end])
        assert found is not None
        agreement[begin:end] = found
    likelihood = Likelihood()
    judged = stat * agreement
    raw = np.empty(n)
    for i in range(n):
        one = slice(i, i + 1)
        raw[i] = likelihood.score(idx, judged[one], file.values[one])[0]
    interval = float(np.median(np.diff(times))) if n > 1 else 1.0
    episodes = Episodes(for_s=0.0, clear_for_s=CLEAR_VALUES * interval, n_of_m=None)
    episodes.ensure(1)
    out = raw.copy()
    for i in range(n):
        was_firing = episodes.phase[0] == FIRING
        v = raw[i : i + 1]
        episodes.step(idx, v >= ALARM, v < ALARM, times[i : i + 1], times[i])
        if was_firing:
            out[i] = min(raw[i], np.nextafter(ALARM, 0.0))
    return out


def scorer_warm(n: int) -> np.ndarray:
    """Rows the model learns from: those after the residuals warmed up (as the judge keeps)."""
    warm = np.zeros(n, dtype=bool)
    warm[21:] = True
    return warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    default = os.environ.get("NAB_ROOT", str(REPO.parent / "shared" / "datasets" / "nab"))
    parser.add_argument("--nab", type=Path, default=Path(default), help="The NAB corpus.")
    args = parser.parse_args()
    corpus = Corpus(args.nab)
    started = time.perf_counter()
    scores = {file.name: detect(file) for file in corpus}
    elapsed = time.perf_counter() - started
    rows = sum(len(f.values) for f in corpus)
    print(f"{len(scores)} files, {rows} values scored in {elapsed:.1f} s")
    with (args.nab / "results" / "final_results.json").open() as f:
        published: dict[str, dict[str, float]] = json.load(f)
    ours = {profile: score(corpus, scores, profile) for profile in PROFILES}
    table = {"nfv-assure": {p: s.normalised for p, s in ours.items()}, **published}
    print(f"{'detector':<20} {'standard':>9} {'low FP':>9} {'low FN':>9}")
    for name, profiles in sorted(table.items(), key=lambda kv: -kv[1]["standard"]):
        mark = "  <-" if name == "nfv-assure" else ""
        print(
            f"{name:<20} {profiles['standard']:9.1f} {profiles['reward_low_FP_rate']:9.1f} "
            f"{profiles['reward_low_FN_rate']:9.1f}{mark}"
        )
    s = ours["standard"]
    print(f"standard: threshold {s.threshold:.4f}, {s.tp} windows hit, {s.fn} missed, {s.fp} FP")
    print(
        f"nab: standard {ours['standard'].normalised:.1f}, "
        f"reward_low_FP {ours['reward_low_FP_rate'].normalised:.1f}, "
        f"reward_low_FN {ours['reward_low_FN_rate'].normalised:.1f}"
    )


if __name__ == "__main__":
    main()
