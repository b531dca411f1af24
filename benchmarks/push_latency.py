"""Pushed KPI step -> decision, by remote_write and by VES, under 20,000 pushed samples/s.

The server's push receivers, the analytics stage and the policy stage run
in this process (as ``nfv-assure serve`` runs them) over a private Redis,
on a simulated VNF of two VNFCs. A load process pushes background samples
by remote_write (``--load`` samples/s, in requests of ``--batch`` series
spread over both VNFCs: a watched KPI below its threshold and unwatched
ones), all along.

Each trial, at a random moment, pushes one KPI step (from 10 to 200) for
the first VNFC, by remote_write (a snappy protobuf WriteRequest) or by a
VES measurement event (``meanRequestLatency``); the time from just before
the request is sent to the moment the policy's decision is read from the
decisions stream is the trial's latency. Then the KPI steps back down
and the trial waits for the violation to abate. Policies are ``dry_run``:
they decide and record, and run nothing.

It prints p50/p99 of step -> decision for each source, the worst event-loop
stall of the server process during the trials (:mod:`benchmarks.loop_stall`:
wall, and the part its loop spent running code), its longest garbage
collection, the load average, and,
last, ``push: remote_write p99 A ms, ves p99 B ms``. Target: p99 < 50 ms for
both.

    .venv/bin/python benchmarks/push_latency.py [--trials 40] [--load 20000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import cramjam
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from assure.api.app import build_app, deps_of
from assure.api.push import REMOTE_WRITE_PATH, VES_PATH, push_routes
from assure.api.tokens import Role
from assure.platform import Platform
from assure.settings import load_settings
from benchmarks.loop_stall import StallWatch
from benchmarks.stream_watch import Watch as StreamWatch
from benchmarks.stream_watch import is_kind, quantile
from bus.clock import WallClock
from bus.series import SeriesRegistry
from collector.instances import InstanceLabels
from collector.push.remote_write import RemoteWriteReceiver
from collector.push.remote_write_wire import TimeSeries, encode_write_request
from collector.push.ves import VesReceiver
from collector.service import DEFAULT_MAX_BATCH_SAMPLES
from collector.writer import SampleWriter
from policy.loader import LoadResult, parse_text

KPI = "vnf_pushed_latency_ms"
VES_KPI = "ves_mean_request_latency"
LOW, HIGH, THRESHOLD = 10.0, 200.0, 50.0
POLICIES = f"""\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {{name: bench-remote-write}}
spec:
  target: {{vnfd: vfw}}
  mode: dry_run
  conditions:
    - {{name: latency-high, kpi: {KPI}, scope: vnfc, aggregate: max, op: ">",
       threshold: {THRESHOLD}, for: 0s}}
  action: {{type: heal}}
---
apiVersion: assure/v1
kind: KpiPolicy
metadata: {{name: bench-ves}}
spec:
  target: {{vnfd: vfw}}
  mode: dry_run
  conditions:
    - {{name: latency-high, kpi: {VES_KPI}, scope: vnfc, op: ">", threshold: {THRESHOLD},
       for: 0s}}
  action: {{type: heal}}
"""
REPO = Path(__file__).resolve().parents[1]
SNAPPY = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}

LOAD = """
import asyncio, struct, sys, time, aiohttp, cramjam
from collector.push.remote_write_wire import TimeSeries, encode_write_request
url, token, kpi, vnfcs = sys.argv[1], sys.argv[2], sys.argv[5], sys.argv[6:]
rate, batch = int(sys.argv[3]), int(sys.argv[4])
headers = {"Authorization": "Bearer " + token, "Content-Encoding": "snappy",
           "Content-Type": "application/x-protobuf"}
# Each series' bytes up to its sample, encoded once; a request adds the samples.
heads = []
for i in range(batch):
    name = kpi if i % 10 == 0 else f"bench_background_{i % 7}"
    labels = {"__name__": name, "vnfc_id": vnfcs[i % len(vnfcs)], "path": str(i)}
    one = encode_write_request([TimeSeries(labels, [(0.0, 0)])])
    heads.append(one[:-13])  # without the sample: 0x12 len 0x09 double 0x10 varint(0)
def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
async def main():
    per_s = max(1, rate // batch)
    async with aiohttp.ClientSession() as s:
        start = time.monotonic()
        n = 0
        while True:
            ts = varint(int(time.time() * 1000))
            sample = b"\\x09" + struct.pack("<d", 1.0 + n % 5) + b"\\x10" + ts
            parts = []
            for head in heads:
                # the series' length grows by the sample's; lengths here stay below 128
                size = head[1] - 13 + len(sample) + 2
                parts.append(b"\\x0a" + bytes([size]) + head[2:] + b"\\x12"
                             + bytes([len(sample)]) + sample)
            body = bytes(cramjam.snappy.compress_raw(b"".join(parts)))
            async with s.post(url, data=body, headers=headers) as r:
                assert r.status == 204, await r.text()
            n += 1
            delay = start + n / per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
asyncio.run(main())
"""


class Watch(StreamWatch):
    async def until(self, policy: str, kind: str, deadline_s: float = 10.0) -> float:
        """Wait for a decision (or an ABATED) of ``policy``; the time it was read."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            messages, read_at = await self.read(block_ms=100)
            if any(m.policy == policy and is_kind(m, kind) for m in messages):
                return read_at
        raise TimeoutError(f"no {kind} of {policy} within {deadline_s:g} s")


def remote_write_step(vnfc: str, value: float) -> tuple[str, dict[str, Any]]:
    series = [TimeSeries({"__name__": KPI, "vnfc_id": vnfc}, [(value, int(time.time() * 1000))])]
    body = bytes(cramjam.snappy.compress_raw(encode_write_request(series)))
    return REMOTE_WRITE_PATH, {"data": body, "headers": SNAPPY}


def ves_step(vnfc: str, value: float) -> tuple[str, dict[str, Any]]:
    micros = int(time.time() * 1e6)
    event = {"event": {
        "commonEventHeader": {
            "domain": "measurement", "eventId": f"bench-{micros}", "eventName": "Measurement_vFW",
            "lastEpochMicrosec": micros, "priority": "Normal", "reportingEntityName": vnfc,
            "sequence": 0, "sourceName": vnfc, "startEpochMicrosec": micros - 1_000_000,
            "version": "4.1", "vesEventListenerVersion": "7.2.1",
        },
        "measurementFields": {"measurementInterval": 1, "measurementFieldsVersion": "4.0",
                              "meanRequestLatency": value},
    }}  # fmt: skip
    return VES_PATH, {"json": event}


STEPS = {"remote_write": ("bench-remote-write", remote_write_step),
         "ves": ("bench-ves", ves_step)}  # fmt: skip


async def trials(
    platform: Platform, url: str, token: str, vnfc: str, count: int
) -> dict[str, list[float]]:
    watch = Watch(platform.redis, platform.keys)
    await watch.start()
    out: dict[str, list[float]] = {source: [] for source in STEPS}
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=url) as session:

        async def push(path: str, options: dict[str, Any]) -> None:
            headers = {**auth, **options.pop("headers", {})}
            async with session.post(path, headers=headers, **options) as reply:
                assert reply.status in (202, 204), await reply.text()

        for _policy, step in STEPS.values():
            await push(*step(vnfc, LOW))
        await asyncio.sleep(0.5)
        for n in range(count):
            for source, (policy, step) in STEPS.items():
                await asyncio.sleep(random.uniform(0.05, 0.3))
                path, options = step(vnfc, HIGH)
                started = time.perf_counter()
                await push(path, options)
                decided = await watch.until(policy, "decision")
                out[source].append(decided - started)
                await push(*step(vnfc, LOW))
                await watch.until(policy, "abated")
            if (n + 1) % 10 == 0:
                print(f"  {n + 1} trials", file=sys.stderr)
    return out


async def main(count: int, load: int, batch: int, as_json: bool) -> int:
    from tests.redis_server import RedisServer  # noqa: PLC0415 - the benchmark's Redis

    redis_server = RedisServer()
    defaults = load_settings()
    settings = dataclasses.replace(
        defaults,
        redis=dataclasses.replace(defaults.redis, url=redis_server.url),
        vim=dataclasses.replace(defaults.vim, boot=0.0),
    )
    platform = await Platform.open(settings, WallClock())
    stop = asyncio.Event()
    roles: asyncio.Task[None] | None = None
    loader: asyncio.subprocess.Process | None = None
    writer = SampleWriter(
        platform.redis, platform.keys, SeriesRegistry(platform.redis, platform.keys),
        maxlen=settings.redis.samples_maxlen, max_batch_samples=DEFAULT_MAX_BATCH_SAMPLES,
    )  # fmt: skip
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        vnf, _ = await platform.vnfm.instantiate("vfw", "bench-fw")
        vnfcs = [c.id for c in vnf.vnfcs]
        policies = [p for p, _ in parse_text(POLICIES).policies]
        deps = deps_of(platform, policies, CollectorRegistry())
        token, _ = await deps.tokens.create(Role.OPERATOR, "bench")
        instances = InstanceLabels(platform.inventory)
        receivers = push_routes(
            RemoteWriteReceiver(writer, instances, platform.clock),
            VesReceiver(writer, instances, platform.clock),
        )
        roles = asyncio.create_task(
            platform.run_roles(["analytics", "policy"], stop, LoadResult(policies=policies))
        )
        async with TestServer(build_app(deps, routes=[receivers])) as server:
            url = f"http://127.0.0.1:{server.port}"
            loader = await asyncio.create_subprocess_exec(
                sys.executable, "-c", LOAD, url + REMOTE_WRITE_PATH, token, str(load),
                str(batch), KPI, *(vnfcs[1:] or vnfcs), stdout=subprocess.DEVNULL, cwd=REPO,
            )  # fmt: skip
            await asyncio.sleep(2.0)  # the load settles
            began, pushed_before = time.monotonic(), writer.written
            watch = StallWatch()
            watching = asyncio.create_task(watch.run())
            try:
                latencies = await trials(platform, url, token, vnfcs[0], count)
            finally:
                watching.cancel()
            background = (writer.written - pushed_before) / (time.monotonic() - began)
            gc_s, gc_generation = watch.gc_s, watch.gc_generation
            stall_s, busy_s = watch.take()
    finally:
        if loader is not None:
            loader.kill()
            await loader.wait()
        stop.set()
        if roles is not None:
            await asyncio.wait_for(roles, 30)
        await writer.aclose()
        await platform.aclose()
        redis_server.stop()
    report: dict[str, Any] = {
        "trials": count,
        "background_samples_per_s": round(background),
        "load_average": os.getloadavg()[0],
        "worst_stall_ms": round(stall_s * 1000, 1),
        "worst_busy_ms": round(busy_s * 1000, 1),
        "longest_gc_ms": round(gc_s * 1000, 1),
        "longest_gc_generation": gc_generation,
    }
    for source, values in latencies.items():
        report[f"{source}_p50_ms"] = quantile(values, 0.5) * 1000
        report[f"{source}_p99_ms"] = quantile(values, 0.99) * 1000
    return show(report, as_json)


def show(report: dict[str, Any], as_json: bool) -> int:
    """Print the report (0: the target is met)."""
    met = all(report[f"{s}_p99_ms"] < 50 for s in STEPS)
    if as_json:
        print(json.dumps({**report, "target_met": met}))
    else:
        print(f"pushed step -> decision, {report['trials']} trials each, "
              f"{report['background_samples_per_s']} samples/s pushed meanwhile:")  # fmt: skip
        for source in STEPS:
            print(f"  {source:13} p50 {report[f'{source}_p50_ms']:.1f} ms, "
                  f"p99 {report[f'{source}_p99_ms']:.1f} ms")  # fmt: skip
        print(f"  target p99 < 50 ms for both: {'met' if met else 'NOT met'}")
        print(f"  server process: worst loop stall {report['worst_stall_ms']} ms wall, "
              f"{report['worst_busy_ms']} ms running, longest GC {report['longest_gc_ms']} ms "
              f"(gen {report['longest_gc_generation']}); load average "
              f"{report['load_average']:.2f} on {os.cpu_count()} cores")  # fmt: skip
    print(
        f"push: remote_write p99 {report['remote_write_p99_ms']:.1f} ms, "
        f"ves p99 {report['ves_p99_ms']:.1f} ms"
    )
    return 0 if met else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--load", type=int, default=20_000, help="background samples/s")
    parser.add_argument("--batch", type=int, default=1_000, help="series per load request")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.trials, args.load, args.batch, args.json)))
