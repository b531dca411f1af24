"""The ``nfv-assure`` command group and what its subcommands share.

Each subcommand (or group) lives in a module of its own in this package and
registers itself on :data:`main`; :mod:`assure.cli` imports them all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from assure.settings import Settings, SettingsError, load_settings

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def settings_of(ctx: click.Context) -> Settings:
    """The settings the top-level group built for this invocation."""
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


@click.group(context_settings=CONTEXT)
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="NFVA_CONFIG",
    help="Settings file (assure.yaml). Environment variables override it "
    "(REDIS_URL, NFVA_<GROUP>_<FIELD>).",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Level of the diagnostic log on stderr [default: WARNING; ERROR for demo, "
    "whose progress lines already tell what happens].",
)
@click.option(
    "--server",
    envvar="NFVA_SERVER",
    metavar="URL",
    help="Ask a running server's REST API (token in NFVA_TOKEN) instead of Redis: status, ops.",
)
@click.version_option(package_name="nfv-assure")
@click.pass_context
def main(
    ctx: click.Context, config: Path | None, log_level: str | None, server: str | None
) -> None:
    """nfv-assure: closed-loop assurance for NFV MANO.

    Watches VNF and infrastructure KPIs, detects when one breaks its
    objective, and scales, heals or migrates the VNF through the VNFM and VIM.
    Start with 'nfv-assure demo'.
    """
    if log_level is None:
        log_level = "ERROR" if ctx.invoked_subcommand == "demo" else "WARNING"
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # apscheduler logs every job run at INFO: one line per scrape cycle is noise.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    ctx.meta["nfva.server"] = server
    if config is None and Path("assure.yaml").is_file():
        config = Path("assure.yaml")
    try:
        ctx.obj = load_settings(config, os.environ)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


def redis_url_of(settings: Settings) -> str:
    """The Redis of the running platform: REDIS_URL, else the private one of ``serve``."""
    from assure.embedded_redis import default_data_dir, running_url  # noqa: PLC0415

    if settings.redis.url is not None:
        return settings.redis.url
    data_dir = settings.redis.data_dir or default_data_dir(os.environ)
    url = running_url(data_dir)
    if url is None:
        raise click.UsageError(
            "this command works on a running platform's state: set REDIS_URL "
            f"(or redis.url in the settings file), or start 'nfv-assure serve' (data in {data_dir})"
        )
    return url


def with_redis(settings: Settings, action: Callable[[Any, Any], Awaitable[None]]) -> None:
    """Run ``action(client, keys)`` against the platform's Redis (see :func:`redis_url_of`)."""
    from redis.exceptions import RedisError  # noqa: PLC0415

    from bus.keys import Keys  # noqa: PLC0415
    from bus.redis import connect  # noqa: PLC0415

    url = redis_url_of(settings)

    async def go() -> None:
        client = connect(url, cluster=settings.redis.cluster)
        try:
            await action(client, Keys(prefix=settings.redis.prefix))
        finally:
            await client.aclose()

    try:
        asyncio.run(go())
    except (OSError, RedisError) as exc:
        raise click.ClickException(f"cannot reach Redis at {url}: {exc}") from exc


def with_platform(settings: Settings, action: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``action(platform)`` on the running platform's Redis (see :func:`redis_url_of`).

    The platform's errors that a user can act on (not found, refused, a
    descriptor's problems) end the command with their message, exit 1.
    """
    import dataclasses  # noqa: PLC0415

    from redis.exceptions import RedisError  # noqa: PLC0415

    from assure.platform import Platform, PlatformError  # noqa: PLC0415
    from bus.clock import WallClock  # noqa: PLC0415
    from mano_core.errors import ManoError  # noqa: PLC0415

    url = redis_url_of(settings)
    settings = dataclasses.replace(settings, redis=dataclasses.replace(settings.redis, url=url))

    async def go() -> None:
        platform = await Platform.open(settings, WallClock())
        try:
            await action(platform)
        finally:
            await platform.aclose()

    try:
        asyncio.run(go())
    except (ManoError, PlatformError) as exc:
        raise click.ClickException(str(exc)) from exc
    except (OSError, RedisError) as exc:
        raise click.ClickException(f"cannot reach Redis at {url}: {exc}") from exc
