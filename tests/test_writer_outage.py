"""The samples writer through a Redis outage: bounded buffer, drops counted, back when Redis is."""

from __future__ import annotations

import asyncio

from bus.contracts import Sample
from bus.keys import Keys
from bus.redis import connect
from bus.sample_view import read_samples
from bus.series import SeriesRegistry
from collector.chunks import SeriesBook
from collector.writer import SampleWriter
from tests.redis_server import RedisServer


def samples(n: int, ts: float) -> list[Sample]:
    return [Sample("kpi", {"vnfc": f"c{i}"}, ts, float(i)) for i in range(n)]


async def test_samples_wait_out_an_outage_within_the_bound_and_the_drops_are_counted() -> None:
    server = RedisServer()
    port = server.port
    redis = connect(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    keys = Keys(prefix="outage")
    writer = SampleWriter(
        redis, keys, SeriesRegistry(redis, keys), maxlen=1000, max_batch_samples=10,
        max_buffered_samples=30, timeout_s=1.0,
    )  # fmt: skip
    book = SeriesBook(writer)
    try:
        assert len(await writer.write("scrape", 1.0, [book.chunk(samples(10, 1.0))])) == 1
        server.stop()  # Redis goes away (and comes back empty: no persistence)
        for n in range(2, 7):  # 50 samples while it is away, 30 may wait
            assert await writer.write("scrape", float(n), [book.chunk(samples(10, float(n)))]) == []
        assert writer.buffered == 30 and writer.dropped == 20
        server = RedisServer(port=port)
        for _ in range(300):  # the writer retries by itself, with back-off
            if writer.buffered == 0:
                break
            await asyncio.sleep(0.05)
        assert writer.buffered == 0 and writer.written == 40
        # Redis came back empty: the writer noticed, and sources define their series again.
        assert writer.token == 1
        await writer.write("scrape", 7.0, [book.chunk(samples(10, 7.0))])
        batches = [b for _, b in await read_samples(redis, keys)]
        assert [b.collected_at for b in batches][-1] == 7.0
        assert len(batches[-1].samples) == 10  # resolvable by a fresh reader
        assert sorted({b.collected_at for b in batches}) == [4.0, 5.0, 6.0, 7.0]
    finally:
        await writer.aclose()
        await redis.aclose()
        server.stop()
