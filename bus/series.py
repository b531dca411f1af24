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

:class:`SeriesResolver` is the accessor consumers use: it turns a batch of
either form into a :class:`SampleView` (packed arrays plus definitions,
iterable as :class:`Sample`), fetching unknown definitions from the
registry and forgetting those not seen for a generation.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from typing import Any

import msgspec

from bus.contracts import ContractError, PackedBatch, Sample, SampleBatch, Samples, SeriesDef
from bus.keys import Keys
from bus.streams import read_all

log = logging.getLogger(__name__)

GENERATION_S = 3600.0
"""Length of a registry generation, in wall seconds."""

_BIG_ENDIAN = sys.byteorder == "big"
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


def _to_wire(values: array[Any]) -> bytes:
    if _BIG_ENDIAN:  # pragma: no cover - the wire is little-endian
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _from_wire(typecode: str, data: bytes, what: str) -> array[Any]:
    values = array(typecode)
    if len(data) % values.itemsize:
        raise ContractError(f"samples.v2 {what}: {len(data)} bytes is not whole items")
    values.frombytes(data)
    if _BIG_ENDIAN:  # pragma: no cover
        values.byteswap()
    return values


def pack(
    source: str,
    collected_at: float,
    *,
    series: list[SeriesDef],
    ids: array[int],
    values: array[float],
    ts_counts: array[int],
    ts_values: array[float],
) -> PackedBatch:
    """A :class:`PackedBatch` of arrays: ids ``'Q'``, values ``'d'``, runs ``'I'`` and ``'d'``."""
    return PackedBatch(
        source,
        collected_at,
        series,
        _to_wire(ids),
        _to_wire(values),
        _to_wire(ts_counts),
        _to_wire(ts_values),
    )


def pack_samples(
    source: str,
    collected_at: float,
    samples: Iterable[Sample],
    kind: Callable[[str], Any] | None = None,
) -> PackedBatch:
    """Labelled samples as one packed batch defining every series it holds (tools, tests)."""
    defs: dict[int, SeriesDef] = {}
    ids: array[int] = array("Q")
    values: array[float] = array("d")
    counts: array[int] = array("I")
    times: array[float] = array("d")
    for sample in samples:
        sid = series_id(sample.kpi, sample.labels)
        if sid not in defs:
            defs[sid] = SeriesDef(
                sid, sample.kpi, dict(sample.labels), kind(sample.kpi) if kind else "unknown"
            )
        ids.append(sid)
        values.append(sample.value)
        if times and times[-1] == sample.ts:
            counts[-1] += 1
        else:
            times.append(sample.ts)
            counts.append(1)
    return pack(
        source,
        collected_at,
        series=list(defs.values()),
        ids=ids,
        values=values,
        ts_counts=counts,
        ts_values=times,
    )


class SampleView:
    """One batch, resolved: its samples as arrays, and what each series id stands for.

    ``ids``, ``values`` and ``timestamps`` are parallel arrays (``'Q'``,
    ``'d'``, ``'d'``), ready for ``numpy.frombuffer``. Samples whose series
    could not be resolved are left out (``unresolved`` counts them).
    Iterating yields :class:`Sample` objects, for consumers that want them.
    """

    __slots__ = (
        "_timestamps",
        "collected_at",
        "defs",
        "ids",
        "new",
        "runs",
        "source",
        "unresolved",
        "values",
    )

    def __init__(
        self,
        source: str,
        collected_at: float,
        *,
        ids: array[int],
        values: array[float],
        runs: tuple[array[int], array[float]],
        defs: Mapping[int, SeriesDef],
        new: list[SeriesDef],
        unresolved: int = 0,
    ) -> None:
        self.source = source
        self.collected_at = collected_at
        self.ids = ids
        self.values = values
        self.runs = runs
        """Timestamps as runs: ``(counts, times)``; see :class:`PackedBatch`."""
        self.defs = defs
        """Series id -> definition, for at least every id in ``ids`` (valid until the
        resolver's next :meth:`SeriesResolver.view`: use a view, then drop it)."""
        self.new = new
        """Definitions this resolver had not seen before (or had forgotten)."""
        self.unresolved = unresolved
        self._timestamps: array[float] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def timestamps(self) -> array[float]:
        """One timestamp per sample."""
        if self._timestamps is None:
            out: array[float] = array("d")
            for count, ts in zip(*self.runs, strict=True):
                out.extend(repeat(ts, count))
            self._timestamps = out
        return self._timestamps

    def series(self, sid: int) -> SeriesDef:
        """The definition of series ``sid``."""
        return self.defs[sid]

    def labelled(self) -> SampleBatch:
        """The same samples in the labelled form (for tools, tests and logs)."""
        return SampleBatch(self.source, self.collected_at, list(self))

    def __iter__(self) -> Iterator[Sample]:
        defs = self.defs
        for sid, ts, value in zip(self.ids, self.timestamps, self.values, strict=True):
            d = defs[sid]
            yield Sample(d.kpi, d.labels, ts, value)


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


class SeriesResolver:
    """Turns sample batches of either form into :class:`SampleView` objects.

    Keeps the definitions it learned (from batches and from the registry);
    one not used for a whole generation (``forget_after_s``, wall time) is
    forgotten, so memory follows the live series, not all that ever were.
    Without a registry, only definitions carried by batches resolve.
    """

    def __init__(
        self,
        registry: SeriesRegistry | None,
        *,
        forget_after_s: float = GENERATION_S,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._forget_after_s = forget_after_s
        self._wall = wall
        self._current: dict[int, SeriesDef] = {}
        self._previous: dict[int, SeriesDef] = {}
        self._swapped_at = wall()
        self.unresolved = 0
        """Samples left out so far because their series could not be resolved."""
        self.looked_up = 0
        """Definitions fetched from the registry so far."""

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    async def view(self, batch: Samples) -> SampleView:
        """``batch`` resolved; raises :class:`ContractError` for a malformed packed batch."""
        self._age()
        if isinstance(batch, SampleBatch):
            return self._view_v1(batch)
        return await self._view_v2(batch)

    def _age(self) -> None:
        now = self._wall()
        if now - self._swapped_at >= self._forget_after_s:
            # Two generations: what was used in the last period survives one more.
            self._previous, self._current = self._current, {}
            self._swapped_at = now

    def _learn(self, defs: Iterable[SeriesDef], new: list[SeriesDef]) -> None:
        current = self._current
        for d in defs:
            known = current.get(d.id) or self._previous.pop(d.id, None)
            if known != d:
                new.append(d)
            current[d.id] = d

    def _view_v1(self, batch: SampleBatch) -> SampleView:
        new: list[SeriesDef] = []
        ids: array[int] = array("Q")
        values: array[float] = array("d")
        counts: array[int] = array("I")
        times: array[float] = array("d")
        current = self._current
        for sample in batch.samples:
            sid = series_id(sample.kpi, sample.labels)
            if sid not in current:
                self._learn([SeriesDef(sid, sample.kpi, dict(sample.labels))], new)
            ids.append(sid)
            values.append(sample.value)
            if times and times[-1] == sample.ts:
                counts[-1] += 1
            else:
                times.append(sample.ts)
                counts.append(1)
        return SampleView(
            batch.source,
            batch.collected_at,
            ids=ids,
            values=values,
            runs=(counts, times),
            defs=current,
            new=new,
        )

    async def _view_v2(self, batch: PackedBatch) -> SampleView:
        ids = _from_wire("Q", batch.ids, "ids")
        values = _from_wire("d", batch.values, "values")
        counts = _from_wire("I", batch.ts_counts, "ts_counts")
        times = _from_wire("d", batch.ts_values, "ts_values")
        if len(ids) != len(values) or len(counts) != len(times) or sum(counts) != len(ids):
            raise ContractError(
                f"samples.v2 arrays disagree: {len(ids)} ids, {len(values)} values, "
                f"{sum(counts)} timestamps in {len(counts)}/{len(times)} runs"
            )
        new: list[SeriesDef] = []
        self._learn(batch.series, new)
        current = self._current
        missing = set(ids).difference(current)
        if missing:
            previous = self._previous
            again = [previous.pop(sid) for sid in missing if sid in previous]
            current.update((d.id, d) for d in again)
            missing.difference_update(d.id for d in again)
        if missing and self._registry is not None:
            found = await self._registry.lookup(sorted(missing))
            self.looked_up += len(found)
            self._learn(found.values(), new)
            missing.difference_update(found)
        unresolved = 0
        if missing:
            ids, values, counts, times, unresolved = _without(missing, ids, values, counts, times)
            self.unresolved += unresolved
            log.warning(
                "%d samples of %d unknown series left out of a %s batch",
                unresolved,
                len(missing),
                batch.source,
            )
        return SampleView(
            batch.source,
            batch.collected_at,
            ids=ids,
            values=values,
            runs=(counts, times),
            defs=current,
            new=new,
            unresolved=unresolved,
        )


def _without(
    missing: set[int],
    ids: array[int],
    values: array[float],
    counts: array[int],
    times: array[float],
) -> tuple[array[int], array[float], array[int], array[float], int]:
    """The arrays without the samples of ``missing`` series (runs kept consistent)."""
    kept_ids: array[int] = array("Q")
    kept_values: array[float] = array("d")
    kept_counts: array[int] = array("I")
    kept_times: array[float] = array("d")
    start = 0
    for count, ts in zip(counts, times, strict=True):
        kept = 0
        for i in range(start, start + count):
            if ids[i] not in missing:
                kept_ids.append(ids[i])
                kept_values.append(values[i])
                kept += 1
        if kept:
            kept_counts.append(kept)
            kept_times.append(ts)
        start += count
    return kept_ids, kept_values, kept_counts, kept_times, len(ids) - len(kept_ids)


async def read_samples(redis: Any, keys: Keys) -> list[tuple[str, SampleBatch]]:
    """Every samples-stream entry, in the labelled form (for tools and tests)."""
    resolver = SeriesResolver(SeriesRegistry(redis, keys))
    out: list[tuple[str, SampleBatch]] = []
    for entry_id, message in await read_all(redis, keys.stream("samples")):
        if isinstance(message, SampleBatch | PackedBatch):
            out.append((entry_id, (await resolver.view(message)).labelled()))
    return out
