"""``nfv-assure serve``: every role and the HTTP server in one process, state kept on disk."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from pathlib import Path

import click

from assure.cli.app import CONTEXT, main, settings_of


@main.command(context_settings=CONTEXT)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the private Redis keeps its data when REDIS_URL is unset "
    "[default: redis.data_dir, else $XDG_DATA_HOME/nfv-assure, i.e. ~/.local/share/nfv-assure].",
)
@click.option("--host", help="Address to listen on [default: api.host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Port [default: api.port, 8080].")
@click.pass_context
def serve(ctx: click.Context, data_dir: Path | None, host: str | None, port: int | None) -> None:
    """Run every stage and the REST API in one process until interrupted.

    Without REDIS_URL a private redis-server keeps the platform's state
    (catalogue, inventory, violations, operation history) in the data
    directory, so a restart carries on where the last run stopped. On the
    very first start an admin token is printed once on stderr.
    """
    from assure.embedded_redis import default_data_dir  # noqa: PLC0415 - keeps --help fast
    from assure.platform import ALL_ROLES, Platform, PlatformError  # noqa: PLC0415
    from bus.clock import WallClock  # noqa: PLC0415

    settings = settings_of(ctx)
    if data_dir is not None and settings.redis.url is not None:
        raise click.UsageError("--data-dir is where the private Redis keeps data; REDIS_URL is set")
    api = dataclasses.replace(
        settings.api,
        host=settings.api.host if host is None else host,
        port=settings.api.port if port is None else port,
    )
    settings = dataclasses.replace(settings, api=api)
    directory = data_dir or settings.redis.data_dir or default_data_dir(os.environ)

    async def run_all() -> None:
        platform = await Platform.open(settings, WallClock(), data_dir=directory)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await platform.onboard_dir(settings.policy.vnfd_dir)
            loaded = platform.load_policies()
            for problem in loaded.problems:
                click.echo(f"policy skipped: {problem.format()}", err=True)
            where = "REDIS_URL" if settings.redis.url else f"data in {directory}"
            click.echo(f"serving on http://{api.host}:{api.port} ({where}); Ctrl-C stops", err=True)
            await platform.run_roles(ALL_ROLES, stop, loaded)
        finally:
            await platform.aclose()

    try:
        asyncio.run(run_all())
    except PlatformError as exc:
        raise click.ClickException(str(exc)) from exc
