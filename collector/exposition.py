"""The scrape cache: a target's exposition parsed in full once, then only its values.

Like Prometheus's scrape loop, each target keeps a cache from the raw text
of each line's series (what precedes the line's last space) to the
series id, so a steady-state scrape costs a lookup and a number conversion
per line; only lines not seen before are parsed in full
(:mod:`collector.exposition_lines`). Better still, when a body has the
same lines as the previous one but for the values (the usual case: an
exporter renders the same series in the same order), the whole sequence
of series texts is compared at once and the values converted in bulk:
``bytes.split``, ``map`` and ``array`` do the work in C, about 0.2 us per
sample.

The cache is rebuilt from each body (lines that went away are forgotten)
and is only ever consulted for byte-identical series text, so what a
scrape yields never depends on the cache: it is what a full parse of the
body yields. A body that fails to parse leaves the cache as it was.

Series are defined (their :class:`~bus.contracts.SeriesDef` made) when
first seen, and again when the writer asks for it (its token changed) or
the target's re-registration is due: then every line is parsed in full
once.

A long body is handled in steps of at most :data:`STEP_LINES` lines
(:meth:`TargetParser.steps`), so that whoever drives it can yield to the
event loop in between.
"""

from __future__ import annotations

import re
import time
from array import array
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import itemgetter

from bus.contracts import SeriesDef, SeriesKind
from bus.series import series_id
from collector.chunks import Chunk, DefinitionTerms
from collector.exposition_lines import (
    OPENMETRICS_TYPES,
    TEXT_TYPES,
    LineError,
    ParsedLine,
    kind_of,
    parse_comment,
    parse_sample,
    parse_value,
)

STEP_LINES = 500
"""Lines parsed in full per step (about 1-3 ms); steady-state steps are 20x longer."""

_FAST_STEP_LINES = 10_000
_first = itemgetter(0)
_third = itemgetter(2)
_VALUES = re.compile(rb"[-+0-9.eEinfatyINFATY]+(?: [-+0-9.eEinfatyINFATY]+)*")
"""What a space-joined run of values may hold at all (float() judges the rest)."""
_META = ("up", "scrape_duration_seconds", "scrape_samples_scraped")
_TYPE_LINE = re.compile(rb"^#[ \t]+TYPE[ \t]+(\S+)[ \t]+(\S+)", re.M)


class ExpositionError(ValueError):
    """An exposition that cannot be taken; names the line."""

    def __init__(self, line_no: int, line: str, reason: str) -> None:
        self.line_no = line_no
        self.line = line
        self.reason = reason
        where = f"line {line_no}: " if line_no else ""
        super().__init__(f"{where}{reason}: {line[:200]!r}" if line else f"{where}{reason}")


@dataclass
class Parsed:
    """What one body yielded."""

    chunk: Chunk
    samples: int
    problems: list[str] = field(default_factory=list)
    """What was wrong but did not fail the scrape (e.g. duplicate series, dropped)."""


def merge_labels(
    scraped: Mapping[str, str], target: Mapping[str, str], *, honor_labels: bool = False
) -> dict[str, str]:
    """Prometheus's rule: target labels win and a clashing scraped label is kept as
    ``exported_<name>``; with ``honor_labels`` the scraped labels win."""
    if honor_labels:
        return {**target, **scraped}
    labels = dict(target)
    for name, value in scraped.items():
        labels[f"exported_{name}" if name in target else name] = value
    return labels


class TargetParser:
    """The scrape cache of one target (its labels and options fixed)."""

    def __init__(
        self,
        labels: Mapping[str, str],
        terms: DefinitionTerms,
        *,
        honor_labels: bool = False,
        honor_timestamps: bool = False,
        max_label_value_bytes: int = 4096,
        sample_limit: int = 0,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self.labels = dict(labels)
        self._terms = terms
        self.honor_labels = honor_labels
        self.honor_timestamps = honor_timestamps
        self.max_label_value_bytes = max_label_value_bytes
        self.sample_limit = sample_limit
        self._wall = wall
        self._keys: list[bytes] = []
        self._line_sids: list[int] = []
        self._ids: array[int] = array("Q")
        self._index: dict[bytes, int] = {}
        self._ts_index: dict[bytes, int] = {}
        self._types: dict[bytes, bytes] = {}
        self._fast = False
        self._checked: Callable[[list[bytes]], tuple[bytes, ...]] | None = None
        self._checked_tokens: tuple[bytes, ...] | None = None
        self._checked_line: bytes | None = None
        self._checked_at = -1
        self._openmetrics = False
        self._token: int | None = None
        self._due = 0.0
        self._meta_ids: array[int] | None = None
        self._meta_token = 0
        self._meta_due = 0.0
        self.full_parses = 0
        """Bodies parsed in full (every line), for tests and self-metrics."""

    def meta(self, ts: float, up: float, duration_s: float, scraped: float) -> Chunk:
        """The scrape's own series: up, scrape_duration_seconds, scrape_samples_scraped."""
        chunk = Chunk()
        values = (up, duration_s, scraped)
        token = self._terms.token
        if self._meta_ids is None or self._meta_token != token or self._wall() >= self._meta_due:
            defs = [SeriesDef(series_id(name, self.labels), name, dict(self.labels), "gauge")
                    for name in _META]  # fmt: skip
            (chunk.again if self._meta_ids is not None else chunk.new).extend(defs)
            self._meta_ids = array("Q", [d.id for d in defs])
            self._meta_token = token
            self._meta_due = self._wall() + self._terms.reregister_after_s()
        chunk.ids = self._meta_ids
        chunk.values = array("d", values)
        chunk.stamp(ts, 3)
        return chunk

    def parse(self, body: bytes, ts: float, *, openmetrics: bool = False) -> Parsed:
        """Parse ``body`` at once; raises :class:`ExpositionError`."""
        steps = self.steps(body, ts, openmetrics=openmetrics)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                result: Parsed = done.value
                return result

    def steps(
        self, body: bytes, ts: float, *, openmetrics: bool = False
    ) -> Generator[None, None, Parsed]:
        """Parse ``body``, yielding between steps; the generator's return value is the
        :class:`Parsed` result. Raises :class:`ExpositionError`."""
        lines = body.split(b"\n")
        redefine = self._token != self._terms.token or self._wall() >= self._due
        if (
            self._fast
            and not redefine
            and openmetrics == self._openmetrics
            and len(lines) == len(self._keys)
            and self._comments_unchanged(lines)
        ):
            values = yield from self._values_if_unchanged(lines)
            if values is not None:
                chunk = Chunk(self._ids, values)
                chunk.stamp(ts, len(values))
                return Parsed(chunk, len(values))
        return (yield from self._parse_lines(lines, ts, openmetrics=openmetrics, body=body))

    def _comments_unchanged(self, lines: list[bytes]) -> bool:
        """Whether the TYPE and EOF lines are as last time (whole lines compared)."""
        if self._checked is not None:
            return self._checked(lines) == self._checked_tokens
        if self._checked_at >= 0:
            return lines[self._checked_at] == self._checked_line
        return True

    def _values_if_unchanged(
        self, lines: list[bytes]
    ) -> Generator[None, None, array[float] | None]:
        """The values, when every line's series text is as last time; else None."""
        values: array[float] = array("d")
        for start in range(0, len(lines), _FAST_STEP_LINES):
            end = start + _FAST_STEP_LINES
            parts = list(map(bytes.rpartition, lines[start:end], repeat(b" ")))
            if list(map(_first, parts)) != self._keys[start:end]:
                return None
            tokens = list(compress(map(_third, parts), self._line_sids[start:end]))
            if tokens:
                if _VALUES.fullmatch(b" ".join(tokens)) is None:
                    return None
                try:
                    values.extend(map(float, tokens))
                except ValueError:
                    return None  # the full parse names the line
            if end < len(lines):
                yield
        return values

    def _parse_lines(
        self, lines: list[bytes], scrape_ts: float, *, openmetrics: bool, body: bytes
    ) -> Generator[None, None, Parsed]:
        types = dict(_TYPE_LINE.findall(body))
        redefine = (
            self._token != self._terms.token
            or self._wall() >= self._due
            or types != self._types
            or openmetrics != self._openmetrics
        )
        run = _FullPass(self, types, scrape_ts, openmetrics=openmetrics, redefine=redefine)
        last = len(lines)
        if lines and lines[-1] == b"":
            last -= 1  # the newline that ends the last line
        for n, line in enumerate(lines):
            if n and n % STEP_LINES == 0:
                yield
            key, sep, token = line.rpartition(b" ")
            run.keys.append(key)
            if n >= last:
                run.line_sids.append(0)
            elif run.eof_at:
                raise ExpositionError(n + 1, _text(line), "line after # EOF")
            elif not line or line[0] == 35:  # blank, or '#'
                run.comment(n, line)
            else:
                run.sample(n, line, key, sep, token)
        if openmetrics and not run.eof_at:
            raise ExpositionError(0, "", "OpenMetrics exposition does not end with # EOF")
        chunk = run.chunk
        if self.sample_limit and len(chunk) > self.sample_limit:
            raise ExpositionError(
                0, "", f"{len(chunk)} samples exceed the sample limit of {self.sample_limit}"
            )
        self.full_parses += redefine
        self._keys, self._line_sids, self._ids = run.keys, run.line_sids, chunk.ids
        self._index, self._ts_index, self._types = run.index, run.ts_index, types
        checked = run.checked
        self._checked = itemgetter(*checked) if len(checked) > 1 else None
        self._checked_tokens = self._checked(lines) if self._checked else None
        self._checked_line = lines[checked[0]] if len(checked) == 1 else None
        self._checked_at = checked[0] if len(checked) == 1 else -1
        self._fast = run.fast and not run.problems
        self._openmetrics = openmetrics
        if redefine:
            self._token = self._terms.token
            self._due = self._wall() + self._terms.reregister_after_s()
        return Parsed(chunk, len(chunk), run.problems)

    def _parse_sample(self, line: bytes, n: int, openmetrics: bool) -> ParsedLine:
        try:
            return parse_sample(
                _decoded(line, n),
                openmetrics=openmetrics,
                max_label_value_bytes=self.max_label_value_bytes,
            )
        except LineError as exc:
            raise ExpositionError(n + 1, _text(line), str(exc)) from None

    def _define(self, parsed: ParsedLine, kinds: dict[str, SeriesKind]) -> tuple[int, SeriesDef]:
        labels = merge_labels(parsed.labels, self.labels, honor_labels=self.honor_labels)
        labels = {name: value for name, value in labels.items() if value}
        sid = series_id(parsed.name, labels)
        return sid, SeriesDef(sid, parsed.name, labels, kind_of(parsed.name, kinds))


class _FullPass:
    """The state of one line-by-line parse of a body (see :meth:`TargetParser.steps`)."""

    def __init__(
        self,
        parser: TargetParser,
        types: dict[bytes, bytes],
        scrape_ts: float,
        *,
        openmetrics: bool,
        redefine: bool,
    ) -> None:
        self.parser = parser
        self.types = types
        self.scrape_ts = scrape_ts
        self.openmetrics = openmetrics
        self.redefine = redefine
        # On a redefinition every line is parsed in full.
        self.old_index = {} if redefine else parser._index
        self.old_ts_index = {} if redefine else parser._ts_index
        self.known = set(parser._ids)
        self.kinds: dict[str, SeriesKind] | None = None
        self.index: dict[bytes, int] = {}
        self.ts_index: dict[bytes, int] = {}
        self.keys: list[bytes] = []
        self.line_sids: list[int] = []
        self.chunk = Chunk()
        self.seen: set[int] = set()
        self.problems: list[str] = []
        self.fast = True
        self.checked: list[int] = []
        self.eof_at = 0

    def comment(self, n: int, line: bytes) -> None:
        self.line_sids.append(0)
        if b" " not in line:
            # A blank line or a bare '#': its series text would be empty,
            # which tells nothing apart in the fast path.
            self.fast = False
        if not line:
            if self.openmetrics:
                raise ExpositionError(n + 1, "", "blank line in OpenMetrics")
            return
        try:
            comment = parse_comment(_decoded(line, n), openmetrics=self.openmetrics)
        except LineError as exc:
            raise ExpositionError(n + 1, _text(line), str(exc)) from None
        if comment is not None and comment.keyword in ("TYPE", "EOF"):
            # What follows the last space matters here (the type; EOF).
            self.checked.append(n)
            if comment.keyword == "EOF":
                self.eof_at = n + 1

    def sample(self, n: int, line: bytes, key: bytes, sep: bytes, token: bytes) -> None:
        parser = self.parser
        line_ts = self.scrape_ts
        sid = self.old_index.get(key) if sep else None
        if sid:
            value = _value(token, n, line)
            self.index[key] = sid
        else:
            series, sep2, value_token = key.rpartition(b" ")
            sid = self.old_ts_index.get(series) if sep2 and not self.openmetrics else None
            if sid:
                self.fast = False
                value = _value(value_token, n, line)
                if parser.honor_timestamps:
                    line_ts = _text_ts(token, n, line)
                self.ts_index[series] = sid
            else:
                parsed = parser._parse_sample(line, n, self.openmetrics)
                if self.kinds is None:
                    self.kinds = _kinds(self.types, self.openmetrics)
                sid, definition = parser._define(parsed, self.kinds)
                if sid not in self.known:
                    self.chunk.new.append(definition)
                elif self.redefine:
                    self.chunk.again.append(definition)
                value = parsed.value
                if parsed.timestamp is not None and parser.honor_timestamps:
                    line_ts = parsed.timestamp
                if parsed.plain:
                    self.index[key] = sid
                else:
                    self.fast = False
                    if parsed.timestamp is not None and sep2 and not self.openmetrics:
                        self.ts_index[series] = sid
        if sid in self.seen:
            self.problems.append(f"line {n + 1}: duplicate series dropped: {_text(line)[:200]!r}")
            self.line_sids.append(0)
            return
        self.seen.add(sid)
        self.line_sids.append(sid)
        self.chunk.add(sid, line_ts, value)


def _kinds(types: dict[bytes, bytes], openmetrics: bool) -> dict[str, SeriesKind]:
    table = OPENMETRICS_TYPES if openmetrics else TEXT_TYPES
    out: dict[str, SeriesKind] = {}
    for name, kind in types.items():
        known = table.get(kind.decode(errors="replace"))
        if known is not None:
            out[name.decode(errors="replace")] = known
    return out


def _decoded(line: bytes, n: int) -> str:
    try:
        return line.decode()
    except UnicodeDecodeError as exc:
        raise ExpositionError(
            n + 1, _text(line), f"invalid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None


def _text(line: bytes) -> str:
    return line.decode(errors="replace")


def _value(token: bytes, n: int, line: bytes) -> float:
    try:
        return parse_value(token.decode("ascii"))
    except (LineError, UnicodeDecodeError):
        raise ExpositionError(n + 1, _text(line), f"invalid value {_text(token)!r}") from None


def _text_ts(token: bytes, n: int, line: bytes) -> float:
    if not token.lstrip(b"-").isdigit():
        raise ExpositionError(n + 1, _text(line), f"invalid timestamp {_text(token)!r}")
    return int(token) / 1000.0
