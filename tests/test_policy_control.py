"""An operator's hand on the loop: approvals through the API and the CLI, modes, opt-outs, audit.

The CLI runs as a real process against the test's Redis; the API on a real
port; the policy engine is the live one, its clock moved by the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from assure.platform import Platform
from assure.settings import Settings
from bus.keys import Keys
from tests.api_support import running_api
from tests.policy_support import World, one, policies_from, vnfc_target, world_with

APPROVE = """
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: heal, labels: {team: edge}}
spec:
  target: {vnfd: vfw}
  conditions:
    - {name: silent, kind: absent, kpi: vnf_requests_per_second, scope: vnfc, for: 15s}
  action: {type: heal}
  mode: approve
  approval: {timeout: 10m, default: reject}
"""


def cli(redis_url: str, keys: Keys, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "NFVA_REDIS_PREFIX": keys.prefix}
    return subprocess.run(
        [sys.executable, "-m", "assure", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def waiting(world: World, vnfc: str = "c1") -> Any:
    decision = one(await world.engine.handle(world.onset("heal", vnfc_target(vnfc), value=None)))
    assert decision.verdict == "awaiting_approval"
    return decision


async def test_an_operator_approves_through_the_api_and_the_decision_runs(
    redis: Any, keys: Keys, settings: Settings
) -> None:
    world = await world_with(redis, keys, policies_from(APPROVE))
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    decision = await waiting(world)
    platform = await Platform.open(settings, world.clock)
    try:
        async with running_api(platform) as api:
            path = f"/api/v1/decisions/{decision.id}/approval"
            answered = await api.client.post(path, json={"answer": "approve"}, headers=api.auth())
            assert answered.status == 200, await answered.text()
            assert (await answered.json())["answer"] == "approve"
            unknown = await api.client.post(
                "/api/v1/decisions/nope/approval", json={"answer": "approve"}, headers=api.auth()
            )
    finally:
        await platform.aclose()

    approved = one(await world.advance(1.0))
    assert approved.id == decision.id and approved.approved
    assert "approved by test admin" in approved.reason
    assert unknown.status == 404


async def test_an_operator_rejects_through_the_cli_and_the_episode_ends_denied(
    redis: Any, keys: Keys, redis_url: str
) -> None:
    world = await world_with(redis, keys, policies_from(APPROVE))
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    decision = await waiting(world)

    done = cli(redis_url, keys, "decisions", "reject", decision.id, "--by", "alice")
    assert done.returncode == 0, done.stderr
    assert f"rejected decision {decision.id} of heal by alice" in done.stdout
    rejected = one(await world.advance(5.0))  # its own look, every requeue_s

    assert rejected.id == decision.id and rejected.verdict == "rejected"
    late = cli(redis_url, keys, "decisions", "approve", decision.id)
    assert late.returncode == 1 and "does not wait for approval" in late.stderr


async def test_decisions_list_and_show_print_the_audit_trail(
    redis: Any, keys: Keys, redis_url: str
) -> None:
    enforce = APPROVE.replace("  mode: approve\n", "").replace(
        "  approval: {timeout: 10m, default: reject}\n", ""
    )
    world = await world_with(redis, keys, policies_from(enforce))
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    heal = one(await world.engine.handle(world.onset("heal", vnfc_target("c1"), value=None)))
    await world.finish(heal)

    listed = cli(redis_url, keys, "decisions", "list", "--label", "team=edge", "--json")
    shown = cli(redis_url, keys, "decisions", "show", heal.id)
    nothing = cli(redis_url, keys, "decisions", "list", "--label", "team=core")

    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["action"], row["verdict"], row["outcome"]) == (
        heal.id,
        "heal",
        "approved",
        "completed",
    )
    assert row["labels"] == {"team": "edge"}
    assert shown.returncode == 0, shown.stderr
    assert "policy heal on vnfc:c1" in shown.stdout
    assert "pass cooldown" in shown.stdout and "pass in_flight" in shown.stdout
    assert f"operation op-{heal.id}: COMPLETED" in shown.stdout
    assert "result: verifying" in shown.stdout
    assert nothing.stdout.strip() == "no decisions"


async def test_modes_and_opt_outs_set_from_the_cli_reach_the_engine(
    redis: Any, keys: Keys, redis_url: str
) -> None:
    world = await world_with(redis, keys, policies_from(APPROVE))
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    assert cli(redis_url, keys, "policy", "mode", "heal", "dry_run").returncode == 0
    dry = one(await world.engine.handle(world.onset("heal", vnfc_target("c1"), "v1", value=None)))
    assert dry.verdict == "dry_run"

    assert cli(redis_url, keys, "policy", "mode", "heal", "enforce").returncode == 0
    off = cli(redis_url, keys, "automation", "off", "--host", "h2", "--reason", "maintenance")
    assert off.returncode == 0, off.stderr
    held = one(await world.engine.handle(world.onset("heal", vnfc_target("c2"), "v2", value=None)))
    assert held.verdict == "queued" and "automation is off for host:h2: maintenance" in held.reason

    listed = cli(redis_url, keys, "automation", "list", "--json")
    assert json.loads(listed.stdout) == {
        "off": {"host:h2": "maintenance"},
        "modes": {"heal": "enforce"},
    }
    assert cli(redis_url, keys, "automation", "on", "--host", "h2").returncode == 0
    assert one(await world.advance(30.0)).approved
