"""``nfv-assure serve`` as a real process on a free port, for tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.redis_server import free_port

FIRST_TOKEN = re.compile(r"^\s+(nfva_\S+)$", re.MULTILINE)


@dataclass
class Served:
    url: str
    process: asyncio.subprocess.Process
    stderr: list[str]

    def first_token(self) -> str | None:
        found = FIRST_TOKEN.search("".join(self.stderr))
        return found.group(1) if found else None


async def _pump(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


@contextlib.asynccontextmanager
async def serving(
    data_dir: Path, env: Mapping[str, str] | None = None, *, wait_s: float = 60.0
) -> AsyncIterator[Served]:
    """Run ``nfv-assure serve`` on ``data_dir`` until the block ends (then SIGTERM, exit 0).

    With ``REDIS_URL`` in ``env`` it serves from that Redis instead (``data_dir`` unused).
    """
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    environment.update(env or {})
    where = [] if "REDIS_URL" in environment else ["--data-dir", str(data_dir)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assure", "serve", *where, "--port", str(port),
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    pump = asyncio.create_task(_pump(process.stderr, lines))
    served = Served(f"http://127.0.0.1:{port}", process, lines)
    try:
        await _wait_ready(served, wait_s)
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await pump
    assert process.returncode == 0, "".join(lines)[-3000:]


async def _wait_ready(served: Served, wait_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    async with aiohttp.ClientSession() as session:
        while True:
            if served.process.returncode is not None:
                raise AssertionError("serve exited: " + "".join(served.stderr)[-3000:])
            try:
                async with session.get(served.url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if loop.time() > deadline:
                raise AssertionError("serve not ready: " + "".join(served.stderr)[-3000:])
            await asyncio.sleep(0.1)
