"""``nfv-assure probe ROLE``: the liveness (and ``--ready``: readiness) check of a role.

For the roles that serve no HTTP (``/healthz`` and ``/readyz`` are the
api's): a Kubernetes exec probe in the role's container runs it. It reads
the role's heartbeat on this host (:mod:`assure.heartbeat`) and exits 0
when the role beat within the last 30 seconds, 1 when it did not. An
unreachable Redis fails readiness, but not liveness: restarting a role
does not bring Redis back, and the role rides an outage out by itself.
"""

from __future__ import annotations

import asyncio

import click

from assure.cli.app import CONTEXT, main, redis_url_of, settings_of

PROBE_TIMEOUT_S = 3.0
"""Wall seconds the probe waits for Redis (under the probe's own timeoutSeconds)."""


@main.command(context_settings=CONTEXT)
@click.argument("role", type=click.Choice(["collector", "analytics", "policy", "actuator", "api"]))
@click.option("--ready", is_flag=True, help="Readiness: Redis must answer too.")
@click.pass_context
def probe(ctx: click.Context, role: str, ready: bool) -> None:
    """Exit 0 when ROLE runs on this host (it beat within the last 30 s), else 1."""
    from redis.exceptions import RedisError  # noqa: PLC0415

    from assure.heartbeat import STALE_S, host_name, last_beat  # noqa: PLC0415
    from bus.keys import Keys  # noqa: PLC0415
    from bus.redis import connect  # noqa: PLC0415

    settings = settings_of(ctx)
    url = redis_url_of(settings)

    async def age() -> float | None:
        client = connect(url, cluster=settings.redis.cluster)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                return await last_beat(client, Keys(prefix=settings.redis.prefix), role)
        finally:
            await client.aclose()

    host = host_name()
    try:
        seconds = asyncio.run(age())
    except (OSError, RedisError, TimeoutError) as exc:
        reason = f"cannot reach Redis at {url}: {exc or 'no answer'}"
        if ready:
            raise click.ClickException(f"{role} on {host} is not ready: {reason}") from exc
        click.echo(f"{role} on {host}: cannot tell ({reason}); not a reason to restart it")
        return
    if seconds is None or seconds > STALE_S:
        when = (
            f"{seconds:.0f} s ago" if seconds is not None else f"over {STALE_S:g} s ago, or never"
        )
        raise click.ClickException(
            f"{role} on {host} is not running: its last heartbeat was {when} "
            "(one is due every few seconds)"
        )
    click.echo(f"{role} on {host} runs: it beat {seconds:.1f} s ago")
