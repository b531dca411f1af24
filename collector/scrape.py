"""Prometheus exposition scraping: concurrent HTTP GETs on one session, parsed into samples.

A scrape never raises for what a target does: refused connections,
timeouts, HTTP errors, oversized or malformed bodies all end as a
:class:`ScrapeResult` with ``up`` 0 and an error that names the target (and
for bad text the line), so one broken VNFC cannot stop the others from
being collected. As Prometheus does, every target also yields ``up``,
``scrape_duration_seconds`` and ``scrape_samples_scraped``, and a label
the exposition sets that the target also sets is kept as ``exported_<name>``.

Parsing is pure Python (5-20 ms per 32 KiB, by machine): a body larger than
:data:`PARSE_IN_THREAD_BYTES` is parsed in a worker thread of the scraper's
own, so that a cycle of many large expositions does not stall the event
loop, and with it the lease renewals and stream keepalives of the process.

Timeouts and durations are wall-clock seconds: network round trips do not
speed up with a scaled clock. Sample timestamps are in clock time (the
moment the scrape started), as every sample on the bus is.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_fd_to_metric_families

from bus.clock import Clock
from bus.contracts import Sample
from collector.targets import ScrapeTarget

ACCEPT = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"
"""The classic text format, which prometheus_client.parser reads."""

PARSE_IN_THREAD_BYTES = 32 * 1024
"""Bodies larger than this are parsed in a worker thread. Smaller ones (a
typical VNFC exporter's is a few KiB) are parsed on the event loop: for them
the thread hop and the contention for the GIL would cost more than they save."""

PARSE_THREADS = 2
"""Worker threads of a scraper. Parsing holds the GIL, so more would not parse
faster; two keep one huge body from holding up all the others."""


class ExpositionError(ValueError):
    """Exposition text that cannot be parsed; names the line."""

    def __init__(self, line_no: int, line: str, reason: str) -> None:
        self.line_no = line_no
        self.line = line
        self.reason = reason
        super().__init__(f"line {line_no}: {reason}: {line[:200]!r}")


class _NumberedLines(io.StringIO):
    """Remembers which line the parser read last, so an error can name it."""

    line_no = 0
    current = ""

    # typeshed types _IOBase.__next__ as bytes; a StringIO yields str.
    def __next__(self) -> str:  # type: ignore[override]
        line = super().__next__()
        self.line_no += 1
        self.current = line.rstrip("\n")
        return line


ParsedSample = tuple[str, dict[str, str], float]


def parse_exposition(text: str) -> list[ParsedSample]:
    """``(name, labels, value)`` of every sample in Prometheus text ``text``.

    Exposition timestamps are ignored: exporters speak wall time, the bus
    speaks clock time. Raises :class:`ExpositionError`.
    """
    lines = _NumberedLines(text)
    out: list[ParsedSample] = []
    try:
        for family in text_fd_to_metric_families(lines):
            out.extend((s.name, s.labels, float(s.value)) for s in family.samples)
    except (ValueError, IndexError) as exc:
        # The parser raises bare ValueErrors (and an IndexError on some
        # garbage); the line it was reading is what a user needs to see.
        reason = str(exc).split(": ", 1)[0] if str(exc) else "invalid line"
        raise ExpositionError(lines.line_no, lines.current, reason) from exc
    return out


def merge_labels(scraped: Mapping[str, str], target: Mapping[str, str]) -> dict[str, str]:
    """Target labels win; a clashing scraped label is kept as ``exported_<name>``."""
    labels = dict(target)
    for name, value in scraped.items():
        labels[f"exported_{name}" if name in target else name] = value
    return labels


@dataclass(frozen=True)
class ScrapeResult:
    """What one scrape of one target produced."""

    target: ScrapeTarget
    samples: list[Sample]
    """The target's samples, then ``up``, ``scrape_duration_seconds`` and
    ``scrape_samples_scraped``."""
    error: str | None
    """Why the scrape failed (names the target); None when it succeeded."""
    duration_s: float

    @property
    def up(self) -> bool:
        return self.error is None


class _BodyTooLarge(ValueError):
    pass


def _samples_of(body: bytes, target: ScrapeTarget, ts: float) -> list[Sample]:
    """The samples of an exposition ``body``, labelled for ``target``; raises ValueError."""
    return [
        Sample(name, merge_labels(labels, target.labels), ts, value)
        for name, labels, value in parse_exposition(body.decode("utf-8"))
    ]


class Scraper:
    """Scrapes targets concurrently (at most ``concurrency`` at a time) over one HTTP session.

    The session is created on first use (inside the event loop) and kept,
    so connections to exporters are reused from cycle to cycle; pass
    ``session`` to use one you own (it is then not closed by :meth:`aclose`).
    The threads that parse large bodies are likewise started on first need
    and stopped by :meth:`aclose`.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        timeout_s: float = 2.0,
        concurrency: int = 64,
        max_body_bytes: int = 8 * 1024 * 1024,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._clock = clock
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.max_body_bytes = max_body_bytes
        self._session = session
        self._owns_session = session is None
        self._parser: ThreadPoolExecutor | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency),
                headers={"Accept": ACCEPT},
                # Exporters sit on the VNFCs' own addresses: never via a proxy.
                trust_env=False,
            )
            self._owns_session = True
        return self._session

    def _get_parser(self) -> ThreadPoolExecutor:
        if self._parser is None:
            self._parser = ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="exposition-parse")
        return self._parser

    async def aclose(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None
        parser, self._parser = self._parser, None
        if parser is not None:
            # A parse under way cannot be interrupted; wait for it off the loop.
            await asyncio.to_thread(parser.shutdown, wait=True, cancel_futures=True)

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
        samples: list[Sample] = []
        error: str | None = None
        try:
            body = await self._fetch(target.url)
            if len(body) > PARSE_IN_THREAD_BYTES:
                samples = await asyncio.get_running_loop().run_in_executor(
                    self._get_parser(), _samples_of, body, target, ts
                )
            else:
                samples = _samples_of(body, target, ts)
        except TimeoutError:
            error = f"{target.name}: no answer within {self.timeout_s:g}s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # ValueError covers ExpositionError, non-UTF-8 bodies, bad URLs and
            # oversized bodies. The target is down for this cycle; the next
            # cycle is the retry.
            error = f"{target.name}: {_describe(exc)}"
        duration = time.perf_counter() - started
        labels = dict(target.labels)
        scraped = float(len(samples))
        samples.append(Sample("up", labels, ts, 0.0 if error else 1.0))
        samples.append(Sample("scrape_duration_seconds", labels, ts, duration))
        samples.append(Sample("scrape_samples_scraped", labels, ts, scraped))
        return ScrapeResult(target, samples, error, duration)

    async def _fetch(self, url: str) -> bytes:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with self._get_session().get(url, timeout=timeout) as response:
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info,
                    response.history,
                    status=response.status,
                    message=response.reason or "",
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise _BodyTooLarge(f"body larger than {self.max_body_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ExpositionError):
        return f"malformed exposition: {exc}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} {exc.message}".rstrip()
    if isinstance(exc, UnicodeDecodeError):
        return f"exposition is not UTF-8 ({exc.reason} at byte {exc.start})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    return f"{type(exc).__name__}: {exc}"
