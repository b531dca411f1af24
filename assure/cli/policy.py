"""``nfv-assure policy ...``: KPI policy files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from assure.cli.app import CONTEXT, main


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
