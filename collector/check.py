"""Checking one exporter, as ``promtool check metrics`` does: what the collector would take.

:func:`check_exposition` reads a body line by line, carrying on past a bad
line so that every error is reported with its line number (the scrape
itself stops at the first, since it takes nothing of a bad body), and
counts the samples and series the collector would take, duplicates
dropped and reported. :func:`check_url` scrapes the URL once (the
collector's own HTTP client, limits and gzip handling) and checks what it
got.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bus.contracts import SeriesKind
from collector.exposition_lines import LineError, kind_of, parse_comment, parse_sample
from collector.http_get import BodyTooLarge, Endpoint, HttpError, HttpGetter
from collector.scrape import ACCEPT, inflate


@dataclass(frozen=True)
class CheckedSample:
    line: int
    name: str
    labels: dict[str, str]
    value: float
    kind: SeriesKind


@dataclass
class CheckReport:
    """What one exposition holds, or what is wrong with it."""

    source: str
    samples: list[CheckedSample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """``line N: why`` (or a whole-body reason), in line order."""
    openmetrics: bool = False

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def series(self) -> int:
        return len({(s.name, tuple(sorted(s.labels.items()))) for s in self.samples})


def check_exposition(
    body: bytes, *, openmetrics: bool = False, source: str = "", max_label_value_bytes: int = 4096
) -> CheckReport:
    """Every sample of ``body`` and every error in it."""
    report = CheckReport(source, openmetrics=openmetrics)
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    types: dict[str, SeriesKind] = {}
    parsed: list[tuple[int, str, dict[str, str], float]] = []
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    eof = 0
    for n, raw in enumerate(lines, 1):
        try:
            line = raw.decode()
        except UnicodeDecodeError as exc:
            report.errors.append(f"line {n}: invalid UTF-8 ({exc.reason} at byte {exc.start})")
            continue
        if eof:
            report.errors.append(f"line {n}: line after # EOF")
            continue
        try:
            if not line:
                if openmetrics:
                    report.errors.append(f"line {n}: blank line in OpenMetrics")
                continue
            if line.startswith("#"):
                comment = parse_comment(line, openmetrics=openmetrics)
                if comment is not None and comment.keyword == "TYPE" and comment.kind:
                    types[comment.name] = comment.kind
                if comment is not None and comment.keyword == "EOF":
                    eof = n
                continue
            sample = parse_sample(
                line, openmetrics=openmetrics, max_label_value_bytes=max_label_value_bytes
            )
        except LineError as exc:
            report.errors.append(f"line {n}: {exc}")
            continue
        key = (sample.name, tuple(sorted(sample.labels.items())))
        if key in seen:
            report.errors.append(f"line {n}: duplicate series (first on line {seen[key]})")
            continue
        seen[key] = n
        parsed.append((n, sample.name, sample.labels, sample.value))
    if openmetrics and not eof:
        report.errors.append("the OpenMetrics exposition does not end with # EOF")
    report.samples = [
        CheckedSample(n, name, labels, value, kind_of(name, types))
        for n, name, labels, value in parsed
    ]
    return report


async def check_url(
    url: str, *, timeout_s: float = 10.0, max_body_bytes: int = 8 * 1024 * 1024
) -> CheckReport:
    """Scrape ``url`` once and check the body."""
    getter = HttpGetter()
    try:
        endpoint = Endpoint.of(url, {"Accept": ACCEPT, "Accept-Encoding": "gzip",
                                     "User-Agent": "nfv-assure"})  # fmt: skip
        async with asyncio.timeout(timeout_s):
            response = await getter.get(endpoint, limit=max_body_bytes)
    except TimeoutError:
        return CheckReport(url, errors=[f"no answer within {timeout_s:g}s"])
    except (HttpError, BodyTooLarge, ValueError, OSError) as exc:
        return CheckReport(url, errors=[str(exc)])
    finally:
        getter.close()
    if response.status != 200:
        return CheckReport(url, errors=[f"HTTP {response.status} {response.reason}".rstrip()])
    body = response.body
    if response.headers.get("content-encoding", "").lower() == "gzip":
        try:
            body = await inflate(body, max_body_bytes)
        except ValueError as exc:
            return CheckReport(url, errors=[str(exc)])
    openmetrics = response.headers.get("content-type", "").startswith(
        "application/openmetrics-text"
    )
    return check_exposition(body, openmetrics=openmetrics, source=url)
