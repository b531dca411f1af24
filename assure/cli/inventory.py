"""``nfv-assure status``: the VNF instances a running platform holds.

It reads Redis, or with ``--server URL`` the server's SOL003 resources.
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
