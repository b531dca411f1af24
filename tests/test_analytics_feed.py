"""The scrape feed with sharded collectors: silence is known only as far as every live
collector has written its cycles (see :mod:`analytics.feed`).

Two collectors scrape every 5 s here; absence stops trusting a collector 15 s after its
newest entry, as with the shipped settings.
"""

from __future__ import annotations

import msgspec

from analytics.feed import ScrapeFeed
from bus.contracts import PackedBatch
from bus.packing import pack_samples
from tests.analytics_support import T0

STALE_AFTER_S = 15.0


def entry(collector: str, cycle: float, *, complete: bool = True) -> PackedBatch:
    """An entry of ``collector``'s scrape cycle ``cycle`` (its samples do not matter here)."""
    packed = pack_samples("scrape", cycle, [])
    return msgspec.structs.replace(packed, complete=complete, collector=collector)


def fed(*cycles: float) -> ScrapeFeed:
    """A feed in which collectors A and B both completed ``cycles``."""
    feed = ScrapeFeed(STALE_AFTER_S)
    for cycle in cycles:
        feed.note(entry("A", cycle))
        feed.note(entry("B", cycle))
    return feed


def until(feed: ScrapeFeed, now: float) -> float:
    window = feed.window(now)
    assert window is not None
    return window.until


def test_silence_is_known_up_to_the_cycle_every_collector_has_written() -> None:
    feed = fed(T0, T0 + 5)
    # A's cycle T0+10 is all written; B's is still being written.
    feed.note(entry("A", T0 + 10))
    feed.note(entry("B", T0 + 10, complete=False))
    assert until(feed, T0 + 12) == T0 + 5  # B's VNFCs have not missed T0+10
    feed.note(entry("B", T0 + 10))
    assert until(feed, T0 + 13) == T0 + 10
    # A retried entry of an older cycle moves nothing back.
    feed.note(entry("B", T0 + 5))
    feed.note(entry("A", T0, complete=False))
    assert until(feed, T0 + 13) == T0 + 10


def test_a_collector_that_stops_holds_silence_back_then_no_longer_counts() -> None:
    feed = fed(T0, T0 + 5, T0 + 10)  # B dies after its cycle T0+10
    for cycle in (T0 + 15, T0 + 20, T0 + 25):
        feed.note(entry("A", cycle))
    assert until(feed, T0 + 25) == T0 + 10  # 15 s: B may still be writing T0+15
    window = feed.window(T0 + 26)
    assert window is not None
    # B is gone: A alone says how far silence is known, and B's targets (moving to A
    # within the shards' TTL) count as silent only from B's leaving.
    assert (window.since, window.until) == (T0 + 25, T0 + 25)
    feed.note(entry("A", T0 + 30))
    window = feed.window(T0 + 31)
    assert window is not None and (window.since, window.until) == (T0 + 25, T0 + 30)
    assert list(feed.collectors) == ["A"]
    # Retried entries arriving late, of B or of a collector gone before it, change nothing.
    feed.note(entry("B", T0 + 10))
    feed.note(entry("X", T0 + 14))
    assert feed.window(T0 + 31) == window


def test_a_joining_collector_holds_silence_below_its_first_cycle_until_it_completes_it() -> None:
    feed = fed(T0, T0 + 5)
    # C took some of A's and B's shards: its first cycle is under way when theirs complete.
    feed.note(entry("C", T0 + 10, complete=False))
    feed.note(entry("A", T0 + 10))
    feed.note(entry("B", T0 + 10))
    held = until(feed, T0 + 12)
    assert T0 + 5 <= held < T0 + 10  # a VNFC C took over, last scraped at T0+5: not 5 s silent
    feed.note(entry("C", T0 + 10))
    assert until(feed, T0 + 13) == T0 + 10
