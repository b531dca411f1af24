"""Parsing one line of a Prometheus exposition in full: text format 0.0.4 and OpenMetrics 1.0.

This is the careful, slow half of the parser: it runs only for lines the
per-target cache (:mod:`collector.exposition`) has not seen before. It
accepts what Prometheus's own scrape parser accepts: metric names
``[a-zA-Z_:][a-zA-Z0-9_:]*``, label names ``[a-zA-Z_][a-zA-Z0-9_]*`` (not
``__``-prefixed), label values in double quotes with ``\\\\``, ``\\"`` and
``\\n`` escapes (other escapes kept as written), spaces or tabs between
tokens, a value Go's ``ParseFloat`` reads (``NaN``, ``+Inf``, ``-Inf``,
exponents; no ``_``), an optional timestamp (integer milliseconds in text
format, seconds in OpenMetrics), and in OpenMetrics an exemplar after
``#`` (skipped). Labels with an empty value are dropped, as Prometheus
drops them. Errors name the reason; the caller adds the line number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bus.contracts import SeriesKind

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(
    rf"(?P<name>{_NAME})[ \t]*"
    r'(?:\{(?P<labels>(?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?'
    r"[ \t]*(?P<rest>.*)",
    re.S,
)
_LABEL = re.compile(
    r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(,|$)', re.S
)
_ESCAPE = re.compile(r"\\[\\n\"]")
_ESCAPES = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}
_TEXT_TS = re.compile(r"-?[0-9]+")
_BLANKS = re.compile(r"[ \t]+")

TEXT_TYPES: dict[str, SeriesKind] = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "untyped": "unknown",
}
OPENMETRICS_TYPES: dict[str, SeriesKind] = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "gaugehistogram": "gaugehistogram",
    "summary": "summary",
    "info": "info",
    "stateset": "stateset",
    "unknown": "unknown",
}
SUFFIXES: dict[SeriesKind, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("_count", "_sum", "_created"),
    "info": ("_info",),
}
"""The sample names a family of each type has besides its own name."""


class LineError(ValueError):
    """One line cannot be parsed; the message says why."""


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """One sample line."""

    name: str
    labels: dict[str, str]
    value: float
    timestamp: float | None
    """Seconds since the epoch, when the line carried one."""
    plain: bool
    """The line is exactly ``<series> <value>``, one space before the value."""


def unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], text) if "\\" in text else text


def parse_value(token: str) -> float:
    """A sample value as Prometheus reads it; raises :class:`LineError`."""
    if "_" in token or token != token.strip():
        raise LineError(f"invalid value {token!r}")
    try:
        value = float(token)
    except ValueError:
        raise LineError(f"invalid value {token!r}") from None
    return value


def parse_labels(text: str, max_value_bytes: int) -> dict[str, str]:
    """The labels between braces; raises :class:`LineError`."""
    labels: dict[str, str] = {}
    pos = 0
    end = len(text)
    while pos < end:
        if not text[pos:].strip():
            break
        match = _LABEL.match(text, pos)
        if match is None:
            raise LineError(f"invalid labels {{{text[:200]}}}")
        name, raw, comma = match.group(1), match.group(2), match.group(3)
        if name.startswith("__"):
            raise LineError(f"reserved label name {name!r}")
        if name in labels:
            raise LineError(f"duplicate label name {name!r}")
        value = unescape(raw)
        if max_value_bytes and len(value.encode()) > max_value_bytes:
            raise LineError(f"label {name} longer than {max_value_bytes} bytes")
        labels[name] = value
        pos = match.end()
        if not comma and pos < end and text[pos:].strip():
            raise LineError(f"invalid labels {{{text[:200]}}}")  # pragma: no cover
    return {name: value for name, value in labels.items() if value}


def _timestamp(token: str, *, openmetrics: bool) -> float:
    if openmetrics:
        try:
            seconds = float(token)
        except ValueError:
            raise LineError(f"invalid timestamp {token!r}") from None
        if "_" in token or not math.isfinite(seconds):
            raise LineError(f"invalid timestamp {token!r}")
        return seconds
    if not _TEXT_TS.fullmatch(token):
        raise LineError(f"invalid timestamp {token!r}")
    return int(token) / 1000.0


def parse_sample(line: str, *, openmetrics: bool, max_label_value_bytes: int) -> ParsedLine:
    """One sample line; raises :class:`LineError`."""
    match = _SAMPLE.fullmatch(line)
    if match is None:
        raise LineError("invalid metric name")
    name, label_text, rest = match.group("name"), match.group("labels"), match.group("rest")
    labels = parse_labels(label_text, max_label_value_bytes) if label_text else {}
    exemplar = openmetrics and " # " in rest
    if exemplar:
        rest = rest.split(" # ", 1)[0]  # the exemplar, skipped
    tokens = _BLANKS.split(rest.strip(" \t"))
    if tokens == [""]:
        raise LineError("missing value")
    if len(tokens) > 2:
        raise LineError(f"unexpected text after the value: {' '.join(tokens[2:])[:200]!r}")
    value = parse_value(tokens[0])
    timestamp: float | None = None
    if len(tokens) == 2:
        timestamp = _timestamp(tokens[1], openmetrics=openmetrics)
    # Plain: the text after the line's last space is the value itself, so the
    # fast path may split it there.
    plain = len(tokens) == 1 and not exemplar and line.rpartition(" ")[2] == tokens[0]
    return ParsedLine(name, labels, value, timestamp, plain)


@dataclass(frozen=True, slots=True)
class Comment:
    """A ``# HELP``, ``# TYPE``, ``# UNIT`` or ``# EOF`` line (others are ``None``)."""

    keyword: str
    name: str = ""
    kind: SeriesKind | None = None


def parse_comment(line: str, *, openmetrics: bool) -> Comment | None:
    """A comment line; raises :class:`LineError` for a malformed TYPE or HELP."""
    parts = line[1:].split(None, 3)
    if not parts:
        return None
    keyword = parts[0]
    if keyword == "EOF" and len(parts) == 1:
        return Comment("EOF")
    if keyword not in ("HELP", "TYPE", "UNIT"):
        return None
    if len(parts) < 2 or not re.fullmatch(_NAME, parts[1]):
        raise LineError(f"invalid metric name in {keyword} line")
    if keyword != "TYPE":
        return Comment(keyword, parts[1])
    types = OPENMETRICS_TYPES if openmetrics else TEXT_TYPES
    if len(parts) != 3 or parts[2] not in types:
        raise LineError(f"invalid metric type {' '.join(parts[2:])[:40]!r}")
    return Comment("TYPE", parts[1], types[parts[2]])


def kind_of(name: str, types: dict[str, SeriesKind]) -> SeriesKind:
    """The type of the family sample ``name`` belongs to, by its TYPE line."""
    kind = types.get(name)
    if kind is not None:
        return kind
    for family_kind, suffixes in SUFFIXES.items():
        for suffix in suffixes:
            if name.endswith(suffix) and types.get(name[: -len(suffix)]) == family_kind:
                return family_kind
    return "unknown"
