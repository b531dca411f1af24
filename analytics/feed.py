"""The scrape feed: when the collector's scrape batches arrived, the evidence absence rests on.

An absent condition says "this VNFC stopped answering". Only scrape
batches that arrived *without* the VNFC show that: when no batch arrives
at all (the collector is down, partitioned or failing over), every VNFC
looks silent at once, and reporting each of them would heal the whole
deployment for a collector outage. So absence is judged against the feed:

- silence is known only up to the newest scrape batch (its
  ``collected_at``), never up to "now": a gap in the feed proves nothing;
- while no scrape batch has arrived for longer than ``stale_after_s``,
  absence is not evaluated at all (suspended);
- when batches resume after such a gap, silence counts from the
  resumption at the earliest, as it counts from a restart of this worker
  (the feed's first batch counts as a resumption too). A VNFC written
  in a later batch of the resumed cycle is therefore not taken for silent.

A scrape cycle writes its targets as they finish, in several entries;
only the last one is ``complete``. The feed counts complete batches only,
so silence is known up to the newest cycle that is all written, and a
VNFC scraped late in a cycle is not taken for silent while the cycle's
first entries are in and its own is still to come.

Times are the collector's ``collected_at``, in clock seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from bus.contracts import SCRAPE_SOURCE, SampleBatch, Samples
from bus.sample_view import SampleView


@dataclass(frozen=True)
class ScrapeWindow:
    """The span over which the scrape feed shows what each VNFC sent."""

    since: float
    """When the current unbroken run of scrape batches began."""
    until: float
    """The ``collected_at`` of the newest scrape batch (at most ``now``)."""


class ScrapeFeed:
    """Tracks the ``collected_at`` of the scrape batches this worker ingested."""

    def __init__(self, stale_after_s: float) -> None:
        self.stale_after_s = stale_after_s
        self.last: float | None = None
        """The newest scrape batch's ``collected_at``; None before the first."""
        self.resumed_at: float | None = None
        """The first batch after the latest gap longer than ``stale_after_s``."""

    def note(self, batch: Samples | SampleView) -> None:
        """Take in a batch of any source (only the scrape batches that complete a cycle count)."""
        complete = True if isinstance(batch, SampleBatch) else batch.complete
        if batch.source != SCRAPE_SOURCE or not complete:
            return
        at = batch.collected_at
        if self.last is None or at - self.last > self.stale_after_s:
            self.resumed_at = at
        # An older batch arriving late (a retried stream entry) changes nothing.
        if self.last is None or at > self.last:
            self.last = at

    def window(self, now: float) -> ScrapeWindow | None:
        """The window absence is judged in at ``now``; None while the feed is down."""
        if self.last is None or self.resumed_at is None or now - self.last > self.stale_after_s:
            return None
        return ScrapeWindow(since=self.resumed_at, until=min(self.last, now))
