"""``nfv-assure decisions ...`` and ``automation ...``: the closed loop's audit and controls.

``decisions list`` prints the newest decisions, ``decisions show ID`` one
decision with its whole episode (the violation and its evidence, every step
with each guard's verdict, the operations and how they ended, whether the
KPI recovered, the result). ``decisions approve|reject ID`` answers a
decision of a policy in mode ``approve``. ``automation off|on`` opts one
VNF or host out of (or back into) automation.
"""

from __future__ import annotations

import json
from typing import Any

import click

from assure.cli.app import CONTEXT, main, settings_of, with_redis

JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@main.group(context_settings=CONTEXT)
def decisions() -> None:
    """The closed loop's decisions and their audit trail (needs REDIS_URL)."""


@decisions.command("list", context_settings=CONTEXT)
@click.option("--policy", "policy_name", help="Only this policy's decisions.")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE of the policy's labels.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@JSON
@click.pass_context
def decisions_list(
    ctx: click.Context,
    policy_name: str | None,
    labels: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """The newest decisions first: verdict, action, target, outcome and reason."""
    wanted = _labels(labels)

    async def show(client: Any, keys: Any) -> None:
        from bus.clock import WallClock  # noqa: PLC0415
        from policy.audit import AuditTrail  # noqa: PLC0415

        trail = AuditTrail(client, keys, WallClock())
        rows = []
        for decision_id, record in await trail.recent(limit, policy=policy_name, labels=wanted):
            step = next(s for s in record.episode.steps if s.decision_id == decision_id)
            rows.append(_row(decision_id, record, step))
        if as_json:
            click.echo(json.dumps(rows))
            return
        if not rows:
            click.echo("no decisions")
        for row in rows:
            outcome = row["outcome"] or row["phase"]
            click.echo(
                f"{row['id']} {row['verdict']:<17} {row['action']:<9} {row['target']:<24} "
                f"{outcome:<10} {row['reason']}"
            )

    with_redis(settings_of(ctx), show)


@decisions.command("show", context_settings=CONTEXT)
@click.argument("decision_id")
@JSON
@click.pass_context
def decisions_show(ctx: click.Context, decision_id: str, as_json: bool) -> None:
    """One decision with its whole episode: evidence, guards, operations, verification."""
    import msgspec  # noqa: PLC0415

    async def show(client: Any, keys: Any) -> None:
        from bus.clock import WallClock  # noqa: PLC0415
        from policy.audit import AuditTrail  # noqa: PLC0415

        record = await AuditTrail(client, keys, WallClock()).episode_of(decision_id)
        if record is None:
            raise click.ClickException(f"no decision {decision_id}")
        if as_json:
            data = msgspec.to_builtins(record)
            data["decision"] = decision_id
            click.echo(json.dumps(data))
            return
        episode = record.episode
        click.echo(f"episode {episode.id}: policy {episode.policy} on {episode.target.key()}")
        if record.labels:
            click.echo("  labels: " + ", ".join(f"{k}={v}" for k, v in record.labels.items()))
        click.echo(f"  violation {episode.opened_by}: {episode.evidence}")
        evidence = episode.violation.get("evidence", {})
        if evidence:
            click.echo(
                f"    value {evidence.get('value')} threshold {evidence.get('threshold')} "
                f"window {evidence.get('window_s')}s"
            )
        click.echo(f"  result: {episode.result or episode.phase.value} {episode.detail}".rstrip())
        for step in episode.steps:
            mark = "*" if step.decision_id == decision_id else " "
            click.echo(
                f" {mark}{step.index}. {step.decision_id} {step.action} "
                f"{json.dumps(step.parameters)} [{step.verdict.value}]"
            )
            for guard in step.guards:
                verdict = "pass" if guard.passed else "DENY"
                click.echo(f"      {verdict} {guard.guard}: {guard.detail}")
            if step.op_id:
                error = f" ({step.op_error})" if step.op_error else ""
                click.echo(f"      operation {step.op_id}: {step.op_state}{error}")
            if step.verification:
                click.echo(f"      verification: {step.verification}")

    with_redis(settings_of(ctx), show)


def _answer_command(answer: str) -> click.Command:
    @click.command(answer, context_settings=CONTEXT)
    @click.argument("decision_id")
    @click.option("--by", default="operator", show_default=True, help="Who answers (recorded).")
    @click.pass_context
    def command(ctx: click.Context, decision_id: str, by: str) -> None:
        async def go(client: Any, keys: Any) -> None:
            from bus.clock import WallClock  # noqa: PLC0415
            from policy.control import ControlError, LoopControl  # noqa: PLC0415

            try:
                done = await LoopControl(client, keys, WallClock()).answer(
                    decision_id,
                    "approve" if answer == "approve" else "reject",
                    by,
                )
            except ControlError as exc:
                raise click.ClickException(str(exc)) from exc
            verb = "approved" if done.answer == "approve" else "rejected"
            click.echo(f"{verb} decision {done.decision_id} of {done.policy} by {done.by}")

        with_redis(settings_of(ctx), go)

    command.help = f"{answer.capitalize()} a decision that waits for approval (mode approve)."
    return command


decisions.add_command(_answer_command("approve"))
decisions.add_command(_answer_command("reject"))


@main.group(context_settings=CONTEXT)
def automation() -> None:
    """Turn the closed loop off (or on again) for one VNF instance or host (needs REDIS_URL)."""


def _scope(vnf: str | None, host: str | None) -> tuple[str, str]:
    if (vnf is None) == (host is None):
        raise click.UsageError("name one of --vnf ID or --host NAME")
    return ("vnf", vnf) if vnf is not None else ("host", host or "")


@automation.command("off", context_settings=CONTEXT)
@click.option("--vnf", help="A VNF instance id.")
@click.option("--host", help="A host name.")
@click.option("--reason", default="", help="Why (shown on the decisions it holds back).")
@click.pass_context
def automation_off(ctx: click.Context, vnf: str | None, host: str | None, reason: str) -> None:
    """Hold back every decision about the VNF (or host) until 'automation on'."""
    scope, name = _scope(vnf, host)

    async def go(client: Any, keys: Any) -> None:
        from bus.clock import WallClock  # noqa: PLC0415
        from policy.control import LoopControl  # noqa: PLC0415

        await LoopControl(client, keys, WallClock()).opt_out(
            "vnf" if scope == "vnf" else "host", name, reason
        )
        click.echo(f"automation off for {scope} {name}")

    with_redis(settings_of(ctx), go)


@automation.command("on", context_settings=CONTEXT)
@click.option("--vnf", help="A VNF instance id.")
@click.option("--host", help="A host name.")
@click.pass_context
def automation_on(ctx: click.Context, vnf: str | None, host: str | None) -> None:
    """Let the closed loop act on the VNF (or host) again."""
    scope, name = _scope(vnf, host)

    async def go(client: Any, keys: Any) -> None:
        from bus.clock import WallClock  # noqa: PLC0415
        from policy.control import LoopControl  # noqa: PLC0415

        was_off = await LoopControl(client, keys, WallClock()).opt_in(
            "vnf" if scope == "vnf" else "host", name
        )
        click.echo(f"automation on for {scope} {name}" + ("" if was_off else " (it was on)"))

    with_redis(settings_of(ctx), go)


@automation.command("list", context_settings=CONTEXT)
@JSON
@click.pass_context
def automation_list(ctx: click.Context, as_json: bool) -> None:
    """What automation is off for, and why; and the policies whose mode was overridden."""

    async def go(client: Any, keys: Any) -> None:
        from bus.clock import WallClock  # noqa: PLC0415
        from policy.control import LoopControl  # noqa: PLC0415

        control = LoopControl(client, keys, WallClock())
        off, modes = await control.opt_outs(), await control.modes()
        if as_json:
            click.echo(json.dumps({"off": off, "modes": modes}))
            return
        for name, why in sorted(off.items()):
            click.echo(f"off  {name}: {why or 'no reason given'}")
        for policy, mode in sorted(modes.items()):
            click.echo(f"mode {policy}: {mode}")
        if not off and not modes:
            click.echo("automation is on everywhere; no mode overridden")

    with_redis(settings_of(ctx), go)


def _labels(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--label")
        out[key] = value
    return out


def _row(decision_id: str, record: Any, step: Any) -> dict[str, Any]:
    return {
        "id": decision_id,
        "episode": record.episode.id,
        "policy": record.episode.policy,
        "labels": record.labels,
        "vnf": record.vnf,
        "action": step.action,
        "target": step.target.key(),
        "parameters": step.parameters,
        "verdict": step.verdict.value,
        "outcome": None if step.outcome is None else step.outcome.value,
        "phase": record.episode.result or record.episode.phase.value,
        "decided_at": step.decided_at,
        "reason": step.reason,
    }


__all__ = ["automation", "decisions"]
