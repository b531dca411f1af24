"""The scrape cache parser: equal to prometheus_client's parser, cached or not, and strict."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.exposition import ExpositionError, Parsed, TargetParser
from tests.exposition_gen import (
    Flat,
    canonical,
    openmetrics_expositions,
    reference,
    text_expositions,
)

CORPUS = Path(__file__).parent / "expositions"


class Terms:
    """The writer's side of definitions, as the parser sees it."""

    def __init__(self) -> None:
        self.token = 0

    def reregister_after_s(self) -> float:
        return 3600.0


def parser(**options: object) -> TargetParser:
    return TargetParser({}, Terms(), **options)  # type: ignore[arg-type]


def flat(parsed: Parsed, defs: dict[int, tuple[str, dict[str, str], str]]) -> list[Flat]:
    for d in parsed.chunk.new + parsed.chunk.again:
        defs[d.id] = (d.kpi, d.labels, d.kind)
    times = [
        t
        for c, t in zip(parsed.chunk.ts_counts, parsed.chunk.ts_values, strict=True)
        for _ in range(c)
    ]
    out = []
    for sid, value, ts in zip(parsed.chunk.ids, parsed.chunk.values, times, strict=True):
        name, labels, _ = defs[sid]
        out.append(canonical(name, labels, value, None if ts == -1.0 else ts))
    return out


def ours(text: str, *, openmetrics: bool = False, honor_timestamps: bool = True) -> list[Flat]:
    p = parser(honor_timestamps=honor_timestamps)
    return flat(p.parse(text.encode(), -1.0, openmetrics=openmetrics), {})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_expositions(with_timestamps=True))
def test_text_format_parses_as_prometheus_client_parses_it(text: str) -> None:
    assert ours(text) == reference(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(openmetrics_expositions())
def test_openmetrics_parses_as_prometheus_client_parses_it(text: str) -> None:
    assert ours(text, openmetrics=True) == reference(text, openmetrics=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_expositions(), st.data())
def test_a_cached_parse_yields_what_a_fresh_parse_of_the_same_body_yields(
    text: str, data: st.DataObject
) -> None:
    # The second body: the same lines with some values changed, or lines
    # dropped or repeated, or a line changed; the cache must never show through.
    lines = text.splitlines()
    choice = data.draw(st.sampled_from(["values", "drop", "repeat", "swap"]))
    if choice == "values":
        second = [_new_value(line, data) for line in lines]
    elif choice == "drop" and len(lines) > 1:
        second = lines[:-1]
    elif choice == "repeat":
        second = [*lines, lines[-1]]
    else:
        second = list(reversed(lines))
    second_text = "\n".join(second) + "\n"
    cached = parser(honor_timestamps=True)
    defs: dict[int, tuple[str, dict[str, str], str]] = {}
    first = flat(cached.parse(text.encode(), -1.0), defs)
    assert first == ours(text)
    try:
        fresh = flat(parser(honor_timestamps=True).parse(second_text.encode(), -1.0), {})
    except ExpositionError as exc:
        with pytest.raises(ExpositionError) as again:
            cached.parse(second_text.encode(), -1.0)
        assert str(again.value) == str(exc)
        return
    assert flat(cached.parse(second_text.encode(), -1.0), defs) == fresh


def _new_value(line: str, data: st.DataObject) -> str:
    if line.startswith("#"):
        return line
    head, _, _ = line.rpartition(" ")
    return f"{head} {data.draw(st.sampled_from(['1', '2.5', 'NaN', '+Inf', '-7e-3']))}"


def test_steady_state_scrapes_parse_only_values() -> None:
    body = CORPUS.joinpath("node_exporter.prom").read_bytes()
    p = parser()
    first = p.parse(body, 1.0)
    assert len(first.chunk.new) == first.samples > 250
    changed = body.replace(b"} 0\n", b"} 7\n")
    second = p.parse(changed, 2.0)
    assert second.chunk.new == [] and second.samples == first.samples
    assert p.full_parses == 1
    assert 7.0 in second.chunk.values and list(second.chunk.ids) == list(first.chunk.ids)
    assert list(second.chunk.ts_values) == [2.0]


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.prom")))
def test_real_world_expositions_parse_as_prometheus_client_parses_them(name: str) -> None:
    text = CORPUS.joinpath(name).read_text()
    assert ours(text) == reference(text)
    # And once more from the cache.
    p = parser(honor_timestamps=True)
    defs: dict[int, tuple[str, dict[str, str], str]] = {}
    flat(p.parse(text.encode(), -1.0), defs)
    assert flat(p.parse(text.encode(), -1.0), defs) == reference(text)


def test_kinds_follow_the_type_lines_and_counters_stay_counters() -> None:
    text = CORPUS.joinpath("app.prom").read_text()
    kinds = {d.kpi: (d.kind, d.is_counter) for d in parser().parse(text.encode(), 1.0).chunk.new}
    assert kinds["http_requests_total"] == ("counter", True)
    assert kinds["http_request_duration_seconds_bucket"] == ("histogram", True)
    assert kinds["http_request_duration_seconds_sum"] == ("histogram", True)
    assert kinds["rpc_latency_seconds_count"] == ("summary", True)
    assert kinds["process_resident_memory_bytes"] == ("gauge", False)
    assert kinds["untyped_thing"] == ("unknown", False)
    node = CORPUS.joinpath("node_exporter.prom").read_bytes()
    kinds = {d.kpi: (d.kind, d.is_counter) for d in parser().parse(node, 1.0).chunk.new}
    assert kinds["go_gc_duration_seconds"] == ("summary", False)  # the quantiles
    assert kinds["go_gc_duration_seconds_sum"] == ("summary", True)


def test_a_counter_keeps_its_exposed_name() -> None:
    # prometheus_client calls this sample foo_total; Prometheus keeps foo.
    parsed = parser().parse(b"# TYPE foo counter\nfoo 1\n", 1.0)
    assert [(d.kpi, d.kind) for d in parsed.chunk.new] == [("foo", "counter")]


def test_target_labels_win_unless_honor_labels() -> None:
    body = b'up_ish{vnfc="theirs",zone="a"} 1\n'
    plain = TargetParser({"vnfc": "ours"}, Terms()).parse(body, 1.0).chunk.new[0]
    assert plain.labels == {"vnfc": "ours", "exported_vnfc": "theirs", "zone": "a"}
    honored = TargetParser({"vnfc": "ours"}, Terms(), honor_labels=True).parse(body, 1.0)
    assert honored.chunk.new[0].labels == {"vnfc": "theirs", "zone": "a"}


def test_exposition_timestamps_are_used_only_when_honoured() -> None:
    body = b"a 1 1700000000000\nb 2\n"
    honoured = parser(honor_timestamps=True).parse(body, 5.0)
    assert list(honoured.chunk.ts_values) == [1_700_000_000.0, 5.0]
    ignored = parser().parse(body, 5.0)
    assert list(ignored.chunk.ts_values) == [5.0]


def test_exemplars_are_skipped_and_created_series_kept_in_openmetrics() -> None:
    body = (
        b"# TYPE req counter\n"
        b'req_total{path="/"} 3 # {trace_id="abc"} 1.0 1.5\n'
        b'req_created{path="/"} 1700000000.5\n'
        b"# EOF\n"
    )
    p = parser()
    parsed = p.parse(body, 1.0, openmetrics=True)
    assert [(d.kpi, d.is_counter) for d in parsed.chunk.new] == [
        ("req_total", True),
        ("req_created", False),
    ]
    assert list(parsed.chunk.values) == [3.0, 1700000000.5]
    again = p.parse(body.replace(b"} 3 #", b"} 4 #"), 2.0, openmetrics=True)
    assert list(again.chunk.values) == [4.0, 1700000000.5]


def test_duplicate_series_are_dropped_and_reported_on_every_scrape() -> None:
    body = b"a 1\nb 2\na 3\n"
    p = parser()
    for _ in range(2):
        parsed = p.parse(body, 1.0)
        assert list(parsed.chunk.values) == [1.0, 2.0]
        assert parsed.problems == ["line 3: duplicate series dropped: 'a 3'"]


MALFORMED = {
    "truncated line": (b'# TYPE a gauge\na{x="1"\n', 2, "invalid"),
    "no value": (b"a\n", 1, "missing value"),
    "wrong value": (b"a one\n", 1, "invalid value"),
    "underscore value": (b"a 1_000\n", 1, "invalid value"),
    "wrong type": (b"# TYPE a gauges\na 1\n", 1, "invalid metric type"),
    "bad timestamp": (b"a 1 soon\n", 1, "invalid timestamp"),
    "trailing junk": (b"a 1 2 3\n", 1, "unexpected text"),
    "bad name": (b"1a 1\n", 1, "invalid metric name"),
    "reserved label": (b'a{__x="1"} 1\n', 1, "reserved label"),
    "duplicate label": (b'a{x="1",x="2"} 1\n', 1, "duplicate label"),
    "unclosed quote": (b'a{x="1} 1\n', 1, "invalid"),
    "invalid UTF-8": (b'ok 1\na{x="\xff"} 1\n', 2, "invalid UTF-8"),
    "huge label value": (b'a{x="' + b"y" * 5000 + b'"} 1\n', 1, "longer than 4096"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_expositions_are_refused_naming_the_line(case: str) -> None:
    body, line_no, reason = MALFORMED[case]
    with pytest.raises(ExpositionError, match=reason) as error:
        parser().parse(body, 1.0)
    assert error.value.line_no == line_no


def test_a_malformed_body_after_good_ones_is_refused_and_the_cache_survives() -> None:
    p = parser()
    good = b"# TYPE a gauge\na 1\nb 2\n"
    p.parse(good, 1.0)
    for bad in (b"# TYPE a gauge\na 1\nb two\n", b"# TYPE a gauge\na 1\nb 2\nc\n"):
        with pytest.raises(ExpositionError):
            p.parse(bad, 2.0)
    assert list(p.parse(good.replace(b"a 1", b"a 5"), 3.0).chunk.values) == [5.0, 2.0]
    assert p.full_parses == 1


def test_nan_and_infinities_are_values_not_errors() -> None:
    parsed = parser().parse(b"a NaN\nb +Inf\nc -Inf\n", 1.0)
    assert [str(v) for v in parsed.chunk.values] == ["nan", "inf", "-inf"]


def test_openmetrics_needs_its_eof_and_nothing_after_it() -> None:
    with pytest.raises(ExpositionError, match="does not end with # EOF"):
        parser().parse(b"a 1\n", 1.0, openmetrics=True)
    with pytest.raises(ExpositionError, match="after # EOF"):
        parser().parse(b"a 1\n# EOF\nb 2\n", 1.0, openmetrics=True)


def test_sample_limit_fails_the_scrape() -> None:
    with pytest.raises(ExpositionError, match="sample limit of 2"):
        parser(sample_limit=2).parse(b"a 1\nb 1\nc 1\n", 1.0)


def test_a_type_change_redefines_the_series() -> None:
    p = parser()
    p.parse(b"# TYPE a gauge\na 1\n", 1.0)
    parsed = p.parse(b"# TYPE a counter\na 1\n", 1.0)
    assert [(d.kpi, d.kind) for d in parsed.chunk.again] == [("a", "counter")]


def test_gzip_is_not_the_parsers_business() -> None:
    # Bodies arrive decompressed (collector.scrape); compressed bytes are garbage here.
    with pytest.raises(ExpositionError):
        parser().parse(gzip.compress(b"a 1\n"), 1.0)
