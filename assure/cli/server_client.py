"""The CLI as a client of a running server: ``nfv-assure --server URL ...``.

With ``--server`` (or ``NFVA_SERVER``) the commands that read the
platform's state ask its REST API instead of Redis, with the token in
``NFVA_TOKEN``. A problem document the server answers becomes the
command's error message.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import click

SERVER_KEY = "nfva.server"


def server_of(ctx: click.Context) -> str | None:
    """The ``--server`` URL of this invocation, if any."""
    server = ctx.find_root().meta.get(SERVER_KEY)
    return server if isinstance(server, str) and server else None


def get_json(server: str, path: str, params: dict[str, str] | None = None) -> Any:
    """GET ``path`` of the server with ``NFVA_TOKEN``; the JSON body, or a ClickException."""
    import aiohttp  # noqa: PLC0415

    token = os.environ.get("NFVA_TOKEN", "")
    if not token:
        raise click.UsageError("--server needs a token: set NFVA_TOKEN (nfv-assure token create)")

    async def fetch() -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(server.rstrip("/") + path, params=params or {}, headers=headers) as reply,
        ):
            if reply.status >= 400:
                try:
                    detail = (await reply.json(content_type=None)).get("detail", reply.reason)
                except ValueError:
                    detail = reply.reason
                raise click.ClickException(f"{server}: {reply.status} {detail}")
            return await reply.json()

    try:
        return asyncio.run(fetch())
    except aiohttp.ClientError as exc:
        raise click.ClickException(f"cannot reach {server}: {exc}") from exc
