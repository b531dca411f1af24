"""Scraping real exporters over real HTTP: values, labels, and every way a target can fail."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from assure.simulation.exporter import VnfcExporter
from bus.clock import ScaledClock
from bus.contracts import Sample
from collector.scrape import ExpositionError, Scraper, parse_exposition
from collector.targets import ScrapeTarget

LABELS = {"vnf": "vnf-1", "vnfc": "vnfc-1", "vnfd": "fw-vnfd", "host": "host-a"}

GOOD_TEXT = "# TYPE vnf_cpu_utilisation gauge\nvnf_cpu_utilisation 12.5\n"
BAD_TEXT = (
    "# HELP vnf_cpu_utilisation CPU.\n"
    "# TYPE vnf_cpu_utilisation gauge\n"
    "vnf_cpu_utilisation 12.5\n"
    'vnf_requests_per_second{zone="a" 3\n'
    "vnf_active_sessions 7\n"
)


def queue_depths(count: int) -> str:
    """An exposition of ``count`` series of one family: line ``i + 2`` holds series ``i``."""
    lines = [f'vnf_queue_depth{{queue="q{i}"}} {i}\n' for i in range(count)]
    return "# TYPE vnf_queue_depth gauge\n" + "".join(lines)


LARGE_TEXT = queue_depths(3000)
"""About 100 KiB: tens of milliseconds of parsing, too long to hold the event loop."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def http_server(address: str, handler: Handler) -> AsyncIterator[str]:
    """A real HTTP server answering ``/metrics`` with ``handler``; yields its URL."""
    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, address, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://{address}:{port}/metrics"
    finally:
        await runner.cleanup()


def text_handler(text: str, status: int = 200) -> Handler:
    async def handle(_request: web.Request) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/plain")

    return handle


def target(url: str, vnfc: str = "vnfc-1") -> ScrapeTarget:
    return ScrapeTarget(url, {**LABELS, "vnfc": vnfc})


def by_kpi(samples: list[Sample]) -> dict[str, Sample]:
    return {s.kpi: s for s in samples}


@pytest.fixture
def clock() -> ScaledClock:
    return ScaledClock(speed=100)


async def test_scrape_of_an_exporter_yields_its_kpis_with_the_targets_labels(
    clock: ScaledClock,
) -> None:
    exporter = VnfcExporter("127.77.5.1", 0)
    await exporter.start()
    scraper = Scraper(clock)
    try:
        exporter.set("vnf_cpu_utilisation", 73.25)
        exporter.set("vnf_requests_per_second", 1200)
        before = clock.now()
        result = await scraper.scrape(target(exporter.url))
    finally:
        await scraper.aclose()
        await exporter.stop()
    assert result.up and result.error is None
    samples = by_kpi(result.samples)
    assert samples["vnf_cpu_utilisation"].value == 73.25
    assert samples["vnf_requests_per_second"].value == 1200
    assert samples["vnf_active_sessions"].value == 0
    assert samples["vnf_cpu_utilisation"].labels == LABELS
    assert samples["vnf_cpu_utilisation"].ts >= before  # clock time, not wall time
    assert samples["up"].value == 1.0 and samples["up"].labels == LABELS
    assert samples["scrape_samples_scraped"].value == 4
    assert samples["scrape_duration_seconds"].value > 0


async def test_a_refused_connection_is_up_0_not_an_exception(clock: ScaledClock) -> None:
    exporter = VnfcExporter("127.77.5.2", 0)
    await exporter.start()
    url = exporter.url
    await exporter.stop()  # nothing listens there any more
    scraper = Scraper(clock)
    try:
        result = await scraper.scrape(target(url, "vnfc-gone"))
    finally:
        await scraper.aclose()
    assert not result.up
    assert result.error is not None and "vnfc-gone" in result.error and url in result.error
    assert "cannot connect" in result.error
    assert [(s.kpi, s.value) for s in result.samples] == [
        ("up", 0.0),
        ("scrape_duration_seconds", result.duration_s),
        ("scrape_samples_scraped", 0.0),
    ]
    assert result.samples[0].labels["vnfc"] == "vnfc-gone"


async def test_malformed_text_names_target_and_line_and_the_others_are_still_scraped(
    clock: ScaledClock,
) -> None:
    scraper = Scraper(clock)
    async with (
        http_server("127.77.5.3", text_handler(BAD_TEXT)) as bad_url,
        http_server("127.77.5.4", text_handler(GOOD_TEXT)) as good_url,
    ):
        try:
            bad, good = await scraper.scrape_all([target(bad_url, "vnfc-bad"), target(good_url)])
        finally:
            await scraper.aclose()
    assert bad.error is not None
    assert "vnfc-bad" in bad.error and bad_url in bad.error
    assert "line 4" in bad.error and 'vnf_requests_per_second{zone="a" 3' in bad.error
    # A half-parsed body is not trusted: no sample of the bad target but up 0.
    assert [s.kpi for s in bad.samples if s.kpi.startswith("vnf_")] == []
    assert by_kpi(bad.samples)["up"].value == 0.0
    assert good.up and by_kpi(good.samples)["vnf_cpu_utilisation"].value == 12.5


def test_parse_errors_carry_the_line_number_and_text() -> None:
    with pytest.raises(ExpositionError) as caught:
        parse_exposition(BAD_TEXT)
    assert caught.value.line_no == 4
    assert caught.value.line == 'vnf_requests_per_second{zone="a" 3'
    with pytest.raises(ExpositionError, match="line 2"):
        parse_exposition("ok 1\nnot a number here\n")


def test_parse_keeps_labels_and_every_sample_of_a_family() -> None:
    text = (
        "# TYPE lat histogram\n"
        'lat_bucket{le="0.1"} 3\nlat_bucket{le="+Inf"} 5\nlat_sum 0.4\nlat_count 5\n'
        'plain{a="x",b="y"} 2 1700000000000\n'
    )
    assert parse_exposition(text) == [
        ("lat_bucket", {"le": "0.1"}, 3.0),
        ("lat_bucket", {"le": "+Inf"}, 5.0),
        ("lat_sum", {}, 0.4),
        ("lat_count", {}, 5.0),
        ("plain", {"a": "x", "b": "y"}, 2.0),
    ]


async def test_a_label_the_exporter_also_sets_is_kept_as_exported(clock: ScaledClock) -> None:
    text = 'vnf_cpu_utilisation{vnfc="inner",core="0"} 5\n'
    scraper = Scraper(clock)
    async with http_server("127.77.5.5", text_handler(text)) as url:
        try:
            result = await scraper.scrape(target(url))
        finally:
            await scraper.aclose()
    labels = by_kpi(result.samples)["vnf_cpu_utilisation"].labels
    assert labels == {**LABELS, "exported_vnfc": "inner", "core": "0"}


async def test_http_errors_and_hanging_targets_are_up_0(clock: ScaledClock) -> None:
    async def hang(_request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text=GOOD_TEXT)

    scraper = Scraper(clock, timeout_s=0.2)
    async with (
        http_server("127.77.5.6", text_handler("oops", status=500)) as failing_url,
        http_server("127.77.5.7", hang) as hanging_url,
    ):
        try:
            failing, hanging = await scraper.scrape_all(
                [target(failing_url, "vnfc-500"), target(hanging_url, "vnfc-hang")]
            )
        finally:
            await scraper.aclose()
    assert failing.error is not None and "vnfc-500" in failing.error and "HTTP 500" in failing.error
    assert hanging.error is not None and "vnfc-hang" in hanging.error
    assert "no answer within 0.2s" in hanging.error
    assert not failing.up and not hanging.up


async def test_an_oversized_body_is_refused(clock: ScaledClock) -> None:
    scraper = Scraper(clock, max_body_bytes=1024)
    async with http_server("127.77.5.8", text_handler(GOOD_TEXT * 100)) as url:
        try:
            result = await scraper.scrape(target(url))
        finally:
            await scraper.aclose()
    assert result.error is not None and "larger than 1024 bytes" in result.error


async def test_scrapes_run_concurrently_within_the_bound(clock: ScaledClock) -> None:
    in_flight = 0
    peak = 0
    release = asyncio.Event()

    async def slow(_request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if peak == 3:
            release.set()  # the bound is reached: let everyone finish
        await release.wait()
        in_flight -= 1
        return web.Response(text=GOOD_TEXT)

    scraper = Scraper(clock, concurrency=3)
    async with http_server("127.77.5.9", slow) as url:
        try:
            results = await scraper.scrape_all([target(url, f"c{i}") for i in range(10)])
        finally:
            await scraper.aclose()
    assert all(r.up for r in results)
    assert [r.target.labels["vnfc"] for r in results] == [f"c{i}" for i in range(10)]
    assert peak == 3  # concurrent, yet never more than the bound


async def test_connections_are_reused_from_cycle_to_cycle(clock: ScaledClock) -> None:
    peers: list[object] = []

    async def remember_peer(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return web.Response(text=GOOD_TEXT)

    scraper = Scraper(clock)
    async with http_server("127.77.5.10", remember_peer) as url:
        try:
            for _ in range(3):
                await scraper.scrape_all([target(url)])
        finally:
            await scraper.aclose()
    assert len(peers) == 3 and len(set(map(str, peers))) == 1


def parse_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("exposition-parse")}


async def test_a_large_body_is_parsed_in_the_scrapers_own_threads_until_aclose(
    clock: ScaledClock,
) -> None:
    """Parsing a large exposition must not stall the event loop the scraper shares."""
    already = parse_threads()
    scraper = Scraper(clock)
    async with (
        http_server("127.77.5.11", text_handler(GOOD_TEXT)) as small_url,
        http_server("127.77.5.12", text_handler(LARGE_TEXT)) as large_url,
    ):
        try:
            small = await scraper.scrape(target(small_url))
            parsed_inline = parse_threads() - already
            large = await scraper.scrape(target(large_url))
            parsed_off_loop = parse_threads() - already
        finally:
            await scraper.aclose()
    assert small.up and parsed_inline == set()  # a small body is not worth a thread hop
    assert large.up and parsed_off_loop != set()
    assert parse_threads() - already == set()  # aclose stopped them
    depths = {s.labels["queue"]: s for s in large.samples if s.kpi == "vnf_queue_depth"}
    assert len(depths) == 3000
    assert depths["q2999"].value == 2999.0
    assert depths["q7"].labels == {**LABELS, "queue": "q7"}
    assert by_kpi(large.samples)["scrape_samples_scraped"].value == 3000


async def test_a_malformed_large_body_names_target_and_line_as_a_small_one_does(
    clock: ScaledClock,
) -> None:
    bad_line = 'vnf_queue_depth{queue="broken" 3'
    lines = LARGE_TEXT.splitlines(keepends=True)
    text = "".join([*lines[:2500], bad_line + "\n", *lines[2500:]])
    scraper = Scraper(clock)
    async with http_server("127.77.5.13", text_handler(text)) as url:
        try:
            result = await scraper.scrape(target(url, "vnfc-big"))
            threaded = parse_threads() != set()
        finally:
            await scraper.aclose()
    assert threaded
    assert result.error is not None
    assert "vnfc-big" in result.error and url in result.error
    assert "malformed exposition: line 2501" in result.error and bad_line in result.error
    assert [s.kpi for s in result.samples] == [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
    ]
    assert by_kpi(result.samples)["up"].value == 0.0
