"""``nfv-assure nsd ...``: NS descriptors and the catalogue."""

from __future__ import annotations

from pathlib import Path

import click

from assure.cli.app import CONTEXT, main, settings_of

JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
VERSION = click.option("--version", "version", help="One version (default: the latest).")


@main.group(context_settings=CONTEXT)
def nsd() -> None:
    """Work with NS descriptors (apiVersion assure/v1, kind Nsd; see docs/nsd.md)."""


@nsd.command("validate", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@JSON
def nsd_validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Check NSD FILES on their own; exit 1 and one line per problem when any is invalid.

    Lines read FILE:LINE: PLACE: PROBLEM. Onboarding checks more (the member VNFDs, the VIMs).
    """
    from assure.cli.descriptors import validate  # noqa: PLC0415

    validate("nsd", files, as_json)


@nsd.command("onboard", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@JSON
@click.pass_context
def nsd_onboard(ctx: click.Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Validate NSD FILES and store them in the catalogue, every version kept.

    A file with any problem (schema, references within it or to its members'
    VNFDs, dependency cycles, placement rules no VIM set can meet) is refused
    whole and its problems printed; exit 1.
    """
    from assure.cli.descriptors import onboard  # noqa: PLC0415

    onboard(settings_of(ctx), "nsd", files, as_json)


@nsd.command("list", context_settings=CONTEXT)
@JSON
@click.option("--all-versions", is_flag=True, help="Every version, not only the latest.")
@click.pass_context
def nsd_list(ctx: click.Context, as_json: bool, all_versions: bool) -> None:
    """List onboarded NSDs: id, version, name."""
    from assure.cli.descriptors import list_entries  # noqa: PLC0415

    list_entries(settings_of(ctx), "nsd", as_json, all_versions)


@nsd.command("show", context_settings=CONTEXT)
@click.argument("name")
@VERSION
@JSON
@click.pass_context
def nsd_show(ctx: click.Context, name: str, version: str | None, as_json: bool) -> None:
    """Show NSD NAME: its versions and its YAML."""
    from assure.cli.descriptors import show  # noqa: PLC0415

    show(settings_of(ctx), "nsd", name, version, as_json)


@nsd.command("delete", context_settings=CONTEXT)
@click.argument("name")
@click.option("--version", "version", help="Only this version (default: every version).")
@click.pass_context
def nsd_delete(ctx: click.Context, name: str, version: str | None) -> None:
    """Delete NSD NAME from the catalogue; refused while an NS instance uses it."""
    from assure.cli.descriptors import delete  # noqa: PLC0415

    delete(settings_of(ctx), "nsd", name, version)
