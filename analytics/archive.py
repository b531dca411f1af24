"""Each shard's recent samples in Redis, so that a worker taking a shard over rebuilds its windows.

The samples stream cannot serve that alone: it is trimmed by entry count,
not time, so at a high rate it holds less than the longest window, and a
worker would read every shard's samples to rebuild one. So each worker
also keeps, per shard, what that shard's windows hold:

- every flush (at most one per ``flush_s`` of clock time, beside the
  evaluations: taken with :meth:`SampleArchive.take`, packed and written
  by :meth:`SampleArchive.write`), the samples kept since the last flush
  go, for each owned shard that needs them, as packed batches
  (:class:`~bus.contracts.PackedBatch`, at most ``PIECE`` samples each,
  in time order) appended to the shard's current *segment*: a Redis list,
  ``keys.sample_history(shard, segment)``, covering ``segment_s`` of
  clock time (half the horizon);
- the first batch of a segment that holds a series carries its definition,
  so a segment is read on its own (the series registry's generations are
  wall time, and a history read back after them must still resolve); each
  series is defined once per segment and shard, and the writer remembers
  which (a set of ids per shard), so a write costs what it writes;
- the shard's head (``keys.sample_history_head``) records the newest
  segment and ``through``: the samples-stream entry up to which the
  history holds what the shard needs;
- when a shard's writing moves to a new segment, the one beyond the
  horizon is deleted, and every key expires by itself a little after it
  (a shard nobody writes any more leaves nothing behind).

So a shard holds at most ``KEEP + 1`` segments: its horizon (the longest
window, staleness or absence any condition reads) plus up to one segment.

A worker that takes a shard over reads its segments oldest first
(:meth:`SampleArchive.read`), rebuilds the shard's windows from them, and
then reads the samples stream after ``through``: what arrived since the
last owner's last flush.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.table import Floats, Ints, SeriesTable
from bus.clock import Clock
from bus.contracts import ContractError, PackedBatch, SeriesDef, decode, encode
from bus.keys import Keys
from bus.redis import reply_text

log = logging.getLogger(__name__)

PIECE = 4096
"""Samples packed at most in one go (one batch of the history)."""
KEEP = 3
"""Segments kept before the newest: with segments of half the horizon, at least the horizon."""
SOURCE = "analytics-history"
"""The ``source`` of the archive's batches (no scrape batch: absence ignores them)."""

Ids = npt.NDArray[np.uint64]

U64 = np.dtype("<u8")
F64 = np.dtype("<f8")
U32 = np.dtype("<u4")


@dataclass
class ShardHistory:
    """What the archive holds for one shard."""

    batches: list[PackedBatch] = field(default_factory=list)
    through: str | None = None
    """The samples-stream entry up to which the batches hold what the shard needs
    (None: no history of this shard)."""


@dataclass
class Flush:
    """One write of the history, taken from the queue (:meth:`SampleArchive.take`)."""

    now: float
    segment: int
    through: str | None
    chunks: list[Kept]
    """The samples taken (back in the queue if the write fails)."""
    epochs: dict[int, int]
    """The shards to write, each with its epoch when taken."""


@dataclass
class Kept:
    """Samples kept by a worker: each with the shard whose history it goes to, and its row."""

    shard: Ints
    ids: Ids
    ts: Floats
    values: Floats
    table: Ints
    """The index of each sample's table (in the archive's ``tables``)."""
    row: Ints

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, sel: Ints) -> Kept:
        return Kept(
            self.shard[sel], self.ids[sel], self.ts[sel], self.values[sel],
            self.table[sel], self.row[sel],
        )  # fmt: skip

    @classmethod
    def joined(cls, parts: Sequence[Kept]) -> Kept:
        return cls(
            np.concatenate([p.shard for p in parts]),
            np.concatenate([p.ids for p in parts]),
            np.concatenate([p.ts for p in parts]),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.table for p in parts]),
            np.concatenate([p.row for p in parts]),
        )


class SampleArchive:
    """Writes the kept samples of each owned shard to Redis, and reads a shard's back."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        clock: Clock,
        tables: Sequence[SeriesTable],
        *,
        horizon_s: float,
        flush_s: float,
    ) -> None:
        if horizon_s <= 0 or flush_s <= 0:
            raise ValueError("the archive's horizon and flush interval must be positive")
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.tables = list(tables)
        self.horizon_s = horizon_s
        self.flush_s = flush_s
        self.segment_s = max(horizon_s / 2.0, flush_s)
        self._pending: list[Kept] = []
        self._flushed_at: float | None = None
        self._segment: dict[int, int] = {}
        """Each shard's segment of the last write."""
        self._defined: dict[int, set[int]] = {}
        """Each shard's series whose definition its current segment holds."""
        self._epoch: dict[int, int] = {}
        """Bumped when a shard is given up: a write under way then leaves its tracking alone."""
        self.written = 0
        """Samples written so far."""

    # --- writing ---------------------------------------------------------
    def add(self, kept: Kept) -> None:
        """Queue kept samples for the next flush."""
        if len(kept):
            self._pending.append(kept)

    @property
    def pending(self) -> int:
        """Samples queued for the next flush."""
        return sum(len(c) for c in self._pending)

    @property
    def ttl_ms(self) -> int:
        """How long a shard's keys live after its last write (wall milliseconds)."""
        return max(1000, math.ceil(self._clock.to_wall((KEEP + 2) * self.segment_s) * 1000))

    def due(self, now: float) -> bool:
        return self._flushed_at is None or now - self._flushed_at >= self.flush_s

    def take(self, now: float, shards: Iterable[int], through: str | None) -> Flush:
        """Take the queued samples for a write of ``shards`` (the owned ones) by :meth:`write`.

        ``through``: the samples-stream entry up to which every sample was
        queued. Samples of shards not given (given up meanwhile) are dropped.
        Taking is synchronous and cheap, so the samples and ``through``
        agree; the packing is left to :meth:`write`.
        """
        owned = sorted(set(shards))
        # Samples too old for any window are not worth keeping (after a long outage).
        oldest = now - self.horizon_s
        chunks = [c for c in self._pending if c.ts.max() >= oldest]
        self._pending = []
        self._flushed_at = now
        epochs = {s: self._epoch.get(s, 0) for s in owned}
        return Flush(now, math.floor(now / self.segment_s), through, chunks, epochs)

    async def write(self, flush: Flush) -> int:
        """Pack and write what :meth:`take` took; returns how many samples.

        Packing goes a piece of at most ``PIECE`` samples at a time, letting
        the event loop run between pieces (the first write of a segment
        defines every series it holds, which takes a while at scale).
        Raises the Redis error when the write fails; the samples go back in
        the queue for the next flush.
        """
        segment, now = flush.segment, flush.now
        ttl_ms = self.ttl_ms
        oldest = now - self.horizon_s
        every = Kept.joined(flush.chunks) if flush.chunks else None
        blobs: dict[int, list[bytes]] = {}
        defined: dict[int, set[int]] = {}
        samples = 0
        try:
            for s in flush.epochs:
                fresh = self._segment.get(s) != segment
                known = set() if fresh else self._defined.get(s, set())
                new = defined[s] = set()
                blobs[s] = []
                if every is None:
                    continue
                sel = np.flatnonzero((every.shard == s) & (every.ts >= oldest))
                mine = every.take(sel[np.argsort(every.ts[sel], kind="stable")])
                for lo in range(0, len(mine), PIECE):
                    piece = mine.take(np.arange(lo, min(lo + PIECE, len(mine))))
                    blobs[s].append(self._batch(now, piece, known, new))
                    await asyncio.sleep(0)
                samples += len(mine)
            async with self._redis.pipeline(transaction=False) as pipe:
                for s, pieces in blobs.items():
                    if self._segment.get(s) != segment:
                        pipe.delete(self._keys.sample_history(s, segment - KEEP - 1))
                    key = self._keys.sample_history(s, segment)
                    if pieces:
                        pipe.rpush(key, *pieces)
                        pipe.pexpire(key, ttl_ms)
                    head = self._keys.sample_history_head(s)
                    fields = {"segment": str(segment)}
                    if flush.through is not None:
                        fields["through"] = flush.through
                    pipe.hset(head, mapping=fields)
                    pipe.pexpire(head, ttl_ms)
                await pipe.execute()
        except BaseException:
            self._pending[:0] = flush.chunks
            raise
        for s, epoch in flush.epochs.items():
            if self._epoch.get(s, 0) != epoch:
                continue  # given up while the write was under way
            if self._segment.get(s) != segment:
                self._segment[s] = segment
                self._defined[s] = set()
            self._defined[s] |= defined[s]
        self.written += samples
        return samples

    def _batch(self, now: float, kept: Kept, known: set[int], new: set[int]) -> bytes:
        """One packed batch of samples in time order, defining the series in neither
        ``known`` nor ``new`` (and adding them to ``new``)."""
        ids, ts, values, table, row = kept.ids, kept.ts, kept.values, kept.table, kept.row
        unique, first = np.unique(ids, return_index=True)
        defs: list[SeriesDef] = []
        for sid, i in zip(unique.tolist(), first.tolist(), strict=True):
            if sid in known or sid in new:
                continue
            new.add(sid)
            t = self.tables[int(table[i])]
            labels = t.info[int(row[i])]
            if labels is not None:  # a row freed since: its series is gone
                defs.append(SeriesDef(sid, t.kpi, dict(labels)))
        starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
        counts = np.diff(np.r_[starts, len(ts)])
        batch = PackedBatch(
            SOURCE,
            now,
            defs,
            ids.astype(U64).tobytes(),
            values.astype(F64).tobytes(),
            counts.astype(U32).tobytes(),
            ts[starts].astype(F64).tobytes(),
        )
        return encode(batch)

    def forget(self, shards: Iterable[int]) -> None:
        """Stop tracking shards given up (their next owner writes their history)."""
        for s in shards:
            self._segment.pop(s, None)
            self._defined.pop(s, None)
            self._epoch[s] = self._epoch.get(s, 0) + 1

    # --- reading ---------------------------------------------------------
    async def read(self, shard: int) -> ShardHistory:
        """The history of ``shard``, oldest batch first."""
        head = await self._redis.hgetall(self._keys.sample_history_head(shard))
        fields = {reply_text(k): reply_text(v) for k, v in head.items()}
        if "segment" not in fields:
            return ShardHistory()
        newest = int(fields["segment"])
        out = ShardHistory(through=fields.get("through"))
        async with self._redis.pipeline(transaction=False) as pipe:
            for segment in range(newest - KEEP, newest + 1):
                pipe.lrange(self._keys.sample_history(shard, segment), 0, -1)
            replies = await pipe.execute()
        for blobs in replies:
            for blob in blobs:
                try:
                    message = decode(blob)
                except ContractError as exc:
                    log.warning("an undecodable batch in shard %d's history: %s", shard, exc)
                    continue
                if isinstance(message, PackedBatch):
                    out.batches.append(message)
        return out
