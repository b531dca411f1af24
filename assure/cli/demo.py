"""``nfv-assure demo``: the closed loop end to end on the embedded defaults."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console

from assure.cli.app import CONTEXT, main, settings_of


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
    type=click.FloatRange(min=1.0, max=200.0),
    help="Scenario seconds per wall-clock second  [default: 20; 5 on OpenStack]",
)
@click.option(
    "--vim",
    "driver",
    type=click.Choice(["simulated", "openstack"]),
    help="Where the VNF runs: a simulated site, or the OpenStack cloud of clouds.yaml "
    "named by vim.cloud or OS_CLOUD  [default: the settings' vim.driver]",
)
@click.pass_context
def demo(  # noqa: PLR0917 - one parameter per option
    ctx: click.Context,
    seed: int,
    policies: Path | None,
    as_json: bool,
    speed: float | None,
    driver: str | None,
) -> None:
    """Run the closed loop end to end on the embedded defaults.

    Starts a private Redis, a simulated VIM with three hosts and one virtual
    firewall VNF whose VNFCs serve Prometheus metrics, then plays a scenario
    in accelerated time: a traffic surge (expects a scale-out), a VNFC crash
    (expects a heal), a degraded host (expects its VNFCs to be migrated) and
    a traffic drop (expects a scale-in). Prints live progress and a summary;
    exits 1 when an expected action did not happen.

    With --vim openstack the firewall runs on a real OpenStack (an
    administrator's cloud: vim.cloud or OS_CLOUD, with vim.networks giving
    addresses this machine can bind, as the OpenStack tier's nfva-net does)
    and the balancer on a simulated site: the crash is the firewall's server
    stopped and the degraded host its compute service forced down, both
    through openstacksdk behind the platform's back; at the end the NS is
    terminated, nothing of it may be left, and the host is brought back.
    """
    from assure.demo.plan import make_plan  # noqa: PLC0415 - keeps --help fast
    from assure.demo.progress import Progress  # noqa: PLC0415
    from assure.demo.runner import DemoRunner  # noqa: PLC0415
    from assure.demo.worlds import DEFAULT_SPEEDS, demo_settings  # noqa: PLC0415
    from assure.platform import PlatformError  # noqa: PLC0415

    try:
        settings, firewall_vim = demo_settings(settings_of(ctx), driver, os.environ)
    except PlatformError as exc:
        raise click.ClickException(str(exc)) from exc
    speed = DEFAULT_SPEEDS[driver or settings_of(ctx).vim.driver] if speed is None else speed
    stream = sys.stderr if as_json else sys.stdout
    # Piped output (CI logs, files) has no terminal width: 120 columns, not 80.
    width = None if stream.isatty() else 120
    console = Console(file=stream, highlight=False, soft_wrap=True, width=width)
    plan = make_plan(seed)
    runner = DemoRunner(
        settings,
        plan,
        Progress(console),
        speed=speed,
        policies=policies,
        firewall_vim=firewall_vim,
    )
    try:
        report = asyncio.run(runner.run())
    except PlatformError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        console.print()
        report.render(console)
    ctx.exit(0 if report.ok else 1)
