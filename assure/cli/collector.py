"""``nfv-assure collector check URL``: scrape one exporter once, as the collector would."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from assure.cli.app import main
from collector.check import CheckReport, check_url


@main.group()
def collector() -> None:
    """The collector: check what it would take from an exporter."""


@collector.command()
@click.argument("url")
@click.option("--verbose", "-v", is_flag=True, help="List every sample and series.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for the answer.")
def check(url: str, verbose: bool, as_json: bool, timeout: float) -> None:
    """Scrape URL once and say how many samples and series the collector would take.

    Like 'promtool check metrics': each error is printed with its line
    number; the exit status is 0 only when the exposition is valid.
    """
    report = asyncio.run(check_url(url, timeout_s=timeout))
    if as_json:
        click.echo(json.dumps(_data(report, verbose), indent=2))
    else:
        _print(report, verbose)
    sys.exit(0 if report.valid else 1)


def _data(report: CheckReport, verbose: bool) -> dict[str, object]:
    data: dict[str, object] = {
        "url": report.source,
        "valid": report.valid,
        "format": "openmetrics" if report.openmetrics else "text",
        "samples": len(report.samples),
        "series": report.series,
        "errors": report.errors,
    }
    if verbose:
        data["sample_list"] = [
            {"line": s.line, "name": s.name, "labels": s.labels, "value": s.value, "kind": s.kind}
            for s in report.samples
        ]
    return data


def _print(report: CheckReport, verbose: bool) -> None:
    if verbose:
        for s in report.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            click.echo(f"{s.line:>6}  {s.name}{{{labels}}} {s.value!r}  ({s.kind})")
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    verdict = "valid" if report.valid else f"INVALID ({len(report.errors)} errors)"
    click.echo(
        f"{report.source}: {verdict}; {len(report.samples)} samples, {report.series} series "
        f"({'OpenMetrics' if report.openmetrics else 'text format'})"
    )
