"""What ``nfv-assure vnfd`` and ``nfv-assure nsd`` share: validate, onboard, list, show, delete.

Problems of a descriptor are printed one per line, ``FILE:LINE: PLACE:
PROBLEM`` (or as a JSON list with ``--json``), and the command exits 1
having stored nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import msgspec

from assure.cli.app import with_platform
from assure.settings import Settings
from bus.problems import Problem
from mano_core.catalogue import CatalogueEntry, Kind
from mano_core.descriptor import DescriptorError, read_text


def report_problems(problems: Sequence[Problem], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([p.to_json() for p in problems]))
    else:
        for problem in problems:
            click.echo(problem.format())


def validate(kind: Kind, files: Sequence[Path], as_json: bool) -> None:
    """Check descriptor files on their own (no catalogue, no VIM); exit 1 on any problem."""
    from mano_core.nsd_checks import parse_located_nsd  # noqa: PLC0415
    from mano_core.vnfd_checks import parse_located_vnfd  # noqa: PLC0415

    parse = parse_located_vnfd if kind == "vnfd" else parse_located_nsd
    problems: list[Problem] = []
    for path in files:
        try:
            parse(read_text(path), str(path))
        except DescriptorError as exc:
            problems.extend(exc.problems)
    report_problems(problems, as_json)
    if not problems and not as_json:
        click.echo(f"{len(files)} file(s) valid", err=True)
    sys.exit(1 if problems else 0)


def onboard(settings: Settings, kind: Kind, files: Sequence[Path], as_json: bool) -> None:
    """Onboard each file; every problem of every file is printed; exit 1 if any was refused."""
    problems: list[Problem] = []
    done: list[CatalogueEntry] = []

    async def go(platform: Any) -> None:
        for path in files:
            try:
                text = read_text(path)
                if kind == "vnfd":
                    entry = await platform.onboarding.vnfd(text, str(path))
                    await platform.publish_images(
                        await platform.catalogue.get(entry.id, entry.version)
                    )
                else:
                    entry = await platform.onboarding.nsd(text, str(path))
            except DescriptorError as exc:
                problems.extend(exc.problems)
                continue
            done.append(entry)

    with_platform(settings, go)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "onboarded": [_summary(e) for e in done],
                    "problems": [p.to_json() for p in problems],
                }
            )
        )
    else:
        for entry in done:
            click.echo(f"onboarded {kind.upper()} {entry.id} version {entry.version}")
        report_problems(problems, False)
    sys.exit(1 if problems else 0)


def list_entries(settings: Settings, kind: Kind, as_json: bool, all_versions: bool) -> None:
    async def go(platform: Any) -> None:
        catalogue = platform.catalogue
        entries = await (catalogue.entries(kind) if all_versions else catalogue.latest(kind))
        if as_json:
            click.echo(json.dumps([_summary(e) for e in entries]))
            return
        if not entries:
            click.echo(f"no {kind.upper()} onboarded")
        for e in entries:
            click.echo(f"{e.id} {e.version} {e.acceptance} {_name(e)}")

    with_platform(settings, go)


def show(settings: Settings, kind: Kind, item_id: str, version: str | None, as_json: bool) -> None:
    async def go(platform: Any) -> None:
        entry = await platform.catalogue.entry(kind, item_id, version)
        versions = [e.version for e in await platform.catalogue.entries(kind, item_id)]
        if as_json:
            data = {
                **_summary(entry),
                "versions": versions,
                "descriptor": json.loads(entry.descriptor),
            }
            click.echo(json.dumps(data))
            return
        click.echo(f"{kind.upper()} {entry.id} version {entry.version} ({_name(entry)})")
        click.echo(f"versions onboarded: {', '.join(versions)}")
        click.echo(f"acceptance: {entry.acceptance}")
        for kpi, value in entry.measured.items():
            click.echo(f"  measured {kpi}: {value:g}")
        for reason in entry.reasons:
            click.echo(f"  reason: {reason}")
        click.echo("---")
        click.echo(entry.source.rstrip() or entry.descriptor)

    with_platform(settings, go)


def delete(settings: Settings, kind: Kind, item_id: str, version: str | None) -> None:
    async def go(platform: Any) -> None:
        await platform.onboarding.delete(kind, item_id, version)
        which = f"version {version}" if version is not None else "every version"
        click.echo(f"deleted {which} of {kind.upper()} {item_id}")

    with_platform(settings, go)


def _name(entry: CatalogueEntry) -> str:
    name = json.loads(entry.descriptor).get("name") or ""
    return str(name) or "unnamed"


def _summary(entry: CatalogueEntry) -> dict[str, Any]:
    data = msgspec.to_builtins(entry)
    assert isinstance(data, dict)
    data.pop("descriptor")
    data.pop("source")
    data["name"] = _name(entry)
    return data
