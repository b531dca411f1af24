"""Prometheus exposition scraping: concurrent GETs on kept-alive connections, cached parses.

A scrape never raises for what a target does: refused connections,
timeouts, HTTP errors, oversized, over-compressed or malformed bodies all
end as a :class:`ScrapeResult` with ``up`` 0 and an error that names the
target (and for bad text the line), so one broken VNFC cannot stop the
others from being collected. As Prometheus does, every target also yields
``up``, ``scrape_duration_seconds`` and ``scrape_samples_scraped``.

Each target keeps its scrape cache (:class:`~collector.exposition.TargetParser`)
from scrape to scrape, so a steady-state scrape converts values only. The
scraper asks for OpenMetrics first and the text format next, as Prometheus
does, and for gzip; a gzip body is inflated in bounded steps, so neither a
large body nor a gzip bomb can take more than ``body_limit`` bytes. Long
bodies are parsed in steps with the event loop served in between.

Timeouts and durations are wall-clock seconds: network round trips do not
speed up with a scaled clock. Sample timestamps are in clock time (the
moment the scrape started), as every sample on the bus is, unless a target
honours the exposition's own timestamps.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bus.clock import Clock
from bus.contracts import Sample
from bus.tasks import cancel_and_wait
from collector.chunks import Chunk, DefinitionTerms
from collector.exposition import ExpositionError, Parsed, TargetParser
from collector.http_get import BodyTooLarge, Endpoint, HttpError, HttpGetter
from collector.targets import ScrapeOptions, ScrapeTarget

ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
"""What Prometheus asks exporters for: OpenMetrics, else the classic text format."""

STEP_BUDGET_S = 0.005
"""A parse yields to the event loop once it has held it this long (wall seconds)."""

_INFLATE_STEP = 256 * 1024
_LAUNCH_WINDOW_S = 0.005


class _Unusable(ValueError):
    """A body the scrape cannot take (too large, undecodable compression)."""


@dataclass
class ScrapeResult:
    """What one scrape of one target produced."""

    target: ScrapeTarget
    chunk: Chunk
    """The exposition's samples (definitions of series new to the writer included)."""
    meta: Chunk
    """``up``, ``scrape_duration_seconds`` and ``scrape_samples_scraped``."""
    error: str | None
    """Why the scrape failed (names the target); None when it succeeded."""
    duration_s: float
    scraped: int = 0
    """Samples the exposition held."""
    problems: list[str] = field(default_factory=list)
    """What was wrong without failing the scrape (duplicate series dropped)."""

    @property
    def up(self) -> bool:
        return self.error is None

    @property
    def samples(self) -> list[Sample]:
        """The samples whose definitions this result carries, labelled (for tools and
        tests: on a target's first scrape that is every one of them)."""
        out: list[Sample] = []
        for chunk in (self.chunk, self.meta):
            defs = {d.id: d for d in chunk.new + chunk.again}
            times = [
                ts
                for count, ts in zip(chunk.ts_counts, chunk.ts_values, strict=True)
                for _ in range(count)
            ]
            out.extend(
                Sample(defs[sid].kpi, defs[sid].labels, ts, value)
                for sid, value, ts in zip(chunk.ids, chunk.values, times, strict=True)
                if sid in defs
            )
        return out


class Scraper:
    """Scrapes targets concurrently (at most ``concurrency`` at a time).

    Connections to exporters are kept alive and reused from cycle to cycle
    (:mod:`collector.http_get`).
    ``timeout_s`` and ``max_body_bytes`` apply to targets whose options do
    not set their own.
    """

    def __init__(
        self,
        clock: Clock,
        terms: DefinitionTerms,
        *,
        timeout_s: float = 2.0,
        concurrency: int = 64,
        max_body_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._clock = clock
        self._terms = terms
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.max_body_bytes = max_body_bytes
        self._http = HttpGetter()
        self._endpoints: dict[tuple[str, ScrapeOptions], Endpoint] = {}
        self._parsers: dict[
            tuple[str, tuple[tuple[str, str], ...], ScrapeOptions], TargetParser
        ] = {}
        self._tls: dict[ScrapeOptions, ssl.SSLContext] = {}

    async def aclose(self) -> None:
        """Close the kept-alive connections."""
        self._http.close()

    def forget_except(self, targets: Sequence[ScrapeTarget]) -> None:
        """Drop the scrape caches of targets not in ``targets`` (gone, or no longer ours)."""
        keep = {_key(t) for t in targets}
        for key in list(self._parsers):
            if key not in keep:
                del self._parsers[key]
        urls = {(t.url, t.options) for t in targets}
        for endpoint_key in list(self._endpoints):
            if endpoint_key not in urls:
                del self._endpoints[endpoint_key]

    async def scrape_all(
        self,
        targets: Sequence[ScrapeTarget],
        *,
        spread_s: float = 0.0,
        still_ours: Callable[[ScrapeTarget], bool] | None = None,
        on_result: Callable[[ScrapeResult], None] | None = None,
    ) -> list[ScrapeResult]:
        """Scrape every target; results in the order of ``targets``.

        With ``spread_s``, each target starts at its own offset within that
        many wall seconds (fixed by its URL, as Prometheus offsets its
        targets), so that a thousand scrapes do not start in one event-loop
        round and stall it. A target for which ``still_ours`` says False
        when its turn comes is skipped (no result). ``on_result`` is called
        with each result as soon as its scrape ends, before the others end.
        """
        bound = asyncio.Semaphore(self.concurrency)

        async def bounded(target: ScrapeTarget) -> ScrapeResult:
            async with bound:
                result = await self.scrape(target)
            if on_result is not None:
                on_result(result)
            return result

        if spread_s <= 0:
            return list(await asyncio.gather(*(bounded(t) for t in targets)))
        loop = asyncio.get_running_loop()
        began = loop.time()
        tasks: dict[int, asyncio.Task[ScrapeResult]] = {}
        order = sorted(range(len(targets)), key=lambda i: _offset(targets[i]))
        try:
            for i in order:
                delay = began + _offset(targets[i]) * spread_s - loop.time()
                if delay > _LAUNCH_WINDOW_S:
                    # Whatever is due within the window starts together.
                    await asyncio.sleep(delay)
                if still_ours is None or still_ours(targets[i]):
                    tasks[i] = asyncio.create_task(bounded(targets[i]))
            if tasks:
                await asyncio.wait(tasks.values())
        except BaseException:
            await cancel_and_wait(tasks.values())
            raise
        return [tasks[i].result() for i in range(len(targets)) if i in tasks]

    async def scrape(self, target: ScrapeTarget) -> ScrapeResult:
        """Scrape one target; never raises for anything the target does."""
        ts = self._clock.now()
        started = time.perf_counter()
        chunk = Chunk()
        error: str | None = None
        problems: list[str] = []
        scraped = 0
        timeout_s = target.options.timeout_s or self.timeout_s
        try:
            body, openmetrics = await self._fetch(target, timeout_s)
            parsed = await self._parse(target, body, ts, openmetrics)
            chunk, scraped, problems = parsed.chunk, parsed.samples, parsed.problems
        except TimeoutError:
            error = f"{target.name}: no answer within {timeout_s:g}s"
        except (OSError, ValueError, zlib.error) as exc:
            # ValueError covers ExpositionError, bad URLs, oversized and
            # undecodable bodies. The target is down for this cycle; the
            # next cycle is the retry.
            error = f"{target.name}: {_describe(exc)}"
        duration = time.perf_counter() - started
        meta = self._parser(target).meta(ts, 0.0 if error else 1.0, duration, float(scraped))
        return ScrapeResult(target, chunk, meta, error, duration, scraped, problems)

    def _parser(self, target: ScrapeTarget) -> TargetParser:
        key = _key(target)
        parser = self._parsers.get(key)
        if parser is None:
            options = target.options
            parser = TargetParser(
                {**dict(options.labels), **target.labels},
                self._terms,
                honor_labels=options.honor_labels,
                honor_timestamps=options.honor_timestamps,
                max_label_value_bytes=options.label_value_limit,
                sample_limit=options.sample_limit,
            )
            self._parsers[key] = parser
        return parser

    async def _parse(
        self, target: ScrapeTarget, body: bytes, ts: float, openmetrics: bool
    ) -> Parsed:
        steps = self._parser(target).steps(body, ts, openmetrics=openmetrics)
        began = time.perf_counter()
        while True:
            try:
                next(steps)
            except StopIteration as done:
                parsed: Parsed = done.value
                return parsed
            if time.perf_counter() - began >= STEP_BUDGET_S:
                await asyncio.sleep(0)
                began = time.perf_counter()

    async def _fetch(self, target: ScrapeTarget, timeout_s: float) -> tuple[bytes, bool]:
        options = target.options
        if options.failure is not None:
            raise _Unusable(options.failure)
        limit = options.body_limit or self.max_body_bytes
        key = (target.url, options)
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = Endpoint.of(target.url, _request_headers(options))
            self._endpoints[key] = endpoint
        async with asyncio.timeout(timeout_s):
            response = await self._http.get(
                endpoint, limit=limit, tls=self._ssl(options) if endpoint.tls else None
            )
        if response.status != 200:
            raise _Unusable(f"HTTP {response.status} {response.reason}".rstrip())
        encoding = response.headers.get("content-encoding", "").lower()
        body = response.body
        if encoding == "gzip":
            body = await inflate(body, limit)
        elif encoding not in ("", "identity"):
            raise _Unusable(f"unsupported Content-Encoding {encoding!r}")
        content_type = response.headers.get("content-type", "")
        return body, content_type.startswith("application/openmetrics-text")

    def _ssl(self, options: ScrapeOptions) -> ssl.SSLContext:
        context = self._tls.get(options)
        if context is None:
            context = ssl.create_default_context(cafile=options.tls_ca_file)
            if options.tls_cert_file:
                context.load_cert_chain(options.tls_cert_file, options.tls_key_file)
            if options.tls_insecure_skip_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls[options] = context
        return context


async def inflate(body: bytes, limit: int) -> bytes:
    """A gzip body inflated in bounded steps (the loop served between them), at most ``limit``."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out: list[bytes] = []
    size = 0
    data = body
    while data:
        piece = inflate.decompress(data, _INFLATE_STEP)
        data = inflate.unconsumed_tail
        size += len(piece)
        if size > limit:
            raise _Unusable(f"body larger than {limit} bytes")
        out.append(piece)
        if data:
            await asyncio.sleep(0)
    if not inflate.eof:
        raise _Unusable("truncated gzip body")
    return b"".join(out)


def _request_headers(options: ScrapeOptions) -> dict[str, str]:
    headers = {
        "User-Agent": "nfv-assure",
        "Accept": ACCEPT,
        "Accept-Encoding": "gzip",
    }
    if options.bearer_token:
        headers["Authorization"] = f"Bearer {options.bearer_token}"
    elif options.basic_auth:
        user, password = options.basic_auth
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return headers


def _offset(target: ScrapeTarget) -> float:
    """Where in the spread a target starts, in [0, 1): fixed by its URL."""
    return zlib.crc32(target.url.encode()) / 2**32


def _key(target: ScrapeTarget) -> tuple[str, tuple[tuple[str, str], ...], ScrapeOptions]:
    return (target.url, tuple(sorted(target.labels.items())), target.options)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ExpositionError):
        return f"malformed exposition: {exc}"
    if isinstance(exc, zlib.error):
        return f"undecodable gzip body ({exc})"
    if isinstance(exc, HttpError | BodyTooLarge | _Unusable):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
