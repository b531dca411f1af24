"""Counts of what the push receivers took, for the self-metrics."""

from __future__ import annotations

from collections import Counter, defaultdict


class PushStats:
    """Requests, samples and failures per push source, and time spent taking them."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.samples: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def took(self, source: str, samples: int, seconds: float) -> None:
        self.requests[source] += 1
        self.samples[source] += samples
        self.seconds[source] += seconds

    def failed(self, source: str) -> None:
        self.requests[source] += 1
        self.failures[source] += 1
