"""``nfv-assure status`` and ``nfv-assure ops``: what a running platform holds.

Both read Redis, or with ``--server URL`` the server's SOL003 resources.
"""

from __future__ import annotations

import json
from typing import Any

import click

from assure.cli.app import CONTEXT, main, settings_of, with_redis
from assure.cli.server_client import get_json, server_of


@main.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the VNF instances and their VNFCs (REDIS_URL, or --server)."""
    import msgspec  # noqa: PLC0415

    settings = settings_of(ctx)
    server = server_of(ctx)
    if server is not None:
        instances = get_json(server, "/vnflcm/v2/vnf_instances")
        if as_json:
            click.echo(json.dumps(instances))
            return
        if not instances:
            click.echo("no VNF instances")
        for vnf in instances:
            info = vnf.get("instantiatedVnfInfo") or {}
            levels = ", ".join(
                f"{s['aspectId']}={s['scaleLevel']}" for s in info.get("scaleStatus", [])
            )
            click.echo(f"{vnf['vnfInstanceName']} ({vnf['id']}) vnfd={vnf['vnfdId']} "
                       f"{vnf['instantiationState']} scale: {levels}")  # fmt: skip
            for c in info.get("vnfcResourceInfo", []):
                meta = c.get("metadata", {})
                click.echo(f"  {c['id']} vdu={c['vduId']} host={meta.get('host')} "
                           f"address={meta.get('address')}")  # fmt: skip
        return

    async def show(client: Any, keys: Any) -> None:
        from mano_core.inventory import Inventory  # noqa: PLC0415

        vnfs = await Inventory(client, keys).list()
        if as_json:
            click.echo(msgspec.json.encode(vnfs).decode())
            return
        if not vnfs:
            click.echo("no VNF instances")
        for vnf in vnfs:
            levels = ", ".join(f"{a}={lvl}" for a, lvl in vnf.scale_levels.items())
            click.echo(f"{vnf.name} ({vnf.id}) vnfd={vnf.vnfd_id} {vnf.state} scale: {levels}")
            for c in vnf.vnfcs:
                click.echo(f"  {c.id} vdu={c.vdu} host={c.host} address={c.address}")

    with_redis(settings, show)


@main.command(context_settings=CONTEXT)
@click.option("--vnf", "vnf_id", help="Only this VNF instance's operations.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def ops(ctx: click.Context, vnf_id: str | None, limit: int, as_json: bool) -> None:
    """List recent LCM operation occurrences, newest first (REDIS_URL, or --server)."""
    import msgspec  # noqa: PLC0415

    settings = settings_of(ctx)
    server = server_of(ctx)
    if server is not None:
        query = {"limit": str(limit), **({"vnfInstanceId": vnf_id} if vnf_id else {})}
        occurrences = get_json(server, "/vnflcm/v2/vnf_lcm_op_occs", query)
        if as_json:
            click.echo(json.dumps(occurrences))
            return
        for occ in occurrences:
            error = f" error: {occ['error']['detail']}" if occ.get("error") else ""
            click.echo(f"{occ['id']} {occ['operation']} vnf={occ['vnfInstanceId']} "
                       f"{occ['operationState']}{error}")  # fmt: skip
        return

    async def show(client: Any, keys: Any) -> None:
        from bus.clock import WallClock  # noqa: PLC0415
        from mano_core.lcm import OpOccStore  # noqa: PLC0415

        occurrences = await OpOccStore(client, keys, WallClock()).list(vnf_id, limit=limit)
        if as_json:
            click.echo(msgspec.json.encode(occurrences).decode())
            return
        for op in occurrences:
            error = f" error: {op.error}" if op.error else ""
            click.echo(f"{op.id} {op.operation} vnf={op.vnf_id} {op.state}{error}")

    with_redis(settings, show)
