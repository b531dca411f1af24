"""The remote_write receiver on the server: from our own payloads, and from a real Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import cramjam
from aiohttp import web
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from assure.api.push import REMOTE_WRITE_PATH, push_routes
from assure.api.tokens import Role
from assure.platform import Platform
from assure.settings import Settings
from bus.clock import WallClock
from bus.contracts import PackedBatch, Sample, SeriesDef, decode
from bus.keys import Keys
from bus.sample_view import SeriesResolver
from bus.series import SeriesRegistry
from collector.instances import InstanceLabels
from collector.push.remote_write import RemoteWriteReceiver
from collector.push.remote_write_wire import (
    LabelCache,
    TimeSeries,
    WireError,
    decode_write_request,
    encode_write_request,
)
from collector.writer import SampleWriter
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from tests.api_support import Api, running_api
from tests.monitoring import Prometheus
from tests.test_scrape import http_server

HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}


@contextlib.asynccontextmanager
async def receiving(settings: Settings) -> AsyncIterator[tuple[Api, Platform]]:
    platform = await Platform.open(settings, WallClock())
    writer = SampleWriter(
        platform.redis,
        platform.keys,
        SeriesRegistry(platform.redis, platform.keys),
        maxlen=1000,
        max_batch_samples=2000,
    )
    receiver = RemoteWriteReceiver(
        writer, InstanceLabels(platform.inventory), platform.clock, max_bytes=1024 * 1024
    )
    try:
        await platform.inventory.save(
            VnfInstance(
                "vnf-1", "fw", "vfw", "sim", InstantiationState.INSTANTIATED, {},
                [VnfcInstance("vnfc-1", "fw", "srv-1", "host-a", "10.0.0.5", None, 0.0)],
                0.0, 0.0,
            )
        )  # fmt: skip
        async with running_api(platform, routes=[push_routes(receiver)]) as api:
            yield api, platform
    finally:
        await writer.aclose()
        await platform.aclose()


async def pushed(platform: Platform) -> tuple[list[Sample], dict[str, SeriesDef]]:
    resolver = SeriesResolver(SeriesRegistry(platform.redis, platform.keys))
    samples: list[Sample] = []
    defs: dict[str, SeriesDef] = {}
    for _id, fields in await platform.redis.xrange(platform.keys.stream("samples")):
        message = decode(fields[b"m"])
        assert isinstance(message, PackedBatch) and message.source == "remote_write"
        view = await resolver.view(message)
        samples.extend(view)
        defs.update({view.defs[sid].kpi: view.defs[sid] for sid in view.ids})
    return samples, defs


def snappy(raw: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(raw))


ONE = TimeSeries({"__name__": "a", "x": "zz"}, [(1.0, 1_000)])


def payload(series: list[TimeSeries], **kinds: Any) -> bytes:
    return bytes(cramjam.snappy.compress_raw(encode_write_request(series, kinds)))


async def test_a_write_request_becomes_labelled_samples_with_their_own_times(
    settings: Settings,
) -> None:
    body = payload(
        [
            TimeSeries({"__name__": "vnf_rx_total", "vnfc_id": "vnfc-1", "if": "eth0"},
                       [(10.0, 1_700_000_000_000), (12.0, 1_700_000_001_000)]),
            TimeSeries({"__name__": "node_load1", "instance": "10.0.0.5:9100"},
                       [(0.5, 1_700_000_000_500)]),
            TimeSeries({"__name__": "elsewhere", "job": "x"}, [(1.0, 1_700_000_000_000)]),
        ],
        vnf_rx_total="counter",
    )  # fmt: skip
    async with receiving(settings) as (api, platform):
        response = await api.client.post(
            REMOTE_WRITE_PATH, data=body, headers={**HEADERS, **api.auth(Role.OPERATOR)}
        )
        assert response.status == 204, await response.text()
        samples, defs = await pushed(platform)
    vnfc = {"vnf": "vnf-1", "vnfc": "vnfc-1", "vnfd": "vfw", "host": "host-a"}
    assert samples == [
        Sample("vnf_rx_total", {"vnfc_id": "vnfc-1", "if": "eth0", **vnfc}, 1_700_000_000.0, 10.0),
        Sample("vnf_rx_total", {"vnfc_id": "vnfc-1", "if": "eth0", **vnfc}, 1_700_000_001.0, 12.0),
        Sample("node_load1", {"instance": "10.0.0.5:9100", **vnfc}, 1_700_000_000.5, 0.5),
        Sample("elsewhere", {"job": "x"}, 1_700_000_000.0, 1.0),
    ]
    assert defs["vnf_rx_total"].is_counter


MALFORMED: dict[str, tuple[bytes, dict[str, str], int, str]] = {
    "garbage protobuf": (bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff\x0f")), HEADERS, 400,
                         "not a WriteRequest"),
    "wrong snappy framing": (bytes(cramjam.snappy.compress(encode_write_request([]) + b"x" * 20)),
                             HEADERS, 400, "snappy"),
    "not compressed at all": (b"\x0a\x00" * 10, HEADERS, 400, "snappy"),
    "no name": (payload([TimeSeries({"job": "x"}, [(1.0, 1)])]), HEADERS, 400, "__name__"),
    "inflates too far": (b"\xff\xff\xff\x7f" + b"\x00" * 16, HEADERS, 413, "inflate"),
    "json instead": (b"{}", {"Content-Type": "application/json"}, 415, "protobuf"),
    "gzip instead": (b"x", {**HEADERS, "Content-Encoding": "gzip"}, 415, "snappy"),
    "truncated protobuf": (snappy(encode_write_request([ONE])[:-3]), HEADERS, 400,
                           "not a WriteRequest"),
    "wrong wire type": (snappy(b"\x08\x01"), HEADERS, 400, "wire type 0"),
    "invalid utf-8 label": (snappy(encode_write_request([ONE]).replace(b"zz", b"\xff\xfe")),
                            HEADERS, 400, "not UTF-8"),
    "huge label value": (payload([TimeSeries({"__name__": "a", "x": "v" * 5000}, [(1.0, 1)])]),
                         HEADERS, 400, "over the limit of 4096"),
    "a 100 MB body": (b"\x00" * (100 * 1024 * 1024), HEADERS, 413, "larger than the limit"),
}  # fmt: skip


async def test_malformed_pushes_are_refused_with_a_reason_and_nothing_else_breaks(
    settings: Settings,
) -> None:
    good = payload([
        TimeSeries({"__name__": "ok", "vnfc": "vnfc-1"}, [(1.0, 1_000)]),
        # Values of every kind are values; a series twice is its samples twice.
        TimeSeries({"__name__": "odd", "vnfc": "vnfc-1"}, [(math.nan, 1_000), (math.inf, 2_000)]),
        TimeSeries({"__name__": "odd", "vnfc": "vnfc-1"}, [(-math.inf, 3_000)]),
    ])  # fmt: skip
    async with receiving(settings) as (api, platform):
        for name, (body, headers, status, reason) in MALFORMED.items():
            response = await api.client.post(
                REMOTE_WRITE_PATH, data=body, headers={**headers, **api.auth(Role.OPERATOR)}
            )
            assert response.status == status, name
            assert reason in (await response.json())["detail"], name
        anonymous = await api.client.post(REMOTE_WRITE_PATH, data=good, headers=HEADERS)
        assert anonymous.status == 401
        response = await api.client.post(
            REMOTE_WRITE_PATH, data=good, headers={**HEADERS, **api.auth(Role.OPERATOR)}
        )
        assert response.status == 204
        samples, _ = await pushed(platform)
    assert [s.kpi for s in samples] == ["ok", "odd", "odd", "odd"]
    odd = [s.value for s in samples if s.kpi == "odd"]
    assert math.isnan(odd[0]) and odd[1:] == [math.inf, -math.inf]


async def test_a_real_prometheus_remote_writes_what_it_scrapes(settings: Settings) -> None:
    async def exporter(_request: web.Request) -> web.Response:
        return web.Response(text="# TYPE vnf_sessions gauge\nvnf_sessions 42\n")

    async with (
        receiving(settings) as (api, platform),
        http_server("127.77.9.1", exporter) as exporter_url,
    ):
        target = exporter_url.removeprefix("http://").removesuffix("/metrics")
        prometheus = Prometheus(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "vnfc",
                        "static_configs": [{"targets": [target], "labels": {"vnfc_id": "vnfc-1"}}],
                    }
                ],
                "remote_write": [
                    {
                        "url": f"http://127.0.0.1:{api.client.port}{REMOTE_WRITE_PATH}",
                        "authorization": {"credentials": api.tokens[Role.OPERATOR]},
                        "queue_config": {"batch_send_deadline": "1s", "min_backoff": "100ms"},
                    }
                ],
            }
        )
        await prometheus.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while True:
                samples, _ = await pushed(platform)
                sessions = [s for s in samples if s.kpi == "vnf_sessions"]
                if sessions:
                    break
                assert loop.time() < deadline, "Prometheus never wrote vnf_sessions"
                await asyncio.sleep(0.2)
        finally:
            prometheus.stop()
    assert sessions[0].value == 42.0
    assert sessions[0].labels["vnfc"] == "vnfc-1" and sessions[0].labels["vnf"] == "vnf-1"
    assert sessions[0].labels["job"] == "vnfc"
    ups = [s for s in samples if s.kpi == "up" and s.labels.get("vnfc") == "vnfc-1"]
    assert ups and ups[0].value == 1.0


async def test_series_name_vnfs_and_servers_by_name_unless_two_vnfs_share_it(
    redis: Any, keys: Keys
) -> None:
    inventory = Inventory(redis, keys)
    for vnf_id, name in (("vnf-1", "edge"), ("vnf-2", "core"), ("vnf-3", "core")):
        vnfc = VnfcInstance(f"c-{vnf_id}", "fw", f"srv-{vnf_id}", "host-a", None, None, 0.0)
        await inventory.save(
            VnfInstance(
                vnf_id, name, "vfw", "sim", InstantiationState.INSTANTIATED, {}, [vnfc], 0.0, 0.0
            )
        )
    instances = InstanceLabels(inventory)
    await instances.refresh()
    assert instances.label({"vnf": "edge"}) == {
        "vnf": "vnf-1",
        "vnfd": "vfw",
        "exported_vnf": "edge",
    }
    assert instances.label({"vnf": "core"}) == {"vnf": "core"}, "ambiguous: left as it is"
    assert instances.instance_of({"server": "core-c-vnf-3"}) == {
        "vnf": "vnf-3", "vnfc": "c-vnf-3", "vnfd": "vfw", "host": "host-a"
    }  # fmt: skip


_LABEL_TEXT = st.text(st.characters(codec="utf-8"), max_size=140)
_SERIES = st.lists(
    st.builds(
        TimeSeries,
        st.dictionaries(st.sampled_from(["__name__", "job", "instance", "vnfc_id", "x"]),
                        _LABEL_TEXT, min_size=1),
        st.lists(st.tuples(st.floats(), st.integers(-(2**63), 2**63 - 1)), max_size=3),
    ),
    max_size=8,
)  # fmt: skip


def _read(buf: bytes, cache: LabelCache | None) -> Any:
    try:
        request = decode_write_request(buf, cache)
    except WireError as exc:
        return str(exc)
    return [(s.labels, [(repr(v), t) for v, t in s.samples]) for s in request.timeseries]


@examples(max_examples=200, deadline=None)
@given(_SERIES, st.data())
def test_the_cached_reading_of_series_seen_before_reads_what_the_full_reading_does(
    series: list[TimeSeries], data: st.DataObject
) -> None:
    buf = encode_write_request(series)
    cache: LabelCache = {}
    assert _read(buf, cache) == _read(buf, None)
    assert _read(buf, cache) == _read(buf, None), "the second time, from the cache"
    cut = data.draw(st.integers(0, len(buf)))
    assert _read(buf[:cut], cache) == _read(buf[:cut], None)
