"""Series ids, the series registry in Redis, and the one way to read sample batches.

A series (a KPI name plus its full labels) has one id everywhere: the first
8 bytes of a BLAKE2b hash of its name and sorted labels
(:func:`series_id`), so every collector gives it the same id without
coordination, and the previous form of batches (:class:`SampleBatch`,
labels on every sample) maps onto the same ids as the packed form
(:class:`PackedBatch`). Two distinct series sharing an id would need a
64-bit collision: about one chance in 10^7 with 10^6 live series.

**How a consumer learns what an id stands for.** A packed batch carries
the definitions of the series its writer sends for the first time; all
the others are in the *series registry*: one Redis hash per hour-long
generation (wall time), field = id, value = the encoded
:class:`SeriesDef`. Writers register a definition before the first batch
that uses it (same pipeline, earlier command) and again once in every
generation while they keep writing the series, and each generation's hash
expires two generations after it ends. So, at any moment, the definition
of every series written in the last hour is in the current or the
previous generation's hash, whichever worker reads whichever entry: a
worker that joins late, restarts, or gets only some entries of the stream
(a consumer group shared by several workers, by shard) resolves every id
with one HMGET of the ids it does not know yet, per batch. Series no longer
written vanish from the registry with their generation, so it holds about
two hours of series, never all that ever existed.

This module holds the ids and the registry; the packed form is written by
:mod:`bus.packing` and read back by :class:`bus.sample_view.SeriesResolver`,
the accessor consumers use: it turns a batch of either form into a
:class:`~bus.sample_view.SampleView` (packed arrays plus definitions,
iterable as :class:`Sample`), fetching unknown definitions from the
registry and forgetting those not seen for a generation.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from bus.contracts import SeriesDef
from bus.keys import Keys

log = logging.getLogger(__name__)

GENERATION_S = 3600.0
"""Length of a registry generation, in wall seconds."""

_def_encoder = msgspec.msgpack.Encoder()
_def_decoder = msgspec.msgpack.Decoder(SeriesDef)


def series_id(kpi: str, labels: Mapping[str, str]) -> int:
    """The id of the series ``kpi`` with ``labels`` (a 64-bit hash; order of labels irrelevant)."""
    parts = [kpi]
    for name in sorted(labels):
        parts.append(name)
        parts.append(labels[name])
    # 0xff never occurs in UTF-8, so it separates names and values unambiguously.
    digest = hashlib.blake2b(b"\xff".join(p.encode() for p in parts), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class SeriesRegistry:
    """The series definitions in Redis, one hash per generation (see the module docstring)."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        *,
        generation_s: float = GENERATION_S,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self.generation_s = generation_s
        self._wall = wall

    def generation(self) -> int:
        """The current generation number."""
        return int(self._wall() // self.generation_s)

    def _ttl_s(self, generation: int) -> int:
        # Until two generations after this one ends.
        ends = (generation + 1) * self.generation_s
        return max(1, round(ends + 2 * self.generation_s - self._wall()))

    def key(self, generation: int) -> str:
        return self._keys.series_defs(generation)

    def add_to(self, pipe: Any, defs: Sequence[SeriesDef], generation: int) -> None:
        """Queue the registration of ``defs`` in ``generation`` on a pipeline."""
        if not defs:
            return
        key = self.key(generation)
        pipe.hset(key, mapping={str(d.id): _def_encoder.encode(d) for d in defs})
        pipe.expire(key, self._ttl_s(generation))

    async def register(self, defs: Sequence[SeriesDef]) -> None:
        """Register ``defs`` in the current generation now (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            self.add_to(pipe, defs, self.generation())
            await pipe.execute()

    async def lookup(self, ids: Sequence[int]) -> dict[int, SeriesDef]:
        """The definitions of ``ids`` found in the current, previous or next generation."""
        if not ids:
            return {}
        now = self.generation()
        fields = [str(sid) for sid in ids]
        async with self._redis.pipeline(transaction=False) as pipe:
            # The next one too: a writer whose wall clock runs a little ahead.
            for generation in (now, now - 1, now + 1):
                pipe.hmget(self.key(generation), fields)
            replies = await pipe.execute()
        found: dict[int, SeriesDef] = {}
        for reply in replies:
            for sid, raw in zip(ids, reply, strict=True):
                if raw is None or sid in found:
                    continue
                try:
                    found[sid] = _def_decoder.decode(raw)
                except msgspec.DecodeError:
                    log.warning("undecodable definition of series %d in the registry", sid)
        return found
