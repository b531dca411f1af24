"""The ``nfv-assure`` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from assure.settings import Settings, SettingsError, load_settings

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
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
@click.version_option(package_name="nfv-assure")
@click.pass_context
def main(ctx: click.Context, config: Path | None, log_level: str | None) -> None:
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
    if config is None and Path("assure.yaml").is_file():
        config = Path("assure.yaml")
    try:
        ctx.obj = load_settings(config, os.environ)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


# --------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.option(
    "--seed",
    default=1,
    show_default=True,
    type=int,
    help="Varies the faults' timings, the traffic and the noise.",
)
@click.option(
    "--policies",
    type=click.Path(exists=True, path_type=Path),
    help="Directory (or file) of KPI policies to use instead of the shipped examples.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print only one JSON object on stdout; progress goes to stderr.",
)
@click.option(
    "--speed",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=1.0, max=200.0),
    help="Scenario seconds per wall-clock second.",
)
@click.pass_context
def demo(ctx: click.Context, seed: int, policies: Path | None, as_json: bool, speed: float) -> None:
    """Run the closed loop end to end on the embedded defaults.

    Starts a private Redis, a simulated VIM with three hosts and one virtual
    firewall VNF whose VNFCs serve Prometheus metrics, then plays a scenario
    in accelerated time: a traffic surge (expects a scale-out), a VNFC crash
    (expects a heal), a degraded host (expects its VNFCs to be migrated) and
    a traffic drop (expects a scale-in). Prints live progress and a summary;
    exits 1 when an expected action did not happen.
    """
    from assure.demo.plan import make_plan  # noqa: PLC0415 - keeps --help fast
    from assure.demo.progress import Progress  # noqa: PLC0415
    from assure.demo.runner import DemoRunner  # noqa: PLC0415

    settings = _settings(ctx)
    stream = sys.stderr if as_json else sys.stdout
    # Piped output (CI logs, files) has no terminal width: 120 columns, not 80.
    width = None if stream.isatty() else 120
    console = Console(file=stream, highlight=False, soft_wrap=True, width=width)
    plan = make_plan(seed)
    runner = DemoRunner(settings, plan, Progress(console), speed=speed, policies=policies)
    report = asyncio.run(runner.run())
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        console.print()
        report.render(console)
    ctx.exit(0 if report.ok else 1)


# --------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(["collector", "analytics", "policy", "actuator"]),
    help="Run only this stage (repeat for several). Default: all stages in this process.",
)
@click.pass_context
def run(ctx: click.Context, roles: tuple[str, ...]) -> None:
    """Run the platform's stages until interrupted (SIGINT or SIGTERM).

    With the simulated VIM the collector and the actuator must run in the
    same process as the simulator; analytics and policy can run anywhere
    that reaches the same Redis.
    """
    from assure.platform import ROLES, Platform, PlatformError  # noqa: PLC0415
    from bus.clock import WallClock  # noqa: PLC0415

    settings = _settings(ctx)
    chosen = list(roles) or list(ROLES)
    if settings.vim.driver == "simulated" and len({"collector", "actuator"} & set(chosen)) == 1:
        raise click.UsageError(
            "with the simulated VIM, --role collector and --role actuator must run together"
        )

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


# --------------------------------------------------------------------------
@main.group(context_settings=CONTEXT)
def policy() -> None:
    """Work with KPI policy files (apiVersion assure/v1, kind KpiPolicy)."""


@policy.command("validate", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the problems as a JSON list.")
def policy_validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Check policy FILES (or directories of *.yaml); exit 0 when all are valid.

    Otherwise exit 1 and print one line per problem: FILE:LINE: PLACE: PROBLEM.
    """
    from policy.loader import validate_files  # noqa: PLC0415

    problems = validate_files(list(files))
    if as_json:
        click.echo(json.dumps([p.to_json() for p in problems]))
    else:
        for problem in problems:
            click.echo(problem.format())
        if not problems:
            click.echo(f"{len(files)} path(s) valid", err=True)
    sys.exit(1 if problems else 0)


# --------------------------------------------------------------------------
@main.group(context_settings=CONTEXT)
def vnfd() -> None:
    """Work with VNF descriptors (apiVersion assure/v1, kind Vnfd)."""


@vnfd.command("validate", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def vnfd_validate(files: tuple[Path, ...]) -> None:
    """Check VNFD FILES; exit 1 and one line per problem when any is invalid."""
    from mano_core.vnfd import DescriptorError, load_vnfd  # noqa: PLC0415

    bad = False
    for path in files:
        try:
            load_vnfd(path)
        except DescriptorError as exc:
            bad = True
            for place, problem in exc.problems:
                click.echo(f"{exc.source}: {place}: {problem}")
    sys.exit(1 if bad else 0)


@vnfd.command("onboard", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def vnfd_onboard(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Validate VNFD FILES and store them in the catalogue (needs REDIS_URL)."""
    from mano_core.vnfd import DescriptorError, load_vnfd  # noqa: PLC0415

    settings = _settings(ctx)
    try:
        vnfds = [load_vnfd(p) for p in files]
    except DescriptorError as exc:
        raise click.ClickException(str(exc)) from exc

    async def onboard(client: Any, keys: Any) -> None:
        from mano_core.catalogue import Catalogue  # noqa: PLC0415

        catalogue = Catalogue(client, keys)
        for descriptor in vnfds:
            await catalogue.onboard(descriptor)
            click.echo(f"onboarded {descriptor.id} ({descriptor.name or 'unnamed'})")

    _with_redis(settings, onboard)


# --------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the VNF instances and their VNFCs (needs REDIS_URL)."""
    import msgspec  # noqa: PLC0415

    settings = _settings(ctx)

    async def show(client: Any, keys: Any) -> None:
        from mano_core.inventory import Inventory  # noqa: PLC0415

        vnfs = await Inventory(client, keys).list()
        if as_json:
            click.echo(msgspec.json.encode(vnfs).decode())
            return
        if not vnfs:
            click.echo("no VNF instances")
        for vnf in vnfs:
            levels = ", ".join(f"{a}={lvl}" for a, lvl in vnf.scale_levels.items())
            click.echo(f"{vnf.name} ({vnf.id}) vnfd={vnf.vnfd_id} {vnf.state} scale: {levels}")
            for c in vnf.vnfcs:
                click.echo(f"  {c.id} vdu={c.vdu} host={c.host} address={c.address}")

    _with_redis(settings, show)


@main.command(context_settings=CONTEXT)
@click.option("--vnf", "vnf_id", help="Only this VNF instance's operations.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def ops(ctx: click.Context, vnf_id: str | None, limit: int, as_json: bool) -> None:
    """List recent LCM operation occurrences, newest first (needs REDIS_URL)."""
    import msgspec  # noqa: PLC0415

    settings = _settings(ctx)

    async def show(client: Any, keys: Any) -> None:
        from bus.clock import WallClock  # noqa: PLC0415
        from mano_core.lcm import OpOccStore  # noqa: PLC0415

        occurrences = await OpOccStore(client, keys, WallClock()).list(vnf_id, limit=limit)
        if as_json:
            click.echo(msgspec.json.encode(occurrences).decode())
            return
        for op in occurrences:
            error = f" error: {op.error}" if op.error else ""
            click.echo(f"{op.id} {op.operation} vnf={op.vnf_id} {op.state}{error}")

    _with_redis(settings, show)


def _with_redis(settings: Settings, action: Any) -> None:
    """Run ``action(client, keys)`` against the configured Redis (REDIS_URL required)."""
    from redis.exceptions import RedisError  # noqa: PLC0415

    from bus.keys import Keys  # noqa: PLC0415
    from bus.redis import connect  # noqa: PLC0415

    if settings.redis.url is None:
        raise click.UsageError(
            "this command reads a running platform's state: set REDIS_URL "
            "(or redis.url in the settings file)"
        )
    url = settings.redis.url

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
