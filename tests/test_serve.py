"""``nfv-assure serve``: every role and the API in one process, its state kept on disk."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.serve_support import serving


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["NFVA_REDIS_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "assure", *args],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip


async def _status(url: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        return response.status


async def test_first_start_prints_one_admin_token_and_a_restart_keeps_the_tokens(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with serving(data) as first:
        admin = first.first_token()
        assert admin is not None, "".join(first.stderr)
        made = await asyncio.to_thread(_cli, "token", "create", "--role", "viewer", data_dir=data)
        assert made.returncode == 0, made.stderr
        viewer = made.stdout.strip()
        assert made.stdout == viewer + "\n", "the token and nothing else on stdout"
        listed = await asyncio.to_thread(_cli, "token", "list", data_dir=data)
        assert "viewer" in listed.stdout and "admin" in listed.stdout
    async with serving(data) as second:
        assert second.first_token() is None, "the first token is shown once"
        # Tokens live in the persisted Redis: both still authenticate.
        for token in (admin, viewer):
            assert await _status(second.url + "/api/v1/openapi.json", token) == 200


async def test_a_second_serve_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with serving(data):
        other = await asyncio.to_thread(_cli, "serve", "--data-dir", str(data), data_dir=data)
    assert other.returncode == 1
    assert "in use by another nfv-assure process" in other.stderr
