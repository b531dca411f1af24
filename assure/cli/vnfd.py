"""``nfv-assure vnfd ...``: VNF descriptors and the catalogue."""

from __future__ import annotations

from pathlib import Path

import click

from assure.cli.app import CONTEXT, main, settings_of

JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
VERSION = click.option("--version", "version", help="One version (default: the latest).")


@main.group(context_settings=CONTEXT)
def vnfd() -> None:
    """Work with VNF descriptors (apiVersion assure/v1, kind Vnfd; see docs/vnfd.md)."""


@vnfd.command("validate", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@JSON
def vnfd_validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Check VNFD FILES on their own; exit 1 and one line per problem when any is invalid.

    Lines read FILE:LINE: PLACE: PROBLEM. Onboarding checks more (the VIMs' hosts).
    """
    from assure.cli.descriptors import validate  # noqa: PLC0415

    validate("vnfd", files, as_json)


@vnfd.command("onboard", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@JSON
@click.pass_context
def vnfd_onboard(ctx: click.Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Validate VNFD FILES and store them in the catalogue, every version kept.

    A file with any problem (schema, references, bounds, a flavour no host of
    any VIM can take) is refused whole and its problems printed; exit 1.
    """
    from assure.cli.descriptors import onboard  # noqa: PLC0415

    onboard(settings_of(ctx), "vnfd", files, as_json)


@vnfd.command("list", context_settings=CONTEXT)
@JSON
@click.option("--all-versions", is_flag=True, help="Every version, not only the latest.")
@click.pass_context
def vnfd_list(ctx: click.Context, as_json: bool, all_versions: bool) -> None:
    """List onboarded VNFDs: id, version, acceptance state, name."""
    from assure.cli.descriptors import list_entries  # noqa: PLC0415

    list_entries(settings_of(ctx), "vnfd", as_json, all_versions)


@vnfd.command("show", context_settings=CONTEXT)
@click.argument("name")
@VERSION
@JSON
@click.pass_context
def vnfd_show(ctx: click.Context, name: str, version: str | None, as_json: bool) -> None:
    """Show VNFD NAME: its versions, acceptance (measured KPIs, reasons) and its YAML."""
    from assure.cli.descriptors import show  # noqa: PLC0415

    show(settings_of(ctx), "vnfd", name, version, as_json)


@vnfd.command("delete", context_settings=CONTEXT)
@click.argument("name")
@click.option("--version", "version", help="Only this version (default: every version).")
@click.pass_context
def vnfd_delete(ctx: click.Context, name: str, version: str | None) -> None:
    """Delete VNFD NAME from the catalogue; refused while a VNF instance or an NSD uses it."""
    from assure.cli.descriptors import delete  # noqa: PLC0415

    delete(settings_of(ctx), "vnfd", name, version)


@vnfd.command("accept", context_settings=CONTEXT)
@click.argument("name")
@VERSION
@click.option(
    "--speed",
    type=click.FloatRange(min=1.0),
    default=50.0,
    show_default=True,
    help="Sandbox seconds per wall second.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the workload's noise.")
@JSON
@click.pass_context
def vnfd_accept(  # noqa: PLR0917 -- click passes one argument per option
    ctx: click.Context, name: str, version: str | None, speed: float, seed: int, as_json: bool
) -> None:
    """Run onboarding acceptance of VNFD NAME and record the verdict in the catalogue.

    Instantiates it on a sandbox (a simulated VIM of its own, sized like a
    site, in accelerated time), offers it the traffic of its load_profile,
    judges its monitoring parameters against their objectives, terminates
    it. The entry becomes 'validated' with the measured KPIs (exit 0), or
    'rejected' with the reasons (exit 1).
    """
    import json  # noqa: PLC0415
    import sys  # noqa: PLC0415
    from typing import Any  # noqa: PLC0415

    from assure.acceptance import Acceptance, AcceptanceReport  # noqa: PLC0415
    from assure.cli.app import with_platform  # noqa: PLC0415

    settings = settings_of(ctx)
    reports: list[AcceptanceReport] = []

    async def go(platform: Any) -> None:
        acceptance = Acceptance(
            platform.redis,
            platform.keys,
            platform.catalogue,
            settings,
            speed=speed,
            seed=seed,
            progress=lambda line: click.echo(line, err=True),
        )
        reports.append(await acceptance.run(name, version))

    with_platform(settings, go)
    [report] = reports
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        verdict = "validated" if report.validated else "rejected"
        click.echo(f"VNFD {report.vnfd} version {report.version}: {verdict}")
        for kpi, value in report.measured.items():
            click.echo(f"  measured {kpi}: {value:g}")
        for reason in report.reasons:
            click.echo(f"  reason: {reason}")
    sys.exit(0 if report.validated else 1)
