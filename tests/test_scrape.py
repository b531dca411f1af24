"""Scraping real exporters over real HTTP: values, labels, and every way a target can fail."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import math
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from assure.simulation.exporter import VnfcExporter
from bus.clock import ScaledClock
from bus.contracts import Sample
from collector.scrape import Scraper
from collector.targets import ScrapeOptions, ScrapeTarget

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


def target(url: str, vnfc: str = "vnfc-1", **options: Any) -> ScrapeTarget:
    return ScrapeTarget(url, {**LABELS, "vnfc": vnfc}, ScrapeOptions(**options))


class Terms:
    """The writer's side of series definitions, as a scraper sees it."""

    token = 0

    def reregister_after_s(self) -> float:
        return 3600.0


def scraper_for(clock: ScaledClock, **options: Any) -> Scraper:
    return Scraper(clock, Terms(), **options)


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
    scraper = scraper_for(clock)
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
    scraper = scraper_for(clock)
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
    scraper = scraper_for(clock)
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


async def test_a_label_the_exporter_also_sets_is_kept_as_exported(clock: ScaledClock) -> None:
    text = 'vnf_cpu_utilisation{vnfc="inner",core="0"} 5\n'
    scraper = scraper_for(clock)
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

    scraper = scraper_for(clock, timeout_s=0.2)
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
    scraper = scraper_for(clock, max_body_bytes=1024)
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

    scraper = scraper_for(clock, concurrency=3)
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

    scraper = scraper_for(clock)
    async with http_server("127.77.5.10", remember_peer) as url:
        try:
            for _ in range(3):
                await scraper.scrape_all([target(url)])
        finally:
            await scraper.aclose()
    assert len(peers) == 3 and len(set(map(str, peers))) == 1


def gzip_handler(body: bytes) -> Handler:
    async def handle(_request: web.Request) -> web.Response:
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"}
        )

    return handle


async def test_gzip_bodies_are_inflated_and_bombs_refused(clock: ScaledClock) -> None:
    bomb = gzip.compress(b"# " + b"x" * (64 * 1024 * 1024) + b"\n")  # ~64 KiB on the wire
    scraper = scraper_for(clock, max_body_bytes=1024 * 1024)
    async with (
        http_server("127.77.5.20", gzip_handler(gzip.compress(GOOD_TEXT.encode()))) as good_url,
        http_server("127.77.5.21", gzip_handler(bomb)) as bomb_url,
        http_server("127.77.5.22", gzip_handler(b"\x1f\x8b garbage")) as garbage_url,
    ):
        try:
            good, bombed, garbage = await scraper.scrape_all(
                [target(good_url), target(bomb_url, "c-bomb"), target(garbage_url, "c-bad")]
            )
        finally:
            await scraper.aclose()
    assert good.up and by_kpi(good.samples)["vnf_cpu_utilisation"].value == 12.5
    assert bombed.error is not None and "larger than 1048576 bytes" in bombed.error
    assert garbage.error is not None and "gzip" in garbage.error
    assert by_kpi(bombed.samples)["up"].value == 0.0


async def test_a_100_mb_body_is_cut_off_at_the_limit(clock: ScaledClock) -> None:
    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        line = b'vnf_queue_depth{queue="qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"} 1\n' * 1000
        try:
            while sent < 100 * 1024 * 1024:
                await response.write(line)
                sent += len(line)
        except (ConnectionResetError, RuntimeError):
            pass  # the scraper hung up, as it should
        return response

    scraper = scraper_for(clock)  # the default limit: 8 MiB
    async with http_server("127.77.5.23", endless) as url:
        try:
            result = await scraper.scrape(target(url))
        finally:
            await scraper.aclose()
    assert result.error is not None and "larger than 8388608 bytes" in result.error
    assert sent < 100 * 1024 * 1024


async def test_openmetrics_is_asked_for_and_read_as_such(clock: ScaledClock) -> None:
    accepted: list[str] = []

    async def openmetrics(request: web.Request) -> web.Response:
        accepted.append(request.headers.get("Accept", ""))
        body = '# TYPE jobs counter\njobs_total 3 # {trace="a"} 1\njobs_created 17.5\n# EOF\n'
        return web.Response(
            text=body,
            headers={"Content-Type": "application/openmetrics-text; version=1.0.0; charset=utf-8"},
        )

    scraper = scraper_for(clock)
    async with http_server("127.77.5.24", openmetrics) as url:
        try:
            result = await scraper.scrape(target(url))
        finally:
            await scraper.aclose()
    assert accepted[0].startswith("application/openmetrics-text")
    assert result.up
    assert by_kpi(result.samples)["jobs_total"].value == 3.0
    assert by_kpi(result.samples)["jobs_created"].value == 17.5


async def test_options_labels_and_honor_labels(clock: ScaledClock) -> None:
    text = 'vnf_cpu_utilisation{vnfc="inner",site="exporter"} 5\n'
    scraper = scraper_for(clock)
    async with http_server("127.77.5.25", text_handler(text)) as url:
        try:
            honoured = await scraper.scrape(
                target(url, honor_labels=True, labels=(("site", "target"), ("rack", "r1")))
            )
        finally:
            await scraper.aclose()
    labels = by_kpi(honoured.samples)["vnf_cpu_utilisation"].labels
    assert labels == {**LABELS, "vnfc": "inner", "site": "exporter", "rack": "r1"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.77.5.26, made by openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", key, "-out", cert, "-subj", "/CN=exporter",
            "-addext", "subjectAltName=IP:127.77.5.26",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_with_bearer_and_basic_auth(
    clock: ScaledClock, certificate: tuple[str, str]
) -> None:
    cert, key = certificate
    seen: list[str | None] = []

    async def guarded(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") not in ("Bearer s3cret", BASIC):
            return web.Response(status=401, text="who are you")
        return web.Response(text=GOOD_TEXT)

    app = web.Application()
    app.router.add_get("/metrics", guarded)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.77.5.26", 0, ssl_context=context)
    await site.start()
    url = f"https://127.77.5.26:{runner.addresses[0][1]}/metrics"
    scraper = scraper_for(clock)
    try:
        bearer, basic, anonymous, untrusted = await scraper.scrape_all(
            [
                target(url, "c-bearer", bearer_token="s3cret", tls_ca_file=cert),
                target(url, "c-basic", basic_auth=("ops", "pw"), tls_ca_file=cert),
                target(url, "c-anon", tls_ca_file=cert),
                target(url, "c-untrusted"),
            ]
        )
    finally:
        await scraper.aclose()
        await runner.cleanup()
    assert bearer.up and basic.up
    assert anonymous.error is not None and "HTTP 401" in anonymous.error
    assert untrusted.error is not None and "c-untrusted" in untrusted.error
    assert "Bearer s3cret" in seen and BASIC in seen


BASIC = "Basic " + base64.b64encode(b"ops:pw").decode()

MALFORMED_BODIES = {
    "truncated": b'vnf_cpu_utilisation{zone="a',
    "wrong type line": b"# TYPE vnf_cpu_utilisation gauges\nvnf_cpu_utilisation 1\n",
    "invalid utf-8": b'vnf_cpu_utilisation{zone="\xc3\x28"} 1\n',
    "huge label": b'vnf_cpu_utilisation{zone="' + b"z" * 100_000 + b'"} 1\n',
    "value not a number": b"vnf_cpu_utilisation high\n",
}


async def test_each_malformed_body_fails_its_target_alone(clock: ScaledClock) -> None:
    scraper = scraper_for(clock)
    async with contextlib.AsyncExitStack() as stack:
        urls = {}
        for i, (name, body) in enumerate(sorted(MALFORMED_BODIES.items())):
            urls[name] = await stack.enter_async_context(
                http_server(f"127.77.5.{30 + i}", bytes_handler(body))
            )
        good = await stack.enter_async_context(http_server("127.77.5.40", text_handler(GOOD_TEXT)))
        try:
            results = await scraper.scrape_all(
                [target(u, name) for name, u in urls.items()] + [target(good, "good")]
            )
        finally:
            await scraper.aclose()
    *bad, fine = results
    assert fine.up and by_kpi(fine.samples)["vnf_cpu_utilisation"].value == 12.5
    for result in bad:
        assert result.error is not None and "malformed exposition: line 1" in result.error
        assert by_kpi(result.samples)["up"].value == 0.0


def bytes_handler(body: bytes) -> Handler:
    async def handle(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/plain")

    return handle


async def test_a_100_mb_body_fails_its_target_and_nan_and_infinities_are_values(
    clock: ScaledClock,
) -> None:
    huge = b"# " + b"x" * (100 * 1024 * 1024) + b"\n"
    odd = b"a NaN\nb +Inf\nc -Inf\n"
    scraper = scraper_for(clock)
    async with (
        http_server("127.77.5.50", bytes_handler(huge)) as huge_url,
        http_server("127.77.5.51", bytes_handler(odd)) as odd_url,
        http_server("127.77.5.52", text_handler(GOOD_TEXT)) as good_url,
    ):
        try:
            too_big, values, good = await scraper.scrape_all(
                [target(huge_url, "c-huge"), target(odd_url, "c-odd"), target(good_url)]
            )
        finally:
            await scraper.aclose()
    assert too_big.error is not None and "body larger than 8388608 bytes" in too_big.error
    assert by_kpi(too_big.samples)["up"].value == 0.0
    assert values.up and good.up
    taken = by_kpi(values.samples)
    assert math.isnan(taken["a"].value) and taken["b"].value == math.inf
    assert taken["c"].value == -math.inf
