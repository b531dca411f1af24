"""``nfv-assure token ...``: the REST API's bearer tokens."""

from __future__ import annotations

from typing import Any

import click

from assure.cli.app import CONTEXT, main, settings_of, with_redis

ROLE_NAMES = ["viewer", "operator", "admin"]


@main.group(context_settings=CONTEXT)
def token() -> None:
    """Manage API tokens (viewer: read; operator: also operations and policies; admin: all).

    Works on the platform's Redis: REDIS_URL, or the private one of a
    running 'nfv-assure serve'.
    """


@token.command("create", context_settings=CONTEXT)
@click.option("--role", required=True, type=click.Choice(ROLE_NAMES), help="What it may do.")
@click.option("--name", default="", help="A note saying who or what holds it.")
@click.pass_context
def token_create(ctx: click.Context, role: str, name: str) -> None:
    """Make a token and print it, and nothing else, on stdout (it is not shown again)."""

    async def create(client: Any, keys: Any) -> None:
        from assure.api.tokens import Role, TokenStore  # noqa: PLC0415
        from bus.clock import WallClock  # noqa: PLC0415

        secret, record = await TokenStore(client, keys, WallClock()).create(Role(role), name)
        click.echo(secret)
        click.echo(f"token {record.id} ({record.role.value}) created", err=True)

    with_redis(settings_of(ctx), create)


@token.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """List the tokens (their ids and roles; the tokens themselves are never kept)."""
    import msgspec  # noqa: PLC0415

    async def show(client: Any, keys: Any) -> None:
        from assure.api.tokens import TokenStore  # noqa: PLC0415
        from bus.clock import WallClock  # noqa: PLC0415

        records = await TokenStore(client, keys, WallClock()).list()
        if as_json:
            click.echo(msgspec.json.encode(records).decode())
            return
        for r in records:
            click.echo(f"{r.id} {r.role.value} {r.name}".rstrip())

    with_redis(settings_of(ctx), show)


@token.command("revoke", context_settings=CONTEXT)
@click.argument("token_id")
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke the token TOKEN_ID (as 'token list' shows it); it stops working at once."""

    async def revoke(client: Any, keys: Any) -> None:
        from assure.api.tokens import TokenStore  # noqa: PLC0415
        from bus.clock import WallClock  # noqa: PLC0415

        if not await TokenStore(client, keys, WallClock()).revoke(token_id):
            raise click.ClickException(f"no token {token_id!r} (see 'nfv-assure token list')")
        click.echo(f"token {token_id} revoked", err=True)

    with_redis(settings_of(ctx), revoke)
