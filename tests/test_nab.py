"""The NAB scorer against NAB's own published results for the ``numenta`` detector.

The corpus lives in the shared folder (``../shared/datasets/nab`` from the
repository root, or ``NAB_ROOT``); CI has it there.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from analytics.nab import PROFILES, Corpus, score, sweep_scores

REPO = Path(__file__).resolve().parents[1]


def nab_root() -> Path:
    root = Path(os.environ.get("NAB_ROOT", REPO.parent / "shared" / "datasets" / "nab"))
    assert (root / "labels" / "combined_windows.json").is_file(), f"no NAB corpus at {root}"
    return root


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(nab_root())


@pytest.fixture(scope="module")
def numenta(corpus: Corpus) -> dict[str, list[dict[str, str]]]:
    """NAB's published per-row output of the numenta detector, per data file."""
    out = {}
    for file in corpus:
        name = Path(file.name)
        path = nab_root() / "results" / "numenta" / name.parent / f"numenta_{name.name}"
        with path.open(newline="") as f:
            out[file.name] = list(csv.DictReader(f))
    return out


# The published scoreboard (results/final_results.json): numenta's normalised scores.
PUBLISHED = {"standard": 70.1, "reward_low_FP_rate": 63.1, "reward_low_FN_rate": 74.3}


@pytest.mark.parametrize("profile", PROFILES)
def test_the_scorer_reproduces_the_published_numenta_scores(
    corpus: Corpus, numenta: dict[str, list[dict[str, str]]], profile: str
) -> None:
    scores = {
        name: np.array([float(r["anomaly_score"]) for r in rows]) for name, rows in numenta.items()
    }
    result = score(corpus, scores, profile)
    # Our threshold search tries every distinct score; NAB's optimiser
    # searches more coarsely, so we may find a slightly better threshold.
    assert result.normalised == pytest.approx(PUBLISHED[profile], abs=0.5)
    assert result.normalised >= PUBLISHED[profile] - 0.05
    assert result.null == -corpus.profiles[profile].fn * 116
    assert result.perfect == 116.0


def test_each_false_positive_costs_what_nab_says(
    corpus: Corpus, numenta: dict[str, list[dict[str, str]]]
) -> None:
    # NAB's per-row S(t) holds the cost of every detection outside the
    # windows at its threshold (in-window rows it leaves 0: what they
    # score shows in the totals, checked above).
    threshold = 0.5421876907348634
    checked = 0
    for file in corpus:
        rows = numenta[file.name]
        anomaly = np.array([float(r["anomaly_score"]) for r in rows])
        published = np.array([float(r["S(t)_standard"]) for r in rows])
        ours, window = sweep_scores(file, corpus.profiles["standard"])
        false_positive = (anomaly >= threshold) & (window == -1)
        np.testing.assert_allclose(ours[false_positive], published[false_positive], atol=1e-9)
        checked += int(false_positive.sum())
    assert checked == 153


def test_a_detector_that_detects_nothing_scores_zero_and_a_perfect_one_100(corpus: Corpus) -> None:
    nothing = {f.name: np.zeros(len(f.values)) for f in corpus}
    perfect = {}
    for f in corpus:
        s = np.zeros(len(f.values))
        for left, _ in f.windows:
            s[left] = 1.0
        perfect[f.name] = s
    assert score(corpus, nothing).normalised == 0.0
    assert score(corpus, perfect).normalised == pytest.approx(100.0)
