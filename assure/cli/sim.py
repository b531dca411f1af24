"""``nfv-assure sim ...``: look at the simulated clouds and break them by hand.

The simulated VIMs keep their state in the platform's Redis, so these
commands act on the very cloud every running process sees: a server
crashed here is found crashed by the collector, healed by the actuator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import click

from assure.cli.app import CONTEXT, main, settings_of, with_redis

SimAction = Callable[[dict[str, Any]], Awaitable[None]]
"""Receives the simulated VIMs by site name."""


def _with_sims(ctx: click.Context, action: SimAction) -> None:
    settings = settings_of(ctx)

    async def run(client: Any, keys: Any) -> None:
        from assure.vims import build_sites  # noqa: PLC0415
        from bus.clock import WallClock  # noqa: PLC0415

        if settings.vim.driver != "simulated":
            raise click.UsageError(f"the VIM driver is {settings.vim.driver!r}, not simulated")
        sims = (await build_sites(settings, WallClock(), client, keys)).simulated
        await action(sims)

    with_redis(settings, run)


@main.group(context_settings=CONTEXT)
def sim() -> None:
    """The simulated VIMs: their servers and hosts, and faults injected by hand.

    Works on the platform's Redis: REDIS_URL, or the private one of a
    running 'nfv-assure serve'.
    """


def _site_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--site", help="Only this site (VIM); default: every site.")(f)


def _chosen(sims: dict[str, Any], site: str | None) -> dict[str, Any]:
    if site is None:
        return sims
    if site not in sims:
        raise click.UsageError(f"no simulated site {site!r} (sites: {', '.join(sims)})")
    return {site: sims[site]}


@sim.command("servers", context_settings=CONTEXT)
@_site_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def sim_servers(ctx: click.Context, site: str | None, as_json: bool) -> None:
    """List every server: site, id, status, host, address, name."""
    import msgspec  # noqa: PLC0415

    async def show(sims: dict[str, Any]) -> None:
        rows: list[tuple[str, Any]] = []
        for name, vim in _chosen(sims, site).items():
            rows.extend((name, server) for server in await vim.servers())
        if as_json:
            payload = [{"site": name, **msgspec.to_builtins(s)} for name, s in rows]
            click.echo(msgspec.json.encode(payload).decode())
            return
        for name, s in rows:
            fault = f" fault: {s.fault}" if s.fault else ""
            click.echo(
                f"{name} {s.id} {s.status} host={s.host} address={s.address} {s.name}{fault}"
            )

    _with_sims(ctx, show)


@sim.command("calls", context_settings=CONTEXT)
@_site_option
@click.option("--operation", help="Only calls of this operation (create, reboot, delete...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def sim_calls(ctx: click.Context, site: str | None, operation: str | None, as_json: bool) -> None:
    """The call log: every call the cloud served, from any process, oldest first.

    One line per call: site, time, operation, what it acted on, and the
    injected failure that answered it, if one did.
    """
    import msgspec  # noqa: PLC0415

    from assure.cli.history import when  # noqa: PLC0415

    async def show(sims: dict[str, Any]) -> None:
        rows: list[tuple[str, Any]] = []
        for name, vim in _chosen(sims, site).items():
            rows.extend((name, call) for call in await vim.calls(operation))
        if as_json:
            payload = [{"site": name, **msgspec.to_builtins(c)} for name, c in rows]
            click.echo(msgspec.json.encode(payload).decode())
            return
        for name, c in rows:
            failed = f" failed: {c.error}" if c.error else ""
            click.echo(f"{name} {when(c.at)} {c.operation} {c.subject}{failed}")

    _with_sims(ctx, show)


@sim.command("hosts", context_settings=CONTEXT)
@_site_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def sim_hosts(ctx: click.Context, site: str | None, as_json: bool) -> None:
    """List every compute host: state, flags, capacity used, servers."""
    import msgspec  # noqa: PLC0415

    async def show(sims: dict[str, Any]) -> None:
        rows: list[tuple[str, Any]] = []
        for name, vim in _chosen(sims, site).items():
            rows.extend((name, host) for host in await vim.hosts())
        if as_json:
            payload = [{"site": name, **msgspec.to_builtins(h)} for name, h in rows]
            click.echo(msgspec.json.encode(payload).decode())
            return
        for name, h in rows:
            flags = [
                flag
                for flag, on in (
                    ("disabled", not h.enabled),
                    ("degraded", h.degraded),
                    ("forced-down", h.forced_down),
                )
                if on
            ]
            click.echo(
                f"{name} {h.name} {h.state.value}{' ' + ','.join(flags) if flags else ''} "
                f"vcpus={h.vcpus_used}/{h.vcpus} ram_mb={h.ram_used_mb}/{h.ram_mb} "
                f"servers={len(h.servers)}"
            )

    _with_sims(ctx, show)


@sim.group("fault", context_settings=CONTEXT)
def sim_fault() -> None:
    """Inject a fault into a simulated VIM (every process sees it at once)."""


async def _site_of_host(sims: dict[str, Any], host: str) -> Any:
    for vim in sims.values():
        if any(h.name == host for h in await vim.hosts()):
            return vim
    raise click.ClickException(f"no simulated site has a host {host!r}")


@sim_fault.command("crash-server", context_settings=CONTEXT)
@click.argument("server_id")
@click.pass_context
def fault_crash_server(ctx: click.Context, server_id: str) -> None:
    """The server's guest dies: ERROR until it is rebooted hard, rebuilt or replaced."""

    async def crash(sims: dict[str, Any]) -> None:
        for name, vim in sims.items():
            if any(s.id == server_id for s in await vim.servers()):
                await vim.crash_server(server_id)
                click.echo(f"crashed server {server_id} on site {name}")
                return
        raise click.ClickException(f"no simulated site has a server {server_id!r}")

    _with_sims(ctx, crash)


def _host_fault(name: str, method: str, done: str, help_text: str) -> None:
    @sim_fault.command(name, context_settings=CONTEXT, help=help_text)
    @click.argument("host")
    @click.pass_context
    def command(ctx: click.Context, host: str) -> None:
        async def act(sims: dict[str, Any]) -> None:
            vim = await _site_of_host(sims, host)
            await getattr(vim, method)(host)
            click.echo(f"host {host} {done}")

        _with_sims(ctx, act)


_host_fault(
    "fail-host",
    "fail_host",
    "is down",
    "The host goes down: every server on it goes to ERROR.",
)
_host_fault(
    "degrade-host",
    "degrade_host",
    "is degraded",
    "The host reports a fault: it keeps running but takes no new servers.",
)
_host_fault(
    "restore-host",
    "restore_host",
    "is restored",
    "The host is repaired: up, enabled, not degraded (its ERROR servers stay ERROR).",
)


@sim_fault.command("api-errors", context_settings=CONTEXT)
@click.option("--site", help="The site whose API fails; default: the first.")
@click.option(
    "--operation",
    default="any",
    show_default=True,
    help="Which calls fail (any: every call, reads included; or create, delete, reboot, ...).",
)
@click.option("--count", default=1, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--kind",
    type=click.Choice(["temporary", "permanent"]),
    default="temporary",
    show_default=True,
    help="temporary: callers retry after --retry-after; permanent: they give up.",
)
@click.option("--retry-after", default="5s", show_default=True, help="With --kind temporary.")
@click.option("--clear", is_flag=True, help="Drop every queued API error of the site instead.")
@click.pass_context
def fault_api_errors(  # noqa: PLR0917 - one parameter per option
    ctx: click.Context,
    site: str | None,
    operation: str,
    count: int,
    kind: str,
    retry_after: str,
    clear: bool,
) -> None:
    """Make the next COUNT calls of OPERATION to a site's API fail."""
    from bus.units import parse_duration  # noqa: PLC0415
    from mano_core.vim.simulated.controls import check_operation  # noqa: PLC0415

    try:
        check_operation(operation)
        retry_s = parse_duration(retry_after)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc

    async def inject(sims: dict[str, Any]) -> None:
        name = site or next(iter(sims))
        vim = _chosen(sims, name)[name]
        if clear:
            dropped = await vim.clear_failures()
            click.echo(f"site {name}: {dropped} queued API error(s) dropped")
            return
        await vim.fail_next(
            operation, temporary=kind == "temporary", count=count, retry_after=retry_s
        )
        click.echo(f"site {name}: the next {count} {operation} call(s) fail ({kind})")

    _with_sims(ctx, inject)
