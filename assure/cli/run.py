"""``nfv-assure run``: the platform's stages until interrupted."""

from __future__ import annotations

import asyncio
import signal

import click

from assure.cli.app import CONTEXT, main, settings_of


@main.command(context_settings=CONTEXT)
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(["collector", "analytics", "policy", "actuator", "api"]),
    help="Run only this role (repeat for several). Default: the four stages in this "
    "process; 'api' is the REST API (api.host:api.port).",
)
@click.pass_context
def run(ctx: click.Context, roles: tuple[str, ...]) -> None:
    """Run the platform's stages until interrupted (SIGINT or SIGTERM).

    Roles can run in separate processes: they share nothing but Redis (the
    simulated VIMs included).
    """
    from assure.platform import ROLES, Platform, PlatformError  # noqa: PLC0415
    from bus.clock import WallClock  # noqa: PLC0415

    settings = settings_of(ctx)
    chosen = list(roles) or list(ROLES)

    async def serve() -> None:
        platform = await Platform.open(settings, WallClock())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await platform.onboard_dir(settings.policy.vnfd_dir)
            loaded = platform.load_policies()
            for problem in loaded.problems:
                click.echo(f"policy skipped: {problem.format()}", err=True)
            click.echo(f"running {', '.join(chosen)}; Ctrl-C stops", err=True)
            await platform.run_roles(chosen, stop, loaded)
        finally:
            await platform.aclose()

    try:
        asyncio.run(serve())
    except PlatformError as exc:
        raise click.ClickException(str(exc)) from exc
