"""Prometheus exposition scraping: concurrent HTTP GETs on one session, through the scrape cache.

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
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from bus.clock import Clock
from bus.contracts import Sample
from collector.chunks import Chunk, DefinitionTerms, SeriesBook
from collector.exposition import ExpositionError, Parsed, TargetParser
from collector.targets import ScrapeOptions, ScrapeTarget

ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
"""What Prometheus asks exporters for: OpenMetrics, else the classic text format."""

STEP_BUDGET_S = 0.005
"""A parse yields to the event loop once it has held it this long (wall seconds)."""

_INFLATE_STEP = 256 * 1024


class _Unusable(ValueError):
    """A body the scrape cannot take (too large, undecodable compression)."""


@dataclass
class ScrapeResult:
    """What one scrape of one target produced."""

    target: ScrapeTarget
    chunk: Chunk
    """The target's samples, then ``up``, ``scrape_duration_seconds`` and
    ``scrape_samples_scraped``; definitions of series new to the writer included."""
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
        defs = {d.id: d for d in self.chunk.new + self.chunk.again}
        times = [
            ts
            for count, ts in zip(self.chunk.ts_counts, self.chunk.ts_values, strict=True)
            for _ in range(count)
        ]
        return [
            Sample(defs[sid].kpi, defs[sid].labels, ts, value)
            for sid, value, ts in zip(self.chunk.ids, self.chunk.values, times, strict=True)
            if sid in defs
        ]


class Scraper:
    """Scrapes targets concurrently (at most ``concurrency`` at a time) over one HTTP session.

    The session is created on first use (inside the event loop) and kept,
    so connections to exporters are reused from cycle to cycle; pass
    ``session`` to use one you own (it is then not closed by :meth:`aclose`).
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
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._clock = clock
        self._terms = terms
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.max_body_bytes = max_body_bytes
        self._session = session
        self._owns_session = session is None
        self._parsers: dict[
            tuple[str, tuple[tuple[str, str], ...], ScrapeOptions], TargetParser
        ] = {}
        self._meta = SeriesBook(terms)
        self._tls: dict[ScrapeOptions, ssl.SSLContext] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency),
                headers={"Accept": ACCEPT, "Accept-Encoding": "gzip"},
                # Bodies are inflated here, in bounded steps (a gzip bomb).
                auto_decompress=False,
                # Exporters sit on the VNFCs' own addresses: never via a proxy.
                trust_env=False,
            )
            self._owns_session = True
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def forget_except(self, targets: Sequence[ScrapeTarget]) -> None:
        """Drop the scrape caches of targets not in ``targets`` (gone, or no longer ours)."""
        keep = {_key(t) for t in targets}
        for key in list(self._parsers):
            if key not in keep:
                del self._parsers[key]

    async def scrape_all(self, targets: Sequence[ScrapeTarget]) -> list[ScrapeResult]:
        """Scrape every target; results in the order of ``targets``."""
        bound = asyncio.Semaphore(self.concurrency)

        async def bounded(target: ScrapeTarget) -> ScrapeResult:
            async with bound:
                return await self.scrape(target)

        return list(await asyncio.gather(*(bounded(t) for t in targets)))

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
        except (aiohttp.ClientError, OSError, ValueError, zlib.error) as exc:
            # ValueError covers ExpositionError, bad URLs, oversized and
            # undecodable bodies. The target is down for this cycle; the
            # next cycle is the retry.
            error = f"{target.name}: {_describe(exc)}"
        duration = time.perf_counter() - started
        out = Chunk()
        out.extend(chunk)
        meta = [
            Sample("up", dict(target.labels), ts, 0.0 if error else 1.0),
            Sample("scrape_duration_seconds", dict(target.labels), ts, duration),
            Sample("scrape_samples_scraped", dict(target.labels), ts, float(scraped)),
        ]
        out.extend(self._meta.chunk(meta, lambda _kpi: "gauge"))
        return ScrapeResult(target, out, error, duration, scraped, problems)

    async def _parse(
        self, target: ScrapeTarget, body: bytes, ts: float, openmetrics: bool
    ) -> Parsed:
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
        steps = parser.steps(body, ts, openmetrics=openmetrics)
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
        limit = options.body_limit or self.max_body_bytes
        headers: dict[str, str] = {}
        if options.bearer_token:
            headers["Authorization"] = f"Bearer {options.bearer_token}"
        if options.basic_auth:
            user, password = options.basic_auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with self._get_session().get(
            target.url,
            timeout=timeout,
            headers=headers,
            ssl=self._ssl(options) if target.url.startswith("https:") else True,
        ) as response:
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info,
                    response.history,
                    status=response.status,
                    message=response.reason or "",
                )
            encoding = response.headers.get("Content-Encoding", "").lower()
            if encoding not in ("", "identity", "gzip"):
                raise _Unusable(f"unsupported Content-Encoding {encoding!r}")
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
            chunks: list[bytes] = []
            size = 0
            async for data in response.content.iter_any():
                pieces = _inflated(inflate, data, limit - size) if inflate else [data]
                for piece in pieces:
                    size += len(piece)
                    if size > limit:
                        raise _Unusable(f"body larger than {limit} bytes")
                    chunks.append(piece)
                if inflate is not None:
                    await asyncio.sleep(0)
            if inflate is not None:
                chunks.append(inflate.flush())
                if not inflate.eof:
                    raise _Unusable("truncated gzip body")
            content_type = response.headers.get("Content-Type", "")
            return b"".join(chunks), content_type.startswith("application/openmetrics-text")

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


def _inflated(inflate: zlib._Decompress, data: bytes, room: int) -> list[bytes]:
    """``data`` inflated, never more than ``room + 1`` bytes in all (then the caller stops)."""
    out: list[bytes] = []
    budget = max(0, room) + 1
    while data or inflate.unconsumed_tail:
        piece = inflate.decompress(data or inflate.unconsumed_tail, min(_INFLATE_STEP, budget))
        data = b""
        if not piece:
            break
        out.append(piece)
        budget -= len(piece)
        if budget <= 0:
            break
    return out


def _key(target: ScrapeTarget) -> tuple[str, tuple[tuple[str, str], ...], ScrapeOptions]:
    return (target.url, tuple(sorted(target.labels.items())), target.options)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ExpositionError):
        return f"malformed exposition: {exc}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} {exc.message}".rstrip()
    if isinstance(exc, zlib.error):
        return f"undecodable gzip body ({exc})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, _Unusable):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
