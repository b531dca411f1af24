"""Prometheus remote_write 1.0 messages: the protobuf wire format, read and written by hand.

The messages (``prometheus.WriteRequest`` of the remote_write 1.0
specification), field numbers as the specification gives them::

    WriteRequest   { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
    TimeSeries     { repeated Label labels = 1; repeated Sample samples = 2;
                     repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
    Label          { string name = 1; string value = 2; }
    Sample         { double value = 1; int64 timestamp = 2; }     // milliseconds
    MetricMetadata { MetricType type = 1; string metric_family_name = 2;
                     string help = 4; string unit = 5; }

Unknown fields are skipped, as protobuf readers do; exemplars and native
histograms are skipped (counted in :attr:`WriteRequest.skipped`). Anything
that is not well-formed protobuf raises :class:`WireError` naming the
offset. The request body is this message compressed with snappy's block
format (not the framed one).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from bus.contracts import SeriesKind

METRIC_TYPES: dict[int, SeriesKind] = {
    0: "unknown",
    1: "counter",
    2: "gauge",
    3: "histogram",
    4: "gaugehistogram",
    5: "summary",
    6: "info",
    7: "stateset",
}
_TYPE_NUMBERS = {kind: number for number, kind in METRIC_TYPES.items()}
_DOUBLE = struct.Struct("<d")


class WireError(ValueError):
    """Bytes that are not a well-formed WriteRequest."""


@dataclass
class TimeSeries:
    labels: dict[str, str]
    samples: list[tuple[float, int]]
    """``(value, timestamp in ms)``."""
    key: bytes = b""
    """The series' label fields as they were on the wire (decoded series only): the same
    series sent again has the same bytes, so readers may cache what they made of them."""


@dataclass
class WriteRequest:
    timeseries: list[TimeSeries] = field(default_factory=list)
    kinds: dict[str, SeriesKind] = field(default_factory=dict)
    """Metric family name -> type, from the request's metadata."""
    skipped: int = 0
    """Exemplars and native histograms, which are not taken."""


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireError(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError(f"varint too long at byte {pos}")


def _fields(buf: bytes, pos: int, end: int) -> list[tuple[int, int, int, int]]:
    """``(field number, wire type, value or start, end)`` of each field in ``buf[pos:end]``."""
    out = []
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError(f"field number 0 at byte {pos}")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            out.append((number, wire, value, pos))
        elif wire == 1:
            if pos + 8 > end:
                raise WireError(f"truncated fixed64 at byte {pos}")
            out.append((number, wire, pos, pos + 8))
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise WireError(f"length {length} at byte {pos} runs past the message")
            out.append((number, wire, pos, pos + length))
            pos += length
        elif wire == 5:
            if pos + 4 > end:
                raise WireError(f"truncated fixed32 at byte {pos}")
            out.append((number, wire, pos, pos + 4))
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire} at byte {pos}")
    return out


def _text(buf: bytes, start: int, end: int) -> str:
    try:
        return buf[start:end].decode()
    except UnicodeDecodeError:
        raise WireError(f"string at byte {start} is not UTF-8") from None


def _expect(wire: int, wanted: int, what: str, at: int) -> None:
    if wire != wanted:
        raise WireError(f"{what} has wire type {wire}, not {wanted}, at byte {at}")


LabelCache = dict[bytes, dict[str, str]]
"""The labels of a series by its label bytes (see :attr:`TimeSeries.key`)."""


def decode_write_request(buf: bytes, cache: LabelCache | None = None) -> WriteRequest:
    """The WriteRequest in ``buf`` (uncompressed protobuf); raises :class:`WireError`.

    With ``cache``, a series whose label bytes are in it gets those labels
    (the same dict: do not change it) without decoding them, and new ones
    are added to it; the caller bounds it.
    """
    if cache is not None:
        fast = _plain_request(buf, cache)
        if fast is not None:
            return fast
    request = WriteRequest()
    for number, wire, start, end in _fields(buf, 0, len(buf)):
        if number == 1:
            _expect(wire, 2, "timeseries", start)
            series = _series(buf, start, end, cache)
            request.skipped += series[1]
            request.timeseries.append(series[0])
        elif number == 3:
            _expect(wire, 2, "metadata", start)
            kind: SeriesKind = "unknown"
            name = ""
            for n2, w2, s2, e2 in _fields(buf, start, end):
                if n2 == 1 and w2 == 0:
                    kind = METRIC_TYPES.get(s2, "unknown")
                elif n2 == 2 and w2 == 2:
                    name = _text(buf, s2, e2)
            if name:
                request.kinds[name] = kind
    return request


def _plain_request(buf: bytes, cache: LabelCache) -> WriteRequest | None:
    """The request read on the path Prometheus's encoding takes, or None when ``buf``
    holds anything else (metadata, exemplars, another field order, an error): then the
    general reader takes it, and says what is wrong with it if anything is.

    Each series costs a cache look-up of its label bytes and the reading of its
    samples, in one loop without calls (the shape: ``0x0a len labels... (0x12 len
    0x09 double 0x10 varint)...``).
    """
    out: list[TimeSeries] = []
    append = out.append
    unpack = _DOUBLE.unpack_from
    end = len(buf)
    pos = 0
    while pos < end:
        if buf[pos] != 0x0A or pos + 2 > end:
            return None
        length = buf[pos + 1]
        if length >= 0x80:
            length, pos = _varint(buf, pos + 1, end)
        else:
            pos += 2
        stop = pos + length
        if stop > end:
            return None
        at = pos
        while at < stop and buf[at] == 0x0A:
            size = buf[at + 1] if at + 1 < stop else 0x80
            if size >= 0x80:
                return None
            at += 2 + size
        if at > stop:
            return None
        key = buf[pos:at]
        labels = cache.get(key)
        if labels is None:
            return None
        samples: list[tuple[float, int]] = []
        while at < stop:
            if buf[at] != 0x12 or at + 12 > stop or buf[at + 2] != 0x09 or buf[at + 11] != 0x10:
                return None
            after = at + 2 + buf[at + 1]
            if buf[at + 1] >= 0x80 or after > stop:
                return None
            ts = 0
            shift = 0
            i = at + 12
            while i < after:
                byte = buf[i]
                ts |= (byte & 0x7F) << shift
                i += 1
                if not byte & 0x80:
                    break
                shift += 7
            if i != after:
                return None
            samples.append((unpack(buf, at + 3)[0], ts - (1 << 64) if ts >= 1 << 63 else ts))
            at = after
        append(TimeSeries(labels, samples, key))
        pos = stop
    return WriteRequest(out)


def _label_bytes_end(buf: bytes, pos: int, end: int) -> int:
    """Where the leading label fields (key ``0x0a``) of a TimeSeries in ``buf[pos:end]`` end."""
    while pos < end and buf[pos] == 0x0A:
        length, pos = _varint(buf, pos + 1, end)
        pos += length
    return min(pos, end)


def _plain_samples(buf: bytes, pos: int, end: int, out: list[tuple[float, int]]) -> int:
    """Read the samples encoded as Prometheus encodes them (value, then timestamp) from
    ``pos`` into ``out``; returns where the first field of another shape starts."""
    unpack = _DOUBLE.unpack_from
    while pos + 12 <= end and buf[pos] == 0x12 and buf[pos + 2] == 0x09:
        length = buf[pos + 1]
        stop = pos + 2 + length
        if length >= 0x80 or stop > end or buf[pos + 11] != 0x10:
            break
        ts, after = _varint(buf, pos + 12, stop)
        if after != stop:
            break
        out.append((unpack(buf, pos + 3)[0], ts - (1 << 64) if ts >= 1 << 63 else ts))
        pos = stop
    return pos


def _series(
    buf: bytes, start: int, end: int, cache: LabelCache | None = None
) -> tuple[TimeSeries, int]:
    labels: dict[str, str] = {}
    samples: list[tuple[float, int]] = []
    skipped = 0
    labels_end = _label_bytes_end(buf, start, end)
    key = buf[start:labels_end]
    known = cache.get(key) if cache is not None else None
    if known is not None:
        labels, start = known, labels_end
        start = _plain_samples(buf, start, end, samples)
    for number, wire, s, e in _fields(buf, start, end):
        if number == 1:
            if known is not None:
                raise WireError(f"label at byte {s} after the series' samples")
            _expect(wire, 2, "label", s)
            name = value = ""
            for n2, w2, s2, e2 in _fields(buf, s, e):
                if n2 == 1 and w2 == 2:
                    name = _text(buf, s2, e2)
                elif n2 == 2 and w2 == 2:
                    value = _text(buf, s2, e2)
            labels[name] = value
        elif number == 2:
            _expect(wire, 2, "sample", s)
            value_f = 0.0
            ts = 0
            for n2, w2, s2, _e2 in _fields(buf, s, e):
                if n2 == 1 and w2 == 1:
                    value_f = _DOUBLE.unpack_from(buf, s2)[0]
                elif n2 == 2 and w2 == 0:
                    ts = s2 - (1 << 64) if s2 >= 1 << 63 else s2
            samples.append((value_f, ts))
        elif number in (3, 4):
            skipped += 1
    if cache is not None and known is None:
        cache[key] = labels
    return TimeSeries(labels, samples, key), skipped


# --- writing (tests, benchmarks, tools) ----------------------------------------
def _put_varint(out: bytearray, value: int) -> None:
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _put_bytes(out: bytearray, number: int, data: bytes) -> None:
    _put_varint(out, number << 3 | 2)
    _put_varint(out, len(data))
    out += data


def encode_write_request(
    series: list[TimeSeries], kinds: dict[str, SeriesKind] | None = None
) -> bytes:
    """``series`` (and metadata ``kinds``) as an uncompressed WriteRequest."""
    out = bytearray()
    for ts in series:
        body = bytearray()
        for name, value in ts.labels.items():
            label = bytearray()
            _put_bytes(label, 1, name.encode())
            _put_bytes(label, 2, value.encode())
            _put_bytes(body, 1, bytes(label))
        for value_f, stamp in ts.samples:
            sample = bytearray()
            _put_varint(sample, 1 << 3 | 1)
            sample += _DOUBLE.pack(value_f)
            _put_varint(sample, 2 << 3 | 0)
            _put_varint(sample, stamp)
            _put_bytes(body, 2, bytes(sample))
        _put_bytes(out, 1, bytes(body))
    for name, kind in (kinds or {}).items():
        meta = bytearray()
        _put_varint(meta, 1 << 3 | 0)
        _put_varint(meta, _TYPE_NUMBERS[kind])
        _put_bytes(meta, 2, name.encode())
        _put_bytes(out, 3, bytes(meta))
    return bytes(out)
