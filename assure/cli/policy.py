"""``nfv-assure policy ...``: KPI policy files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from assure.cli.app import CONTEXT, main

if TYPE_CHECKING:
    from policy.schema_chain import Mode


@main.group(context_settings=CONTEXT)
def policy() -> None:
    """Work with KPI policy files (apiVersion assure/v1, kind KpiPolicy)."""


@policy.command("validate", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the problems as a JSON list.")
def policy_validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Check policy FILES (or directories of *.yaml); exit 0 when all are valid.

    Otherwise exit 1 and print one line per problem:

    \b
    FILE:LINE:COL: PLACE: PROBLEM
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


@policy.command("mode", context_settings=CONTEXT)
@click.argument("name")
@click.argument("mode", type=click.Choice(["enforce", "approve", "dry_run", "disabled", "default"]))
@click.pass_context
def policy_mode(ctx: click.Context, name: str, mode: str) -> None:
    """Set the mode of policy NAME on every policy worker, over its file's (needs REDIS_URL).

    'default' goes back to the mode the policy file says.
    """
    from typing import Any  # noqa: PLC0415

    from assure.cli.app import settings_of, with_redis  # noqa: PLC0415

    async def go(client: Any, keys: Any) -> None:
        from bus.clock import WallClock  # noqa: PLC0415
        from policy.control import LoopControl  # noqa: PLC0415

        control = LoopControl(client, keys, WallClock())
        if mode == "default":
            await control.set_mode(name, None)
            click.echo(f"policy {name}: the mode its file says")
            return
        await control.set_mode(name, _MODES[mode])
        click.echo(f"policy {name}: {mode}")

    with_redis(settings_of(ctx), go)


_MODES: dict[str, Mode] = {"enforce": "enforce", "approve": "approve", "dry_run": "dry_run",
                           "disabled": "disabled"}  # fmt: skip


@policy.command("status", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def policy_status(ctx: click.Context, as_json: bool) -> None:
    """The policies in force on the policy workers, and the files kept at their previous
    version because their new content does not load (needs REDIS_URL)."""
    from typing import Any  # noqa: PLC0415

    from assure.cli.app import settings_of, with_redis  # noqa: PLC0415

    async def go(client: Any, keys: Any) -> None:
        raw = await client.hgetall(keys.policy_status())
        status = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }
        if not status:
            raise click.ClickException("no policy worker has reported yet")
        policies, problems = json.loads(status["policies"]), json.loads(status["problems"])
        if as_json:
            click.echo(json.dumps({**status, "policies": policies, "problems": problems}))
            return
        click.echo(f"in force (version {status['version']}): {', '.join(policies) or 'none'}")
        for problem in problems:
            click.echo(f"kept at its previous version: {problem}")

    with_redis(settings_of(ctx), go)
