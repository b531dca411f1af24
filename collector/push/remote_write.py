"""The Prometheus remote_write receiver (specification 1.0): snappy protobuf in, samples out.

``POST`` with ``Content-Encoding: snappy`` and ``Content-Type:
application/x-protobuf``: a WriteRequest (:mod:`collector.push.remote_write_wire`).
Each series' ``__name__`` becomes the KPI, its other labels are mapped onto
the inventory's instances (:mod:`collector.instances`), its samples keep
their own timestamps, and families the request's metadata types keep that
type (counters stay counters). Answers, as the specification wants them:

- 204 once the samples are handed to the samples writer (which rides out a
  Redis outage with a bounded buffer);
- 400 naming what is wrong with a body that is not a snappy-compressed
  WriteRequest (a sender must not retry it), a series with no name, or a
  label value longer than :data:`MAX_LABEL_VALUE`;
- 413 for a body that would inflate beyond ``max_bytes``;
- 415 for another content type or encoding.
"""

from __future__ import annotations

import asyncio
import time

import cramjam
from aiohttp import web

from bus.clock import Clock
from bus.contracts import REMOTE_WRITE_SOURCE
from bus.heap import freeze_heap
from bus.series import series_id
from collector.chunks import SeriesBook
from collector.exposition_lines import kind_of
from collector.instances import InstanceLabels
from collector.push.errors import PushError
from collector.push.remote_write_wire import (
    LabelCache,
    TimeSeries,
    WireError,
    WriteRequest,
    decode_write_request,
)
from collector.push.stats import PushStats
from collector.writer import SampleWriter


def inflated_size(body: bytes) -> int:
    """The uncompressed length a snappy block announces (its leading varint)."""
    size = shift = 0
    for pos, byte in enumerate(body[:10]):
        size |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return size
        shift += 7
        if pos == 9:
            break
    raise PushError(400, "not a snappy block: no valid length header")


SERIES_PER_STEP = 500
"""Series of a request mapped (or chunked) between two yields to the event loop."""
MAX_LABEL_VALUE = 4096
"""Longest label value taken, in characters (a longer one refuses the request)."""
_MAX_CACHED_SERIES = 200_000
"""Series whose decoded labels are kept; beyond, the caches start again."""

_Mapped = tuple[int, str, dict[str, str]]
"""A series' id, KPI and instance labels."""
_Series = tuple[int, str, dict[str, str], list[tuple[float, int]]]
"""The same, with the series' samples (value, timestamp in ms)."""


class RemoteWriteReceiver:
    """Takes remote_write requests into the samples stream."""

    def __init__(
        self,
        writer: SampleWriter,
        instances: InstanceLabels,
        clock: Clock,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        stats: PushStats | None = None,
    ) -> None:
        self._writer = writer
        self._instances = instances
        self._clock = clock
        self._book = SeriesBook(writer)
        self.max_bytes = max_bytes
        self.stats = stats or PushStats()
        # A sender sends the same series again and again, each with the same
        # label bytes: what they decode and map to is kept per inventory read.
        self._wire_labels: LabelCache = {}
        self._mapped: dict[bytes, _Mapped] = {}
        self._mapped_for = -1

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            write = await self._decoded(request)
            series = await self._mapped_series(write)
        except PushError:
            self.stats.failed(REMOTE_WRITE_SOURCE)
            raise
        chunks = []
        taken = 0
        for n in range(0, len(series), SERIES_PER_STEP):
            if n:
                await asyncio.sleep(0)  # a large request must not hold the loop
            rows = [
                (sid, name, labels, ts / 1000.0, value)
                for sid, name, labels, samples in series[n : n + SERIES_PER_STEP]
                for value, ts in samples
            ]
            taken += len(rows)
            chunks.append(self._book.chunk_keyed(rows, lambda kpi: kind_of(kpi, write.kinds)))
        await self._writer.write(REMOTE_WRITE_SOURCE, self._clock.now(), chunks)
        self.stats.took(REMOTE_WRITE_SOURCE, taken, time.perf_counter() - started)
        return web.Response(status=204)

    async def _decoded(self, request: web.Request) -> WriteRequest:
        if request.headers.get("Content-Encoding", "snappy").lower() != "snappy":
            raise PushError(415, "remote_write bodies must be snappy-compressed")
        if request.content_type not in ("application/x-protobuf", "application/octet-stream"):
            raise PushError(
                415, f"remote_write bodies are application/x-protobuf, not {request.content_type!r}"
            )
        body = await request.read()
        size = inflated_size(body)
        if size > self.max_bytes:
            raise PushError(
                413, f"the body would inflate to {size} bytes, over the limit of {self.max_bytes}"
            )
        try:
            raw = bytes(cramjam.snappy.decompress_raw(body))
        except cramjam.DecompressionError as exc:
            raise PushError(400, f"not a snappy block: {exc}") from None
        if len(self._wire_labels) > _MAX_CACHED_SERIES:
            self._wire_labels.clear()
        try:
            return decode_write_request(raw, self._wire_labels)
        except WireError as exc:
            raise PushError(400, f"not a WriteRequest: {exc}") from None

    async def _mapped_series(self, write: WriteRequest) -> list[_Series]:
        """Each series of ``write`` with its id, KPI, instance labels and samples.

        Every series is checked before anything is taken: a request with a
        bad one is refused whole.
        """
        await self._instances.refresh()
        mapped = self._mapped
        if self._mapped_for != self._instances.generation or len(mapped) > _MAX_CACHED_SERIES:
            mapped.clear()
            self._mapped_for = self._instances.generation
        out: list[_Series] = []
        all_known = True
        for n, series in enumerate(write.timeseries):
            if n and n % SERIES_PER_STEP == 0:
                await asyncio.sleep(0)  # a large request must not hold the loop
            known = mapped.get(series.key)
            if known is None:
                all_known = False
                known = self._map(n, series)
                mapped[series.key] = known
            out.append((*known, series.samples))
        if all_known and write.timeseries:
            # The sender's series are known: the caches are built (see bus.heap).
            freeze_heap()
        return out

    def _map(self, n: int, series: TimeSeries) -> _Mapped:
        labels = dict(series.labels)
        name = labels.pop("__name__", "")
        if not name:
            raise PushError(400, f"timeseries[{n}] has no __name__ label")
        for label, value in series.labels.items():
            if len(value) > MAX_LABEL_VALUE:
                raise PushError(
                    400, f"timeseries[{n}] label {label}: a value of {len(value)} "
                    f"characters, over the limit of {MAX_LABEL_VALUE}"
                )  # fmt: skip
        mapped = self._instances.label({k: v for k, v in labels.items() if v})
        return series_id(name, mapped), name, mapped
