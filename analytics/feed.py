"""The scrape feed: when the collectors' scrape cycles were written, the evidence absence rests on.

An absent condition says "this VNFC stopped answering". Only scrape
batches that arrived *without* the VNFC show that: when no batch arrives
at all (the collector is down, partitioned or failing over), every VNFC
looks silent at once, and reporting each of them would heal the whole
deployment for a collector outage. So absence is judged against the feed:

- silence is known only up to the scrape batches that arrived (their
  ``collected_at``), never up to "now": a gap in the feed proves nothing;
- while no scrape batch has arrived for longer than ``stale_after_s``,
  absence is not evaluated at all (suspended);
- when batches resume after such a gap, silence counts from the
  resumption at the earliest, as it counts from a restart of this worker
  (the feed's first batch counts as a resumption too). A VNFC written
  in a later batch of the resumed cycle is therefore not taken for silent.

A scrape cycle writes its targets as they finish, in several entries;
only the last one is ``complete``. So silence is known up to a cycle
only once it is all written, and a VNFC scraped late in a cycle is not
taken for silent while the cycle's first entries are in and its own is
still to come.

Collectors are sharded: each scrapes the targets of its own shards, in
cycles of its own, and names itself in every entry (``collector``).
Each spreads its scrapes over part of the interval, so one collector's
cycle can be complete while another's is still being written, and a
VNFC of the second would look silent for a whole interval. So:

- silence is known up to the *oldest* of the newest complete cycles of
  the collectors counted now: every collector whose newest entry
  (complete or not) is at most ``stale_after_s`` old;
- a counted collector without a complete cycle that recent (its first
  cycle after it joined, or after it was cut off) holds silence just
  below the cycle it is writing, until it completes one: the targets it
  took over are written by it now, not by their previous collector;
- a collector that stops writing (stopped, died, cut off from Redis) holds
  silence back for ``stale_after_s``, then is no longer counted. Its
  targets move to the others within the shards' TTL and are scraped from
  a later boundary on, so silence counts from the moment it stopped being
  counted at the earliest, as from a resumption: its VNFCs are not taken
  for silent in the takeover gap;
- batches that name no collector (earlier releases, replays) count as
  those of one collector;
- a batch older than what its collector already wrote (a retried entry)
  moves nothing back, and one of a collector that is not counted any more
  by the newest entry's time changes nothing at all.

Times are the collectors' ``collected_at``, in clock seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bus.contracts import SCRAPE_SOURCE, SampleBatch, Samples
from bus.sample_view import SampleView


@dataclass(frozen=True)
class ScrapeWindow:
    """The span over which the scrape feed shows what each VNFC sent."""

    since: float
    """When the current unbroken run of scrape batches began (or a collector left it)."""
    until: float
    """How far every counted collector's cycles are all written (at most ``now``)."""


@dataclass
class _Collector:
    """What the feed knows of one collector's cycles."""

    complete: float | None = None
    """Its newest complete cycle's ``collected_at``; None before the first."""
    seen: float = -math.inf
    """Its newest entry's ``collected_at``, complete or not."""


class ScrapeFeed:
    """Tracks the ``collected_at`` of the scrape batches this worker ingested, per collector."""

    def __init__(self, stale_after_s: float) -> None:
        self.stale_after_s = stale_after_s
        self.last: float | None = None
        """The newest complete scrape batch's ``collected_at`` (any collector); None before."""
        self.resumed_at: float | None = None
        """The first complete batch after the latest gap longer than ``stale_after_s``."""
        self.collectors: dict[str, _Collector] = {}
        """Collector name -> its cycles, for the collectors that may still be counted."""
        self._left_at = -math.inf
        """When the latest collector forgotten by :meth:`note` stopped being counted."""
        self._newest = -math.inf
        """The newest scrape entry's ``collected_at``, complete or not."""

    def note(self, batch: Samples | SampleView) -> None:
        """Take in a batch of any source (only scrape batches count)."""
        if batch.source != SCRAPE_SOURCE:
            return
        if isinstance(batch, SampleBatch):
            complete, name = True, ""
        else:
            complete, name = batch.complete, batch.collector
        at = batch.collected_at
        if complete:
            if self.last is None or at - self.last > self.stale_after_s:
                self.resumed_at = at
            # An older batch arriving late (a retried stream entry) changes nothing.
            if self.last is None or at > self.last:
                self.last = at
        self._newest = max(self._newest, at)
        collector = self.collectors.get(name)
        if collector is None:
            if self._newest - at > self.stale_after_s:
                return  # a late entry of a collector not counted any more: nothing to wait for
            collector = self.collectors[name] = _Collector()
        collector.seen = max(collector.seen, at)
        if complete and (collector.complete is None or at > collector.complete):
            collector.complete = at
        self._forget_left()

    def window(self, now: float) -> ScrapeWindow | None:
        """The window absence is judged in at ``now``; None while the feed is down."""
        if self.last is None or self.resumed_at is None or now - self.last > self.stale_after_s:
            return None
        since = max(self.resumed_at, self._left_at)
        until = now
        for collector in self.collectors.values():
            if now - collector.seen > self.stale_after_s:
                since = max(since, collector.seen + self.stale_after_s)
            elif collector.complete is not None and now - collector.complete <= self.stale_after_s:
                until = min(until, collector.complete)
            else:
                until = min(until, math.nextafter(collector.seen, -math.inf))
        return ScrapeWindow(since=since, until=until)

    def _forget_left(self) -> None:
        # Collectors no longer counted by the time of the newest entry: what is kept
        # of them is when they left, so the table holds the collectors of now only.
        for name, collector in list(self.collectors.items()):
            if self._newest - collector.seen > self.stale_after_s:
                self._left_at = max(self._left_at, collector.seen + self.stale_after_s)
                del self.collectors[name]
