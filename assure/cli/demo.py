"""``nfv-assure demo``: the closed loop end to end on the embedded defaults."""

from __future__ import annotations

import asyncio
import json
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

    settings = settings_of(ctx)
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
