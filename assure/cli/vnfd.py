"""``nfv-assure vnfd ...``: VNF descriptors and the catalogue."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from assure.cli.app import CONTEXT, main, settings_of, with_redis


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
            for problem in exc.problems:
                click.echo(problem.format())
    sys.exit(1 if bad else 0)


@vnfd.command("onboard", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def vnfd_onboard(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Validate VNFD FILES and store them in the catalogue (needs REDIS_URL)."""
    from mano_core.vnfd import DescriptorError, load_vnfd  # noqa: PLC0415

    settings = settings_of(ctx)
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

    with_redis(settings, onboard)
