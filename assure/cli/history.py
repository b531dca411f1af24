"""Recorded KPI history for the offline commands (``analytics replay``, ``policy backtest``).

One set of options (``--data FILE`` or ``--prometheus URL --from T --to T``)
and one reader, so both commands read the same history the same way.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from analytics.history import History

F = Callable[..., Any]


def history_options(command: F) -> F:
    """The options naming the history: a CSV or a range query of a Prometheus."""
    options = [
        click.option(
            "--data",
            type=click.Path(dir_okay=False, path_type=Path),
            help=(
                "KPI history CSV: timestamp,vnf,vnfc,kpi,value[,host][,vnfd][,ns][,label...]; "
                "ns names the NS instance of the row's VNF (for conditions of scope ns)."
            ),
        ),
        click.option("--prometheus", "prometheus_url", help="Read a range query of a Prometheus."),
        click.option("--from", "start", help="Prometheus: start (ISO 8601 or Unix seconds)."),
        click.option("--to", "end", help="Prometheus: end (ISO 8601 or Unix seconds)."),
        click.option("--step", default="15s", show_default=True, help="Prometheus: query step."),
        click.option("--vnfd", help="The VNFD of rows (or series) that name none."),
    ]
    return _apply(command, options)


def replay_options(command: F) -> F:
    """What the offline commands run the history through, and how they print it."""
    options = [
        click.option(
            "--policies",
            type=click.Path(path_type=Path),
            help="Policy files or a directory of them [default: the configured policy_dir].",
        ),
        click.option(
            "--stale-after",
            help=(
                "A series silent this long is unknown [default: the analytics.stale_after setting]."
            ),
        ),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout."),
    ]
    return _apply(command, options)


def _apply(command: F, options: list[Any]) -> F:
    for option in reversed(options):
        command = option(command)
    return command


def when(ts: float) -> str:
    """A timestamp as ISO 8601 UTC with a Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def duration(text: str) -> float:
    """A duration option (``15s``, ``5m``), or a usage error naming the problem."""
    from bus.units import parse_duration  # noqa: PLC0415

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def read_history(
    *,
    data: Path | None,
    prometheus_url: str | None,
    start: str | None,
    end: str | None,
    step: str,
    vnfd: str | None,
    kpis: Iterable[str],
    fail_status: int,
) -> History:
    """The history the options name, its unreadable rows reported on stderr.

    A history that cannot be read at all is reported and exits ``fail_status``;
    options that name none are a usage error.
    """
    from analytics.history import HistoryError, parse_timestamp, read_csv  # noqa: PLC0415
    from analytics.prometheus import PrometheusError, fetch_history  # noqa: PLC0415

    if (data is None) == (prometheus_url is None):
        raise click.UsageError("give --data FILE or --prometheus URL (one of them)")
    if data is None and (start is None or end is None):
        raise click.UsageError("--prometheus needs --from and --to")
    try:
        if data is not None:
            history = read_csv(data, vnfd=vnfd)
        else:
            assert prometheus_url is not None and start is not None and end is not None
            try:
                t0, t1 = parse_timestamp(start), parse_timestamp(end)
            except ValueError as exc:
                raise click.BadParameter(str(exc)) from exc
            history = asyncio.run(
                fetch_history(
                    prometheus_url, set(kpis), start=t0, end=t1, step_s=duration(step), vnfd=vnfd
                )
            )
    except (HistoryError, PrometheusError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(fail_status)
    for row in history.problems:
        click.echo(row.format(), err=True)
    return history
