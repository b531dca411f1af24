"""The real Prometheus and Alertmanager binaries on free loopback ports, for tests and benchmarks.

Both come from Debian's packages (``prometheus``, ``prometheus-alertmanager``),
which the test setup installs. Each runs with its own configuration and
storage in a private directory and is stopped (and its directory removed)
on :meth:`stop`. Alertmanager runs without its HA cluster listener.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.redis_server import free_port


class MonitoringProcess:
    """One binary serving HTTP on 127.0.0.1:``port``; ready once ``/-/ready`` answers 200."""

    binary_names: tuple[str, ...] = ()

    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"nfva-{name}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "log.txt"

    def binary(self) -> str:
        for candidate in self.binary_names:
            found = shutil.which(candidate)
            if found:
                return found
        raise RuntimeError(
            f"{self.binary_names[0]} is not installed: run scripts/test, which installs it"
        )

    def write(self, name: str, document: dict[str, Any]) -> Path:
        path = self.dir / name
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def args(self) -> list[str]:
        raise NotImplementedError

    def launch(self) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary(), *self.args()], stdout=log, stderr=subprocess.STDOUT
            )
        return self.process

    async def start(self, wait_s: float = 30.0) -> None:
        process = self.launch()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                if process.poll() is not None:
                    break
                try:
                    async with session.get(self.url + "/-/ready") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready: {tail}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Prometheus(MonitoringProcess):
    binary_names = ("prometheus",)

    def __init__(self, config: dict[str, Any], rules: dict[str, Any] | None = None) -> None:
        super().__init__("prometheus")
        if rules is not None:
            self.write("rules.yml", rules)
            config = {**config, "rule_files": [str(self.dir / "rules.yml")]}
        self.config = self.write("prometheus.yml", config)

    def args(self) -> list[str]:
        return [
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + "/api/v1/query", params={"query": expr}) as response,
        ):
            body = await response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def targets(self) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + "/api/v1/targets") as response,
        ):
            body = await response.json()
        active: list[dict[str, Any]] = body["data"]["activeTargets"]
        return active


class Alertmanager(MonitoringProcess):
    binary_names = ("prometheus-alertmanager", "alertmanager")

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__("alertmanager")
        self.config = self.write("alertmanager.yml", config)

    def args(self) -> list[str]:
        return [
            f"--config.file={self.config}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
