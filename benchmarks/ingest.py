"""Ingest cost: our sharded collectors against Prometheus, on the same targets, in the same run.

Writes ``--targets`` static expositions of ``--series`` series each
(node_exporter-shaped: families of counters and gauges with HELP and TYPE
lines) and serves them with nginx (the Debian package, started here on a
free loopback port). Then, one after the other:

1. ours: as many collector processes as cores (``--processes``), sharded
   through Redis, scrape every target each ``--interval`` and write packed
   batches to a private redis-server; samples/s is what the collectors
   wrote to Redis, CPU is the collector processes' plus redis-server's;
2. Prometheus 2.x (Debian package) scrapes the same targets at the same
   interval into its TSDB; samples/s is its
   ``prometheus_tsdb_head_samples_appended_total``, CPU its process's.

CPU is user + system time from ``/proc`` over a ``--duration`` window
after a ``--warmup``. Each collector also reports the worst event-loop
stall (how late a 1 ms timer ran) it saw in the window. nginx's CPU is
counted for neither. The last line is::

    ingest: ours S samples/s at C CPU-s/1M; prometheus P samples/s at Q CPU-s/1M; ratio R

``--soak SECONDS`` runs only our collectors that long and prints their RSS
every ``--soak-every`` seconds (memory flat over a long run).

    python benchmarks/ingest.py                       # 1,000 x 200 at 1 s
    python benchmarks/ingest.py --targets 500 --series 2000 --skip-prometheus
    python benchmarks/ingest.py --soak 3600
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

from assure.embedded_redis import find_redis_server
from bus.keys import Keys
from bus.redis import connect
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance

TICKS = os.sysconf("SC_CLK_TCK")
HERE = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A private redis-server without persistence, on a free port."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="nfva-bench-redis-")
        port = free_port()
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = subprocess.Popen(
            [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def exposition(target: int, series: int) -> str:
    """A node_exporter-shaped body of ``series`` series in families of ten."""
    rng = random.Random(target)
    lines: list[str] = []
    for family in range(-(-series // 10)):
        counter = family % 2 == 0
        name = f"node_bench_{family}_total" if counter else f"node_bench_{family}_bytes"
        lines.append(f"# HELP {name} Benchmark family {family}.")
        lines.append(f"# TYPE {name} {'counter' if counter else 'gauge'}")
        for i in range(min(10, series - family * 10)):
            value = rng.randint(0, 10**9) if counter else round(rng.random() * 1e6, 3)
            lines.append(f'{name}{{device="dev{i}",mode="m{i % 4}",cpu="{i}"}} {value}')
    return "\n".join(lines) + "\n"


class Nginx:
    """nginx serving a folder of static files on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nfva-nginx-"))
        self.port = free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(
            f"""
user root;
worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    types {{ }}
    default_type text/plain;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    server {{ listen 127.0.0.1:{self.port}; root {root}; }}
}}
"""
        )
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise SystemExit("ingest: nginx is not installed (apt-get install nginx-light)")
        self.process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/t0.prom", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not start: {(self.dir / 'error.log').read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Worker:
    """One collector process and the latest line it reported."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.last: dict[str, Any] = {"written": 0, "stall_ms": 0.0}
        self.worst_stall_ms = 0.0
        self.worst_busy_ms = 0.0
        self.worst_gc = (0.0, -1)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.last = json.loads(line)
            self.worst_stall_ms = max(self.worst_stall_ms, self.last["stall_ms"])
            self.worst_busy_ms = max(self.worst_busy_ms, self.last.get("busy_ms", 0.0))
            gc_ms = self.last.get("gc_ms", 0.0)
            if gc_ms > self.worst_gc[0]:
                self.worst_gc = (gc_ms, self.last.get("gc_generation", -1))


async def run_ours(args: argparse.Namespace, base: str, redis_url: str) -> tuple[float, float]:
    redis = connect(redis_url)
    keys = Keys(prefix=f"bench{uuid.uuid4().hex[:6]}")
    inventory = Inventory(redis, keys)
    for start in range(0, args.targets, 10):
        vnfcs = [
            VnfcInstance(f"vnfc-{i}", "app", f"srv-{i}", f"host-{i % 20}", None,
                         f"{base}/t{i}.prom", 0.0)
            for i in range(start, min(args.targets, start + 10))
        ]  # fmt: skip
        await inventory.save(
            VnfInstance(f"vnf-{start}", f"bench-{start}", "bench", "sim",
                        InstantiationState.INSTANTIATED, {}, vnfcs, 0.0, 0.0)
        )  # fmt: skip
    workers = []
    for _ in range(args.processes):
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "benchmarks" / "ingest_worker.py"), redis_url, keys.prefix,
            str(args.interval), str(args.shards), "6",
            stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(HERE)},
        )  # fmt: skip
        workers.append(Worker(process))
    try:
        if args.soak:
            await soak(args, workers)
            return 0.0, 0.0
        await asyncio.sleep(args.warmup)
        pids = [w.process.pid for w in workers]
        cpu0 = [cpu_s(p) for p in pids]
        written0 = sum(w.last["written"] for w in workers)
        for w in workers:
            w.worst_stall_ms = w.worst_busy_ms = 0.0
            w.worst_gc = (0.0, -1)
        started = time.monotonic()
        await asyncio.sleep(args.duration)
        elapsed = time.monotonic() - started
        cpu = sum(cpu_s(p) - c for p, c in zip(pids, cpu0, strict=True))
        written = sum(w.last["written"] for w in workers) - written0
        redis_cpu = cpu_s(args.redis_pid) - args.redis_cpu0
        rate = written / elapsed
        stalls = ", ".join(f"{w.worst_stall_ms:.1f}" for w in workers)
        busy = ", ".join(f"{w.worst_busy_ms:.1f}" for w in workers)
        gcs = ", ".join(f"{w.worst_gc[0]:.1f} (gen {w.worst_gc[1]})" for w in workers)
        per_million = (cpu + redis_cpu) / (written / 1e6) if written else float("inf")
        print(
            f"ours: {len(workers)} collector processes, {rate:,.0f} samples/s to Redis; "
            f"CPU {cpu / elapsed:.2f} cores collectors + {redis_cpu / elapsed:.2f} redis; "
            f"{per_million:.2f} CPU-s/1M; worst loop stall per process {stalls} ms wall, "
            f"{busy} ms running; longest GC {gcs} ms; "
            f"RSS {', '.join(f'{rss_mib(p):.0f}' for p in pids)} MiB"
        )
        return rate, per_million
    finally:
        for w in workers:
            w.process.send_signal(signal.SIGTERM)
        for w in workers:
            await w.process.wait()
            await w.reader
        await redis.aclose()


async def soak(args: argparse.Namespace, workers: list[Worker]) -> None:
    started = time.monotonic()
    while time.monotonic() - started < args.soak:
        await asyncio.sleep(args.soak_every)
        rss = ", ".join(f"{rss_mib(w.process.pid):.1f}" for w in workers)
        dropped = sum(w.last.get("dropped", 0) for w in workers)
        print(
            f"soak t={time.monotonic() - started:6.0f}s RSS {rss} MiB; "
            f"written {sum(w.last['written'] for w in workers):,}; dropped {dropped}",
            flush=True,
        )


def appended(url: str) -> float:
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith("prometheus_tsdb_head_samples_appended_total"):
            return float(line.rsplit(" ", 1)[1])
    raise RuntimeError("no prometheus_tsdb_head_samples_appended_total")


async def run_prometheus(args: argparse.Namespace, nginx_port: int) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix="nfva-prometheus-"))
    port = free_port()
    config = {
        "global": {
            "scrape_interval": f"{round(args.interval * 1000)}ms",
            "scrape_timeout": f"{round(args.interval * 800)}ms",
        },
        "scrape_configs": [
            {
                "job_name": "bench",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{nginx_port}"],
                     "labels": {"__metrics_path__": f"/t{i}.prom", "vnfc": f"vnfc-{i}"}}
                    for i in range(args.targets)
                ],
            }
        ],
    }  # fmt: skip
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("ingest: prometheus is not installed (apt-get install prometheus)")
    process = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        stdout=subprocess.DEVNULL,
        stderr=(folder / "log.txt").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.sleep(args.warmup)
        if process.returncode is not None:
            raise RuntimeError((folder / "log.txt").read_text()[-2000:])
        cpu0, samples0 = cpu_s(process.pid), appended(url)
        started = time.monotonic()
        await asyncio.sleep(args.duration)
        elapsed = time.monotonic() - started
        cpu, samples = cpu_s(process.pid) - cpu0, appended(url) - samples0
        rate = samples / elapsed
        per_million = cpu / (samples / 1e6) if samples else float("inf")
        print(
            f"prometheus: {rate:,.0f} samples/s appended; CPU {cpu / elapsed:.2f} cores; "
            f"{per_million:.2f} CPU-s/1M; RSS {rss_mib(process.pid):.0f} MiB"
        )
        return rate, per_million
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        shutil.rmtree(folder, ignore_errors=True)


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="nfva-targets-"))
    for i in range(args.targets):
        (root / f"t{i}.prom").write_text(exposition(i, args.series))
    nginx = Nginx(root)
    redis = RedisServer()
    assert redis.process.pid
    args.redis_pid = redis.process.pid
    args.redis_cpu0 = cpu_s(redis.process.pid)
    load = os.getloadavg()
    print(
        f"targets={args.targets} series={args.series} interval={args.interval}s "
        f"processes={args.processes} window={args.duration}s cores={os.cpu_count()} "
        f"load before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} python={sys.version.split()[0]}"
    )
    try:
        args.redis_cpu0 = cpu_s(redis.process.pid)
        ours, our_cost = await run_ours(args, f"http://127.0.0.1:{nginx.port}", redis.url)
        if args.soak:
            return
        if args.skip_prometheus:
            print(f"ingest: ours {ours:,.0f} samples/s at {our_cost:.2f} CPU-s/1M")
            return
        theirs, their_cost = await run_prometheus(args, nginx.port)
        print(
            f"ingest: ours {ours:,.0f} samples/s at {our_cost:.2f} CPU-s/1M; "
            f"prometheus {theirs:,.0f} samples/s at {their_cost:.2f} CPU-s/1M; "
            f"ratio {our_cost / their_cost:.2f}"
        )
    finally:
        nginx.stop()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--skip-prometheus", action="store_true")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds; ours only, RSS printed")
    parser.add_argument("--soak-every", type=float, default=60.0, help="seconds")
    asyncio.run(main(parser.parse_args()))
