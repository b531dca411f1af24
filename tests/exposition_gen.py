"""Hypothesis strategies for valid Prometheus expositions, and the reference parse.

The reference is ``prometheus_client``'s own parser, with the two places
where it differs from what Prometheus keeps undone: it drops nothing for
an empty label value (Prometheus drops the label), and it renames the
samples of a text-format counter whose name lacks ``_total`` (the
strategies always name counters with ``_total``, as exporters do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

Flat = tuple[str, tuple[tuple[str, str], ...], float | str, float | None]


def canonical(name: str, labels: dict[str, str], value: float, ts: float | None) -> Flat:
    return (
        name,
        tuple(sorted((k, v) for k, v in labels.items() if v)),
        "NaN" if math.isnan(value) else float(value),
        ts,
    )


def reference(text: str, *, openmetrics: bool = False) -> list[Flat]:
    parse = openmetrics_families if openmetrics else text_string_to_metric_families
    out: list[Flat] = []
    for family in parse(text):
        for s in family.samples:
            ts = None
            if s.timestamp is not None:
                ts = float(s.timestamp)  # openmetrics: a Timestamp object
            out.append(canonical(s.name, s.labels, float(s.value), ts))
    return out


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_value(value: float, *, integer: bool = False) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if integer:
        return str(int(value))
    return repr(value)


label_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in ("le", "quantile")
)
label_values = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\r"), max_size=12
)
label_sets = st.dictionaries(label_names, label_values, max_size=4)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-(10**12), 10**12).map(float),
)
finite_positive = st.floats(min_value=0, max_value=1e15, allow_nan=False)


@dataclass
class Family:
    name: str
    kind: str
    help: str | None
    lines: list[str]


@st.composite
def text_family(draw: st.DrawFn, index: int, with_timestamps: bool) -> Family:
    kind = draw(st.sampled_from(["gauge", "counter", "untyped", "summary", "histogram"]))
    base = f"f{index}_" + draw(st.from_regex(r"[a-z][a-z0-9_:]{0,8}", fullmatch=True))
    name = base + "_total" if kind == "counter" else base
    helptext = draw(
        st.none() | st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20)
    )
    lines: list[str] = []
    spacing = draw(st.sampled_from([" ", " ", "  ", "\t"]))

    def line(sample: str, labels: dict[str, str], value: float, *, integer: bool = False) -> str:
        inner = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
        text = f"{sample}{{{inner}}}" if labels else sample
        text += spacing + render_value(value, integer=integer)
        if with_timestamps and draw(st.booleans()):
            text += " " + str(draw(st.integers(0, 2 * 10**12)))
        return text

    series = draw(
        st.lists(label_sets, min_size=1, max_size=3, unique_by=lambda d: tuple(sorted(d.items())))
    )
    # Series whose labels differ only in empty values are one series to Prometheus.
    seen: set[tuple[tuple[str, str], ...]] = set()
    for labels in series:
        key = tuple(sorted((k, v) for k, v in labels.items() if v))
        if key in seen:
            continue
        seen.add(key)
        if kind in ("gauge", "untyped", "counter"):
            lines.append(line(name, labels, draw(values)))
        elif kind == "summary":
            for q in draw(
                st.lists(st.sampled_from(["0.5", "0.9", "0.99"]), unique=True, max_size=3)
            ):
                lines.append(line(name, {**labels, "quantile": q}, draw(values)))
            lines.append(line(f"{name}_sum", labels, draw(values)))
            lines.append(line(f"{name}_count", labels, draw(finite_positive), integer=True))
        else:
            bounds = sorted(set(draw(st.lists(finite_positive, max_size=3))))
            count = 0.0
            for le in [*map(repr, bounds), "+Inf"]:
                count += draw(st.integers(0, 1000))
                lines.append(line(f"{name}_bucket", {**labels, "le": le}, count, integer=True))
            lines.append(line(f"{name}_sum", labels, draw(values)))
            lines.append(line(f"{name}_count", labels, count, integer=True))
    return Family(name, kind, helptext, lines)


@st.composite
def text_expositions(draw: st.DrawFn, with_timestamps: bool = False) -> str:
    count = draw(st.integers(1, 5))
    out: list[str] = []
    for i in range(count):
        family = draw(text_family(i, with_timestamps))
        if family.help is not None:
            help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
            out.append(f"# HELP {family.name} {help_text}".rstrip())
        if family.kind != "untyped" or draw(st.booleans()):
            out.append(f"# TYPE {family.name} {family.kind}")
        out.extend(family.lines)
    return "\n".join(out) + "\n"


@st.composite
def openmetrics_expositions(draw: st.DrawFn) -> str:
    count = draw(st.integers(1, 4))
    out: list[str] = []
    for i in range(count):
        kind = draw(st.sampled_from(["gauge", "counter", "unknown"]))
        name = f"f{i}_" + draw(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True))
        out.append(f"# TYPE {name} {kind}")
        series = draw(st.lists(label_sets, min_size=1, max_size=3))
        seen: set[tuple[tuple[str, str], ...]] = set()
        for labels in series:
            key = tuple(sorted((k, v) for k, v in labels.items() if v))
            if key in seen:
                continue
            seen.add(key)
            inner = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items() if v)
            sample = f"{name}_total" if kind == "counter" else name
            value = draw(finite_positive if kind == "counter" else values)
            text = f"{sample}{{{inner}}}" if inner else sample
            text += " " + render_value(value)
            if draw(st.booleans()):
                text += f" {draw(st.floats(0, 2e9)):.3f}"
            if kind == "counter" and draw(st.booleans()):
                text += ' # {trace_id="abc"} 1.0'
            out.append(text)
    out.append("# EOF")
    return "\n".join(out) + "\n"
