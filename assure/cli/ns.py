"""``nfv-assure ns ...``: network service instances and their lifecycle, through the NFVO.

Each command opens the platform on its Redis (REDIS_URL, or the private
one of a running 'nfv-assure serve') and runs the NFVO there
(:class:`~mano_core.nfvo.lcm.NsLcm`); an operation runs in this process
until it ends, its member VNF operations under their leases, so a running
actuator never acts on a member meanwhile. An operation that does not end
COMPLETED, and any refused request, exit 1 with the reason.
"""

from __future__ import annotations

from typing import Any

import click

from assure.cli.app import CONTEXT, main, settings_of, with_platform

JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
NS = click.argument("ns_ref", metavar="NS")


@main.group(context_settings=CONTEXT)
def ns() -> None:
    """Network service instances: create one from an onboarded NSD, instantiate it
    (its VNFs placed across the VIMs by the NSD's rules), scale, heal, terminate.

    NS is an NS instance's id or name.
    """


def _labels(pairs: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--label")
        labels[key] = value
    return labels


def _encode(value: Any) -> str:
    import msgspec  # noqa: PLC0415

    return msgspec.json.encode(value).decode()


def _ns_lines(ns: Any) -> list[str]:
    levels = ", ".join(f"{a}={lvl}" for a, lvl in ns.scale_levels.items())
    lines = [
        f"{ns.name} ({ns.id}) nsd={ns.nsd_id}@{ns.nsd_version} {ns.state}"
        + (f" scale: {levels}" if levels else "")
    ]
    for vnf in ns.vnfs:
        lines.append(f"  vnf {vnf.name} ({vnf.vnf_id or 'not created'}) vim={vnf.vim}")
    for network in ns.networks:
        lines.append(f"  network {network.link} vim={network.vim} id={network.network_id}")
    return lines


def _op_line(ns_name: str, op: Any) -> str:
    error = f" error: {op.error}" if op.error else ""
    return f"{op.operation} {op.id} of NS {ns_name}: {op.state}{error}"


def _operate(ctx: click.Context, ns_ref: str, as_json: bool, call: Any) -> None:
    """Run ``call(nslcm, ns)`` (an NS operation), print where it ended; exit 1 unless COMPLETED."""
    ended: dict[str, Any] = {}

    async def go(platform: Any) -> None:
        ns = await platform.nslcm.get(ns_ref)
        op = await call(platform.nslcm, ns)
        ended["ns"] = await platform.nslcm.get(ns.id)
        ended["op"] = op

    with_platform(settings_of(ctx), go)
    ns, op = ended["ns"], ended["op"]
    if as_json:
        click.echo(_encode({"operation": op, "ns": ns}))
    else:
        click.echo(_op_line(ns.name, op))
        for line in _ns_lines(ns):
            click.echo(line)
    if op.state != "COMPLETED":
        ctx.exit(1)


@ns.command("create", context_settings=CONTEXT)
@click.argument("nsd_id", metavar="NSD")
@click.argument("name")
@click.option("--version", help="The NSD version (default: the latest onboarded).")
@click.option("--description", default="", help="What the NS instance is for.")
@click.option(
    "--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label of the NS, given to "
    "each of its VNFs (repeatable).",
)  # fmt: skip
@JSON
@click.pass_context
def ns_create(  # noqa: PLR0917 - click passes every option
    ctx: click.Context,
    nsd_id: str,
    name: str,
    version: str | None,
    description: str,
    labels: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create NS instance NAME of onboarded NSD (NOT_INSTANTIATED); prints its id."""
    chosen = _labels(labels)
    made: list[Any] = []

    async def go(platform: Any) -> None:
        made.append(
            await platform.nslcm.create(
                nsd_id, name, version=version, description=description, labels=chosen
            )
        )

    with_platform(settings_of(ctx), go)
    click.echo(_encode(made[0]) if as_json else f"created NS {name} ({made[0].id})")


@ns.command("instantiate", context_settings=CONTEXT)
@NS
@JSON
@click.pass_context
def ns_instantiate(ctx: click.Context, ns_ref: str, as_json: bool) -> None:
    """Place and instantiate every VNF of NS; if one fails, the whole NS is rolled back."""
    _operate(ctx, ns_ref, as_json, lambda nslcm, ns: nslcm.instantiate(ns.id))


@ns.command("scale", context_settings=CONTEXT)
@NS
@click.argument("aspect")
@click.argument("direction", type=click.Choice(["out", "in"]))
@click.option("--steps", default=1, show_default=True, type=click.IntRange(min=1))
@JSON
@click.pass_context
def ns_scale(  # noqa: PLR0917 - click passes every option
    ctx: click.Context, ns_ref: str, aspect: str, direction: str, steps: int, as_json: bool
) -> None:
    """Scale NS by STEPS of its NSD's scaling ASPECT, out or in (each member by its own aspect)."""
    _operate(ctx, ns_ref, as_json, lambda nslcm, ns: nslcm.scale(ns.id, aspect, direction, steps))


@ns.command("heal", context_settings=CONTEXT)
@NS
@click.option("--vnf", "vnfs", multiple=True, help="Only this member VNF (id or name; repeatable).")
@click.option("--vnfc", "vnfcs", multiple=True, help="Heal this VNFC (repeatable); default: "
              "every VNFC whose server the VIM sees unwell.")  # fmt: skip
@click.option(
    "--level",
    type=click.Choice(["soft_reboot", "hard_reboot", "rebuild", "recreate"]),
    help="One recovery level; default: up each VDU's ladder until one step heals it.",
)
@JSON
@click.pass_context
def ns_heal(  # noqa: PLR0917 - click passes every option
    ctx: click.Context,
    ns_ref: str,
    vnfs: tuple[str, ...],
    vnfcs: tuple[str, ...],
    level: str | None,
    as_json: bool,
) -> None:
    """Heal the member VNFCs of NS that need it (or those named)."""
    _operate(
        ctx,
        ns_ref,
        as_json,
        lambda nslcm, ns: nslcm.heal(
            ns.id, vnfs=list(vnfs) or None, vnfc_ids=list(vnfcs) or None, level=level
        ),
    )


@ns.command("terminate", context_settings=CONTEXT)
@NS
@click.option(
    "--graceful/--forceful",
    default=True,
    show_default=True,
    help="Run each VNFC's drain hook before its resources are released.",
)
@JSON
@click.pass_context
def ns_terminate(ctx: click.Context, ns_ref: str, graceful: bool, as_json: bool) -> None:
    """Terminate every VNF of NS (reverse dependency order), then its networks."""
    _operate(ctx, ns_ref, as_json, lambda nslcm, ns: nslcm.terminate(ns.id, graceful=graceful))


@ns.command("delete", context_settings=CONTEXT)
@NS
@click.pass_context
def ns_delete(ctx: click.Context, ns_ref: str) -> None:
    """Forget NS, which must be NOT_INSTANTIATED (terminate it first)."""

    async def go(platform: Any) -> None:
        await platform.nslcm.delete(ns_ref)

    with_platform(settings_of(ctx), go)
    click.echo(f"deleted NS {ns_ref}")


@ns.command("list", context_settings=CONTEXT)
@JSON
@click.pass_context
def ns_list(ctx: click.Context, as_json: bool) -> None:
    """List the NS instances: name, id, NSD, state, and their VNFs."""
    found: list[Any] = []

    async def go(platform: Any) -> None:
        found.extend(await platform.nslcm.list())

    with_platform(settings_of(ctx), go)
    if as_json:
        click.echo(_encode(found))
        return
    if not found:
        click.echo("no NS instances")
    for instance in found:
        for line in _ns_lines(instance):
            click.echo(line)


@ns.command("show", context_settings=CONTEXT)
@NS
@JSON
@click.pass_context
def ns_show(ctx: click.Context, ns_ref: str, as_json: bool) -> None:
    """Show NS: its VNFs and where they run, its networks, its recent operations."""
    found: list[Any] = []

    async def go(platform: Any) -> None:
        found.append(await platform.nslcm.get(ns_ref))

    with_platform(settings_of(ctx), go)
    instance = found[0]
    if as_json:
        click.echo(_encode(instance))
        return
    for line in _ns_lines(instance):
        click.echo(line)
    for op in instance.operations:
        click.echo("  " + _op_line(instance.name, op))
