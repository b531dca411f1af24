"""``nfv-assure policy backtest``: what the policies would have decided on recorded history."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assure.cli.app import CONTEXT, settings_of
from assure.cli.history import duration, history_options, read_history, replay_options, when
from assure.cli.policy import policy

if TYPE_CHECKING:
    from bus.contracts import Decision
    from mano_core.vnfd import Vnfd


@policy.command("backtest", context_settings=CONTEXT)
@history_options
@replay_options
@click.option(
    "--vnfds",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the VNFDs the policies act on [default: the configured vnfd_dir].",
)
@click.pass_context
def backtest_command(  # noqa: PLR0917 -- click passes one argument per option
    ctx: click.Context,
    data: Path | None,
    prometheus_url: str | None,
    start: str | None,
    end: str | None,
    step: str,
    vnfd: str | None,
    policies: Path | None,
    vnfds: Path | None,
    stale_after: str | None,
    as_json: bool,
) -> None:
    """Replay recorded KPI history through the detectors and the policies, touching no VIM.

    Prints every decision the policies would have taken, at the history's
    timestamps, with the verdict of each guard. Guards count time on those
    timestamps; every approved operation completes at once and its effect
    on the KPIs is left out (a scale changes the VNFC count only). Bad
    input (an unreadable history, policy or VNFD file, a row that cannot
    be read) is reported with its place, and the exit status is 1.
    """
    from analytics.replay import replay  # noqa: PLC0415
    from policy.backtest import backtest  # noqa: PLC0415
    from policy.conditions import conditions_of  # noqa: PLC0415
    from policy.loader import load_policies  # noqa: PLC0415

    settings = settings_of(ctx)
    loaded = load_policies(policies or settings.policy.policy_dir)
    for problem in loaded.problems:
        click.echo(problem.format(), err=True)
    descriptors = _vnfds(vnfds or settings.policy.vnfd_dir)
    if loaded.problems or descriptors is None:
        sys.exit(1)
    conditions = conditions_of(loaded.policies)
    stale_s = duration(stale_after) if stale_after else settings.analytics.stale_after
    history = read_history(
        data=data, prometheus_url=prometheus_url, start=start, end=end, step=step,
        vnfd=vnfd, kpis=(cond.series_kpi for cond in conditions),
        fail_status=1,
    )  # fmt: skip
    events = replay(history.samples, conditions, stale_after_s=stale_s).events
    result = asyncio.run(
        backtest(
            history.samples,
            events,
            loaded.policies,
            descriptors,
            max_concurrent=settings.policy.max_concurrent,
            max_concurrent_per_host=settings.policy.max_concurrent_per_host,
        )
    )
    if as_json:
        from bus.contracts import to_builtins  # noqa: PLC0415

        out = {
            "decisions": [to_builtins(d) for d in result.decisions],
            "episodes": [_episode(e) for e in result.episodes],
            "events": result.events,
            "samples": len(history.samples),
            "start": result.start,
            "end": result.end,
            "problems": [
                {"file": p.source, "line": p.line, "message": p.message} for p in history.problems
            ],
        }
        click.echo(json.dumps(out))
    else:
        for decision in result.decisions:
            _show(decision)
        span = (
            f" from {when(result.start)} to {when(result.end)}"
            if result.start is not None and result.end is not None
            else ""
        )
        approved = sum(d.approved for d in result.decisions)
        click.echo(
            f"{len(result.decisions)} decisions ({approved} approved) from {result.events} "
            f"events of {len(history.samples)} samples{span}",
            err=True,
        )
    sys.exit(1 if history.problems else 0)


def _vnfds(directory: Path) -> list[Vnfd] | None:
    """Every VNFD of ``directory`` (``*.yaml``); None, with each problem printed, when one
    does not load."""
    from mano_core.descriptor import DescriptorError  # noqa: PLC0415
    from mano_core.vnfd import load_vnfd  # noqa: PLC0415

    if not directory.is_dir():
        click.echo(f"{directory}: not a directory of VNFDs", err=True)
        return None
    loaded, ok = [], True
    for path in sorted(directory.glob("*.yaml")):
        try:
            loaded.append(load_vnfd(path))
        except DescriptorError as exc:
            click.echo(str(exc), err=True)
            ok = False
    return loaded if ok else None


def _show(decision: Decision) -> None:
    verdict = decision.verdict or ("approved" if decision.approved else "denied")
    click.echo(
        f"{when(decision.decided_at)} {verdict:<17} {decision.action.value} "
        f"{decision.target.key()}: {decision.reason}"
    )
    for guard in decision.guards:
        mark = "pass" if guard.passed else "FAIL"
        click.echo(f"    {mark} {guard.guard}: {guard.detail}")


def _episode(episode: Any) -> dict[str, Any]:
    return {
        "id": episode.id,
        "policy": episode.policy,
        "target": episode.target.key(),
        "opened_at": episode.opened_at,
        "closed_at": episode.closed_at,
        "result": episode.result,
        "detail": episode.detail,
        "decisions": [s.decision_id for s in episode.steps],
    }
