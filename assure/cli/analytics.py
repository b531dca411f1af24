"""``nfv-assure analytics ...``: the detectors, offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from assure.cli.app import CONTEXT, main, settings_of
from assure.cli.history import duration, history_options, read_history, replay_options, when


@main.group(context_settings=CONTEXT)
def analytics() -> None:
    """Run the analytics stage's detectors on recorded KPI history."""


@analytics.command("replay", context_settings=CONTEXT)
@history_options
@replay_options
@click.pass_context
def replay_command(  # noqa: PLR0917 -- click passes one argument per option
    ctx: click.Context,
    data: Path | None,
    prometheus_url: str | None,
    start: str | None,
    end: str | None,
    step: str,
    policies: Path | None,
    vnfd: str | None,
    stale_after: str | None,
    as_json: bool,
) -> None:
    """Run recorded KPI history through the policies' conditions, as fast as the CPU allows.

    Prints every ONSET and ABATED with its timestamps and evidence. Rows
    that cannot be read are reported with their line numbers and skipped;
    the exit status is then 1 (2 when the history or the policies cannot
    be read at all).
    """
    from analytics.replay import replay  # noqa: PLC0415
    from bus.contracts import to_builtins  # noqa: PLC0415
    from policy.conditions import conditions_of  # noqa: PLC0415
    from policy.loader import load_policies  # noqa: PLC0415

    settings = settings_of(ctx)
    if (data is None) == (prometheus_url is None):
        raise click.UsageError("give --data FILE or --prometheus URL (one of them)")
    loaded = load_policies(policies or settings.policy.policy_dir)
    for problem in loaded.problems:
        click.echo(problem.format(), err=True)
    if loaded.problems:
        sys.exit(2)
    conditions = conditions_of(loaded.policies)
    stale_s = duration(stale_after) if stale_after else settings.analytics.stale_after
    history = read_history(
        data=data, prometheus_url=prometheus_url, start=start, end=end, step=step,
        vnfd=vnfd, kpis=(cond.series_kpi for cond in conditions),
        fail_status=2,
    )  # fmt: skip

    def show(event: Any) -> None:
        if as_json:
            return
        cause = f" (caused by {event.caused_by})" if event.caused_by else ""
        click.echo(
            f"{when(event.at)} {event.status.value:<6} {event.policy}/{event.condition} "
            f"{event.target.key()}: {event.evidence.description} "
            f"[since {when(event.started_at)}]{cause}"
        )

    result = replay(history.samples, conditions, stale_after_s=stale_s, on_event=show)
    for key in result.unjudged:
        click.echo(f"{key}: not judged: the history holds no sample of its KPI", err=True)
    if as_json:
        out = {
            "events": [to_builtins(event) for event in result.events],
            "samples": result.samples,
            "evaluations": result.evaluations,
            "unjudged": result.unjudged,
            "start": result.start,
            "end": result.end,
            "problems": [
                {"file": p.source, "line": p.line, "message": p.message} for p in history.problems
            ],
        }
        click.echo(json.dumps(out))
    else:
        span = (
            f" from {when(result.start)} to {when(result.end)}"
            if result.start is not None and result.end is not None
            else ""
        )
        click.echo(f"{len(result.events)} events from {result.samples} samples{span}", err=True)
    sys.exit(1 if history.problems else 0)
