"""The packed samples contract: one id per series, labels once, resolvable by any worker."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from bus.contracts import (
    ContractError,
    Message,
    PackedBatch,
    Sample,
    SampleBatch,
    SeriesDef,
    decode,
    encode,
)
from bus.keys import Keys
from bus.packing import pack_samples
from bus.sample_view import SeriesResolver
from bus.series import SeriesRegistry, series_id
from bus.streams import ConsumerSettings, StreamConsumer
from collector.chunks import SeriesBook
from collector.writer import SampleWriter

SAMPLES = [
    Sample("cpu", {"vnf": "v1", "vnfc": "c1"}, 10.0, 50.0),
    Sample("cpu", {"vnf": "v1", "vnfc": "c2"}, 10.0, 70.0),
    Sample("rx_bytes_total", {"vnfc": "c1", "device": "eth0"}, 11.0, 1e12),
]


def test_a_series_id_depends_on_name_and_labels_not_on_their_order() -> None:
    a = series_id("cpu", {"vnf": "v1", "vnfc": "c1"})
    assert a == series_id("cpu", {"vnfc": "c1", "vnf": "v1"})
    assert a != series_id("cpu", {"vnf": "v1", "vnfc": "c2"})
    assert a != series_id("cpu_total", {"vnf": "v1", "vnfc": "c1"})
    # Separators cannot be forged by moving text between name and value.
    assert series_id("a", {"b": "c"}) != series_id("a", {"bc": ""})
    assert 0 <= a < 2**64


async def test_packed_batches_round_trip_to_the_same_samples_as_the_labelled_form() -> None:
    packed = pack_samples("scrape", 12.0, SAMPLES)
    wire = decode(encode(packed))
    assert isinstance(wire, PackedBatch)
    assert msgspec.msgpack.decode(encode(packed))["type"] == "samples.v2"

    new_view = await SeriesResolver(None).view(wire)
    old_view = await SeriesResolver(None).view(SampleBatch("scrape", 12.0, SAMPLES))
    assert list(new_view) == list(old_view) == SAMPLES
    assert list(new_view.ids) == list(old_view.ids) == [series_id(s.kpi, s.labels) for s in SAMPLES]
    assert list(new_view.timestamps) == [10.0, 10.0, 11.0]
    assert new_view.source == "scrape" and new_view.collected_at == 12.0
    assert {d.kpi for d in new_view.new} == {"cpu", "rx_bytes_total"}
    # Once the labels are known, 16 bytes per sample plus the entry's envelope.
    labels = {"vnf": "8f0c" * 8, "vnfc": "1d2e" * 8, "vnfd": "vfw", "host": "compute-1"}
    many = [Sample(f"kpi_{n}", labels, 10.0, float(n)) for n in range(1000)]
    packed = pack_samples("scrape", 12.0, many)
    bare = PackedBatch(**{**msgspec.structs.asdict(packed), "series": []})
    assert len(encode(bare)) < 16 * 1000 + 200
    assert len(encode(SampleBatch("scrape", 12.0, many))) > 100 * 1000


def test_counters_are_told_apart_from_gauges() -> None:
    assert SeriesDef(1, "rx_bytes_total", {}, "counter").is_counter
    assert SeriesDef(1, "latency_bucket", {"le": "1"}, "histogram").is_counter
    assert SeriesDef(1, "latency_count", {}, "summary").is_counter
    assert not SeriesDef(1, "latency", {"quantile": "0.9"}, "summary").is_counter
    assert not SeriesDef(1, "cpu", {}, "gauge").is_counter
    assert not SeriesDef(1, "cpu", {}).is_counter


async def test_malformed_packed_arrays_are_refused_with_a_reason() -> None:
    good = pack_samples("scrape", 1.0, SAMPLES)
    cases = {
        "not whole items": {"ids": good.ids[:-3]},
        "arrays disagree": {"values": good.values[:-8]},
    }
    for reason, change in cases.items():
        bad = PackedBatch(**{**msgspec.structs.asdict(good), **change})
        with pytest.raises(ContractError, match=reason):
            await SeriesResolver(None).view(bad)


async def test_ids_no_one_defined_are_left_out_and_counted() -> None:
    resolver = SeriesResolver(None)
    packed = pack_samples("scrape", 1.0, SAMPLES)
    bare = PackedBatch(**{**msgspec.structs.asdict(packed), "series": packed.series[:1]})
    view = await resolver.view(bare)
    assert [s.labels.get("vnfc") for s in view] == ["c1"]
    assert view.unresolved == resolver.unresolved == 2
    assert list(view.timestamps) == [10.0]


class Writes:
    """A writer and a book, as a collector source uses them."""

    def __init__(self, redis: Any, keys: Keys, registry: SeriesRegistry) -> None:
        self.writer = SampleWriter(redis, keys, registry, maxlen=1000, max_batch_samples=1000)
        self.book = SeriesBook(self.writer)

    async def write(self, samples: list[Sample]) -> list[str]:
        return await self.writer.write("scrape", 1.0, [self.book.chunk(samples)])


async def test_a_late_worker_resolves_ids_whose_labels_it_never_saw_in_the_stream(
    redis: Any, keys: Keys
) -> None:
    registry = SeriesRegistry(redis, keys)
    writes = Writes(redis, keys, registry)
    (first,), (second,) = await writes.write(SAMPLES), await writes.write(SAMPLES)
    entries = {
        entry_id: decode(fields[b"m"])
        for entry_id, fields in await redis.xrange(keys.stream("samples"))
    }
    later = entries[second.encode()]
    assert isinstance(later, PackedBatch) and later.series == []  # labels travelled once
    assert isinstance(entries[first.encode()], PackedBatch)

    late = SeriesResolver(registry)  # joined after the first entry was trimmed, say
    assert list(await late.view(later)) == SAMPLES
    assert late.looked_up == 3
    assert list(await late.view(later)) == SAMPLES
    assert late.looked_up == 3  # once per series, not per batch


async def test_workers_sharing_a_group_each_resolve_every_entry_they_get(
    redis: Any, keys: Keys
) -> None:
    registry = SeriesRegistry(redis, keys)
    writes = Writes(redis, keys, registry)
    for n in range(6):
        await writes.write([Sample(s.kpi, s.labels, float(n), s.value + n) for s in SAMPLES])
    got: dict[str, list[Sample]] = {"w1": [], "w2": []}

    def handler(name: str, resolver: SeriesResolver) -> Any:
        async def handle(message: Message) -> None:
            assert isinstance(message, PackedBatch)
            got[name].extend(await resolver.view(message))

        return handle

    settings = ConsumerSettings(batch=1, block_ms=10)
    workers = [
        StreamConsumer(
            redis,
            keys.stream("samples"),
            "analytics",
            name,
            handler(name, SeriesResolver(registry)),
            settings=settings,
        )
        for name in got
    ]
    for worker in workers:
        await worker.ensure_group()
    while sum(w.handled for w in workers) < 6:
        for worker in workers:  # entries alternate between the two workers
            await worker.run_once()
    assert len(got["w1"]) and len(got["w2"])
    assert sorted(s.ts for s in got["w1"] + got["w2"]) == sorted(
        float(n) for n in range(6) for _ in SAMPLES
    )
    assert all(s.labels for s in got["w1"] + got["w2"])


async def test_series_are_defined_again_in_each_generation_and_after_redis_lost_them(
    redis: Any, keys: Keys
) -> None:
    now = [100_000.0]
    registry = SeriesRegistry(redis, keys, generation_s=10.0, wall=lambda: now[0])
    writer = SampleWriter(redis, keys, registry, maxlen=1000, max_batch_samples=1000)
    book = SeriesBook(writer, wall=lambda: now[0])
    await writer.write("scrape", 1.0, [book.chunk(SAMPLES)])
    generation = registry.generation()
    assert await redis.hlen(registry.key(generation)) == 3
    assert 0 < await redis.ttl(registry.key(generation)) <= 30

    # Within a generation nothing is defined again.
    assert book.chunk(SAMPLES).again == []
    # A generation later, each series is (re)registered in the new generation.
    now[0] += 10.0
    chunk = book.chunk(SAMPLES)
    assert len(chunk.again) == 3 and chunk.new == []
    await writer.write("scrape", 1.0, [chunk])
    assert await redis.hlen(registry.key(generation + 1)) == 3

    # Redis restarted empty: the writer notices and every series is defined again.
    await redis.flushdb()
    token = writer.token
    await writer.write("scrape", 1.0, [book.chunk(SAMPLES)])
    assert writer.token == token + 1
    await writer.write("scrape", 1.0, [book.chunk(SAMPLES)])
    (_, fields), *_ = await redis.xrevrange(keys.stream("samples"), count=1)
    message = decode(fields[b"m"])
    assert isinstance(message, PackedBatch)
    assert list(await SeriesResolver(registry).view(message)) == SAMPLES


async def test_the_resolver_forgets_series_unused_for_a_generation() -> None:
    now = [0.0]
    resolver = SeriesResolver(None, forget_after_s=10.0, wall=lambda: now[0])
    await resolver.view(pack_samples("scrape", 1.0, SAMPLES[:1]))
    for _ in range(4):  # 24 s: unused for at least two periods
        now[0] += 6.0
        await resolver.view(pack_samples("scrape", 1.0, SAMPLES[1:2]))
    assert len(resolver) == 1
