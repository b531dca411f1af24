"""``nfv-assure ops``: LCM operation occurrences, and the operator's actions on one.

``nfv-assure ops`` lists recent occurrences; ``ops retry|rollback|fail|cancel
ID`` acts on one (by its id alone). ``retry`` and ``rollback`` run the
operation in this process, under the VNF's lease (so no actuator or API
runs one on the same VNF meanwhile), and print where it ended; ``cancel``
asks the worker running it to stop at its next step (or settles one nobody
runs); ``fail`` gives a FAILED_TEMP occurrence up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Coroutine
from typing import Any

import click

from assure.cli.app import CONTEXT, main, redis_url_of, settings_of, with_redis
from assure.cli.server_client import get_json, server_of


@main.group(context_settings=CONTEXT, invoke_without_command=True)
@click.option("--vnf", "vnf_id", help="Only this VNF instance's operations.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def ops(ctx: click.Context, vnf_id: str | None, limit: int, as_json: bool) -> None:
    """List recent LCM operation occurrences, newest first; or act on one (see below).

    Works on the platform's Redis: REDIS_URL, or the private one of a
    running 'nfv-assure serve'; the listing also from --server.
    """
    if ctx.invoked_subcommand is not None:
        return
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
            click.echo(_line(op))

    with_redis(settings, show)


def _line(op: Any) -> str:
    error = f" error: {op.error}" if op.error else ""
    auto = " (automatic)" if op.is_automatic else ""
    return f"{op.id} {op.operation} vnf={op.vnf_id} {op.state}{auto}{error}"


def _act(ctx: click.Context, op_id: str, as_json: bool, action: str) -> None:
    """Open the platform on its Redis and run ``action`` on occurrence ``op_id``."""
    import msgspec  # noqa: PLC0415

    from assure.platform import Platform, PlatformError  # noqa: PLC0415
    from bus.clock import WallClock  # noqa: PLC0415
    from mano_core.errors import ManoError  # noqa: PLC0415

    settings = settings_of(ctx)
    url = redis_url_of(settings)
    settings = dataclasses.replace(settings, redis=dataclasses.replace(settings.redis, url=url))

    async def go() -> Any:
        platform = await Platform.open(settings, WallClock())
        try:
            return await _run(platform, op_id, action)
        finally:
            await platform.aclose()

    try:
        op = asyncio.run(go())
    except (ManoError, PlatformError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(msgspec.json.encode(op).decode() if as_json else _line(op))
    if op.state in ("FAILED", "FAILED_TEMP") and action in ("retry", "rollback"):
        ctx.exit(1)


async def _run(platform: Any, op_id: str, action: str) -> Any:
    from actuator.lease import VnfLease  # noqa: PLC0415
    from bus.streams import consumer_name  # noqa: PLC0415
    from mano_core.errors import InvalidRequest  # noqa: PLC0415

    vnfm = platform.vnfm
    calls: dict[str, Callable[[str], Coroutine[Any, Any, Any]]] = {
        "retry": vnfm.retry,
        "rollback": vnfm.rollback,
        "fail": vnfm.fail,
        "cancel": vnfm.cancel,
    }
    if action not in ("retry", "rollback"):
        return await calls[action](op_id)
    op = await platform.ops.locate(op_id)
    lease = VnfLease(
        platform.redis,
        platform.keys,
        platform.clock,
        op.vnf_id,
        ttl_s=platform.settings.actuator.lease_ttl,
        holder=consumer_name("cli"),
    )
    if not await lease.try_acquire():
        raise InvalidRequest(f"another lifecycle operation is in progress on VNF {op.vnf_id}")
    return await lease.hold(lambda: calls[action](op_id))


def _action(name: str, help_text: str) -> None:
    @ops.command(name, context_settings=CONTEXT, help=help_text)
    @click.argument("op_id")
    @click.option("--json", "as_json", is_flag=True, help="Print the occurrence as JSON.")
    @click.pass_context
    def command(ctx: click.Context, op_id: str, as_json: bool) -> None:
        _act(ctx, op_id, as_json, name)


_action(
    "retry",
    "Resume a FAILED_TEMP occurrence where it stands (here, until it ends); exit 1 if it fails.",
)
_action("rollback", "Undo what a FAILED_TEMP occurrence did; exit 1 if the rollback fails.")
_action("fail", "Give a FAILED_TEMP occurrence up: FAILED, things left as they stand.")
_action(
    "cancel",
    "Stop a running occurrence at its next step (it ends FAILED_TEMP), or settle one "
    "whose worker stopped.",
)
