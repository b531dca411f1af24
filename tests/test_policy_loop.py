"""The closed loop on a real Redis: verification, escalation, chains, and every guard.

Each test plays the analytics stage (ONSET, ABATED) and the actuator
(operation results) against the live policy engine, moving a manual clock.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bus.contracts import Action, OpState
from bus.keys import Keys
from mano_core.granter import VimGranter
from mano_core.models import VnfState
from mano_core.vim.registry import VimRegistry
from mano_core.vim.simulated import SimHost, SimulatedVim
from tests.policy_support import (
    ManualClock,
    World,
    guard,
    host_target,
    one,
    policies_from,
    shipped_policies,
    vnf_target,
    vnfc_target,
    world_with,
)

HEADER = """
apiVersion: assure/v1
kind: KpiPolicy
metadata: {{name: {name}, labels: {{team: edge}}}}
spec:
  target: {{vnfd: vfw}}
"""

CPU_HIGH = """
  conditions:
    - {name: c, kpi: vnf_cpu_utilisation, scope: vnf, op: ">", threshold: 75, clear: 60, for: 30s}
"""
CPU_LOW = """
  conditions:
    - {name: c, kpi: vnf_cpu_utilisation, scope: vnf, op: "<", threshold: 25, clear: 35, for: 60s}
"""
SILENT = """
  conditions:
    - {name: c, kind: absent, kpi: vnf_requests_per_second, scope: vnfc, for: 15s}
"""


def policy(name: str, body: str) -> str:
    return HEADER.format(name=name) + body


async def world_of(redis: Any, keys: Keys, *texts: str, **options: Any) -> World:
    policies = [p for text in texts for p in policies_from(text)]
    return await world_with(redis, keys, policies, **options)


# --- scaling: shared cooldown from completion, repeated steps ---------------------


async def test_scale_out_and_in_share_one_cooldown_timed_from_completion(
    redis: Any, keys: Keys
) -> None:
    out = policy("vfw-scale-out", CPU_HIGH) + (
        "  action: {type: scale_out, aspect: fw-scale}\n  guards: {cooldown: 120s}\n"
    )
    scale_in = policy("vfw-scale-in", CPU_LOW) + (
        "  action: {type: scale_in, aspect: fw-scale}\n  guards: {cooldown: 120s}\n"
    )
    world = await world_of(redis, keys, out, scale_in)
    cooldown = 120.0
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2"), ("c3", "h1")], level=1)
    high = world.onset("vfw-scale-out", vnf_target("fw1"), "v-high")
    grown = one(await world.engine.handle(high))
    # The scale-out takes 100 s: longer than the cooldown counted from its request.
    await world.finish(grown, after_s=100.0)
    await world.engine.handle(world.abated(high))
    await world.resize("fw1", 4)

    low = world.onset("vfw-scale-in", vnf_target("fw1"), "v-low")
    held = one(await world.engine.handle(low))
    passed, detail = guard(held, "cooldown")
    assert not held.approved and held.verdict == "queued"
    assert not passed and "scale:fw-scale" in detail, "scale-in and scale-out share it"

    assert await world.advance(cooldown - 1) == []
    approved = one(await world.advance(1.0))
    assert approved.id == held.id and approved.approved
    assert approved.action is Action.SCALE_IN


async def test_a_long_surge_gets_another_scale_step_after_each_verify_window(
    redis: Any, keys: Keys
) -> None:
    text = policy("out", CPU_HIGH) + (
        "  action: {type: scale_out, aspect: fw-scale}\n  verify: 1m\n  guards: {cooldown: 30s}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    onset = world.onset("out", vnf_target("fw1"))

    first = one(await world.engine.handle(onset))
    await world.finish(first, after_s=20.0)
    await world.resize("fw1", 3)
    assert await world.advance(59.0) == [], "verified for the whole window first"
    second = one(await world.advance(1.0))
    await world.finish(second, after_s=20.0)
    await world.resize("fw1", 4)
    await world.engine.handle(world.abated(onset))

    assert first.approved and second.approved
    assert (first.episode, first.step) == (second.episode, 0) or second.step == 1
    assert second.episode == first.episode and second.step == 1
    record = await world.engine.audit.episode_of(second.id)
    assert record is not None and record.episode.result == "recovered"
    assert [s.outcome for s in record.episode.steps] == ["completed", "completed"]


async def test_a_condition_firing_again_while_the_last_step_runs_gets_its_own_decision(
    redis: Any, keys: Keys
) -> None:
    text = policy("in", CPU_LOW) + (
        "  action: {type: scale_in, aspect: fw-scale}\n  guards: {cooldown: 1s}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2"), ("c3", "h1"), ("c4", "h2")])
    first_low = world.onset("in", vnf_target("fw1"), "v-1")
    first = one(await world.engine.handle(first_low))
    # The VNF is listed smaller before the operation ends: the CPU rises, the
    # condition abates, then fires again before the result is in.
    await world.resize("fw1", 3)
    assert await world.engine.handle(world.abated(first_low)) == []
    again = world.onset("in", vnf_target("fw1"), "v-2")
    assert await world.engine.handle(again) == [], "one decision in flight per VNF"

    await world.finish(first, after_s=5.0)
    second = one(await world.advance(1.0))  # once the 1s cooldown has passed

    assert second.approved and second.violation_id == "v-2"
    assert second.episode != first.episode
    record = await world.engine.audit.episode_of(first.id)
    assert record is not None and record.episode.result == "recovered"


async def test_proportional_scaling_takes_the_steps_the_hpa_formula_gives(
    redis: Any, keys: Keys
) -> None:
    text = policy("hpa", CPU_HIGH) + (
        "  action: {type: scale, aspect: fw-scale, target: 60, tolerance: 0.1}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    # ceil(2 x 110 / 60) = 4 VNFCs: two steps of one VNFC at once.
    decision = one(await world.engine.handle(world.onset("hpa", vnf_target("fw1"), value=110.0)))

    assert decision.approved and decision.action is Action.SCALE_OUT
    assert decision.parameters == {"aspect": "fw-scale", "steps": 2}
    passed, detail = guard(decision, "tolerance")
    assert passed and "ceil(2 x 110 / 60) = 4" in detail


async def test_proportional_scaling_within_tolerance_does_nothing(redis: Any, keys: Keys) -> None:
    text = policy("hpa", CPU_HIGH) + "  action: {type: scale, aspect: fw-scale, target: 60}\n"
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    decision = one(await world.engine.handle(world.onset("hpa", vnf_target("fw1"), value=63.0)))

    assert not decision.approved and decision.verdict == "denied"
    assert "within 10% of the target 60" in guard(decision, "tolerance")[1]


async def test_scale_to_level_steps_to_the_level_named(redis: Any, keys: Keys) -> None:
    text = policy("lvl", CPU_HIGH) + (
        "  action: {type: scale_to_level, aspect: fw-scale, level: 3}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2"), ("c3", "h1")], level=1)

    decision = one(await world.engine.handle(world.onset("lvl", vnf_target("fw1"))))

    assert decision.approved
    assert (decision.action, decision.parameters["steps"]) == (Action.SCALE_OUT, 2)


async def test_scale_in_keeps_the_highest_count_recommended_in_the_stabilisation_window(
    redis: Any, keys: Keys
) -> None:
    out = policy("out", CPU_HIGH) + "  action: {type: scale_out, aspect: fw-scale}\n"
    scale_in = policy("in", CPU_LOW) + (
        "  action: {type: scale_in, aspect: fw-scale}\n  guards: {stabilisation: 5m}\n"
    )
    world = await world_of(redis, keys, out, scale_in)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2"), ("c3", "h1")], level=1)
    high = world.onset("out", vnf_target("fw1"), "v-high")
    first = one(await world.engine.handle(high))  # recommends 4 VNFCs
    await world.finish(first)
    await world.engine.handle(world.abated(high))
    await world.resize("fw1", 4)

    held = one(await world.engine.handle(world.onset("in", vnf_target("fw1"), "v-low")))
    passed, detail = guard(held, "stabilisation")
    assert held.verdict == "queued" and not passed
    assert "4 VNFCs were recommended within 5m" in detail
    released = one(await world.advance(300.0))
    assert released.id == held.id and released.approved


async def test_a_change_of_flavour_acts_on_the_vnf_once_and_not_when_it_is_done(
    redis: Any, keys: Keys
) -> None:
    bigger = policy("bigger", CPU_HIGH) + (
        "  action: {type: change_flavour, vdu: fw, vcpus: 4, ram_mb: 4096, disk_gb: 10}\n"
        "  verify: 1m\n"
    )
    world = await world_of(redis, keys, bigger)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    onset = world.onset("bigger", vnfc_target("c1"), "v-1")

    resize = one(await world.engine.handle(onset))
    assert (resize.action, resize.target.key(), resize.approved) == (
        Action.CHANGE_FLAVOUR, "vnf:fw1", True
    )  # fmt: skip
    assert resize.parameters == {"vdu": "fw", "vcpus": 4, "ram_mb": 4096, "disk_gb": 10}
    assert guard(resize, "target") == (
        True,
        "VDU fw of VNF fw1 has 2 vCPUs, 2048 MB RAM, 10 GB disk",
    )
    await world.finish(resize)
    # Still hot after the verify window: a change of flavour is not repeated.
    assert await world.advance(60.0) == []
    record = await world.engine.audit.episode_of(resize.id)
    assert record is not None and record.episode.result == "not_recovered"


async def test_operate_stops_a_started_vnf_and_has_nothing_to_do_on_a_stopped_one(
    redis: Any, keys: Keys
) -> None:
    stop = policy("stop", CPU_HIGH) + "  action: {type: operate, state: STOPPED, graceful: false}\n"
    world = await world_of(redis, keys, stop)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    stopping = one(await world.engine.handle(world.onset("stop", vnf_target("fw1"), "v-1")))
    assert (stopping.action, stopping.approved) == (Action.OPERATE, True)
    assert stopping.parameters == {"state": "STOPPED", "graceful": False}

    await world.add_vnf("fw2", [("c3", "h1"), ("c4", "h2")])
    stopped = await world.inventory.get("fw2")
    stopped.vnf_state = VnfState.STOPPED
    await world.inventory.save(stopped)
    denied = one(await world.engine.handle(world.onset("stop", vnf_target("fw2"), "v-2")))
    assert denied.verdict == "denied"
    assert guard(denied, "target") == (False, "nothing to do: VNF fw2 is STOPPED")


# --- heal: the ladder climbs when the KPI does not recover ---------------------------


async def test_a_heal_that_does_not_bring_the_kpi_back_climbs_the_ladder(
    redis: Any, keys: Keys
) -> None:
    text = policy("heal", SILENT) + "  action: {type: heal, level: hard_reboot}\n  verify: 1m\n"
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    onset = world.onset("heal", vnfc_target("c1"), value=None)

    reboot = one(await world.engine.handle(onset))
    await world.finish(reboot)  # the operation completed: the VNFC is ACTIVE again...
    rebuild = one(await world.advance(60.0))  # ...but it never reported again
    await world.finish(rebuild)
    await world.engine.handle(world.abated(onset))

    assert reboot.parameters == {"level": "hard_reboot"}
    assert rebuild.parameters == {"level": "rebuild"}
    assert rebuild.episode == reboot.episode
    record = await world.engine.audit.episode_of(reboot.id)
    assert record is not None
    assert [s.verification for s in record.episode.steps] == ["unrecovered", "recovered"]
    assert record.episode.result == "recovered"


async def test_a_failed_heal_climbs_at_once_and_the_top_of_the_ladder_escalates(
    redis: Any, keys: Keys
) -> None:
    text = policy("heal", SILENT) + (
        "  action: {type: heal, level: hard_reboot}\n"
        "  notify: {url: 'http://127.0.0.1:9/hook', format: slack}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    decided = [one(await world.engine.handle(world.onset("heal", vnfc_target("c1"), value=None)))]
    for _ in range(2):
        decided.append(one(await world.finish(decided[-1], state=OpState.FAILED, error="boom")))
    last = await world.finish(decided[-1], state=OpState.FAILED, error="boom")

    assert [d.parameters["level"] for d in decided] == ["hard_reboot", "rebuild", "recreate"]
    escalation = one(last, Action.NOTIFY)
    assert escalation.approved and escalation.parameters["status"] == "escalation"
    assert escalation.parameters["result"] == "failed"
    assert escalation.parameters["format"] == "slack"
    assert escalation.labels == {"team": "edge"}
    assert [c["outcome"] for c in escalation.parameters["chain"]] == ["failed"] * 3


# --- chains: retries, timeouts, denied, overall timeout ---------------------------


CHAIN = """
  steps:
    - id: restart
      action: {type: heal, level: hard_reboot}
      retries: 1
      timeout: 2m
      on_failure: rebuild
      on_timeout: replace
    - id: rebuild
      action: {type: heal, level: rebuild}
      on_failure: final
    - id: replace
      action: {type: heal, level: recreate}
"""


async def test_a_failed_step_is_retried_then_takes_its_failure_branch(
    redis: Any, keys: Keys
) -> None:
    world = await world_of(redis, keys, policy("chain", SILENT) + CHAIN)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    first = one(await world.engine.handle(world.onset("chain", vnfc_target("c1"), value=None)))
    retry = one(await world.finish(first, state=OpState.FAILED, error="boom"))
    branch = one(await world.finish(retry, state=OpState.FAILED, error="boom"))

    assert first.timeout_s == 120.0, "the step's timeout travels with the decision"
    assert (retry.parameters, retry.step) == ({"level": "hard_reboot"}, 1)
    assert branch.parameters == {"level": "rebuild"}
    assert await world.finish(branch, state=OpState.FAILED, error="boom") == []
    record = await world.engine.audit.episode_of(branch.id)
    assert record is not None and record.episode.result == "failed"


async def test_a_step_that_times_out_takes_its_timeout_branch(redis: Any, keys: Keys) -> None:
    world = await world_of(redis, keys, policy("chain", SILENT) + CHAIN)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    first = one(await world.engine.handle(world.onset("chain", vnfc_target("c1"), value=None)))

    replace = one(await world.finish(first, state=OpState.FAILED, error="timed out after 120 s"))

    assert replace.parameters == {"level": "recreate"}


async def test_a_step_whose_result_never_comes_times_out_on_the_engine_side(
    redis: Any, keys: Keys
) -> None:
    world = await world_of(redis, keys, policy("chain", SILENT) + CHAIN)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    one(await world.engine.handle(world.onset("chain", vnfc_target("c1"), value=None)))

    assert await world.advance(120.0) == []
    replace = one(await world.advance(world.engine.loop.grace_s))

    assert replace.parameters == {"level": "recreate"}


async def test_a_denied_step_takes_its_denied_branch(redis: Any, keys: Keys) -> None:
    text = policy("out", CPU_HIGH) + (
        "  steps:\n"
        "    - {id: grow, action: {type: scale_out, aspect: fw-scale}, on_denied: tell}\n"
        "    - {id: tell, action: {type: notify, message: at the limit}}\n"
        "  notify: {url: 'http://127.0.0.1:9/hook', results: []}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [(f"c{i}", "h1") for i in range(5)], level=3)

    denied, told = await world.engine.handle(world.onset("out", vnf_target("fw1")))

    assert denied.verdict == "denied" and not guard(denied, "max_instances")[0]
    assert told.action is Action.NOTIFY and told.approved
    assert told.parameters["message"] == "at the limit"


async def test_the_overall_timeout_gives_up_not_recovered(redis: Any, keys: Keys) -> None:
    text = policy("out", CPU_HIGH) + (
        "  action: {type: scale_out, aspect: fw-scale}\n  verify: 10m\n  timeout: 5m\n"
        "  notify: {url: 'http://127.0.0.1:9/hook'}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    first = one(await world.engine.handle(world.onset("out", vnf_target("fw1"))))
    await world.finish(first)

    escalation = one(await world.advance(300.0))

    assert escalation.action is Action.NOTIFY
    assert escalation.parameters["result"] == "not_recovered"


# --- coordination per VNF ------------------------------------------------------------


async def test_heal_goes_before_scale_and_one_decision_runs_per_vnf(redis: Any, keys: Keys) -> None:
    heal = policy("heal", SILENT) + "  action: {type: heal}\n"
    out = policy("out", CPU_HIGH) + "  action: {type: scale_out, aspect: fw-scale}\n"
    world = await world_of(redis, keys, heal, out)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    silent = world.onset("heal", vnfc_target("c1"), "v-silent", value=None)
    healing = one(await world.engine.handle(silent))

    held = one(await world.engine.handle(world.onset("out", vnf_target("fw1"), "v-cpu")))
    assert held.verdict == "queued"
    assert "heal of vnfc:c1 (policy heal) comes first" in guard(held, "coordination")[1]
    assert not guard(held, "in_flight")[0]

    await world.finish(healing)
    assert await world.advance(5.0) == [], "the heal is verified first"
    await world.engine.handle(world.abated(silent))
    scale = one(await world.advance(5.0))
    assert scale.id == held.id and scale.approved


async def test_a_heal_queued_behind_a_migration_waits_for_fresh_kpis_and_is_withdrawn(
    redis: Any, keys: Keys
) -> None:
    # A VNFC goes silent while it is migrated off a degraded host: once the
    # migration completes, the heal queued behind it waits for the settle
    # time, within which the VNFC reports again from its new host, and the
    # heal is never taken.
    heal = policy("heal", SILENT) + "  action: {type: heal}\n"
    both = policies_from(heal) + shipped_policies("vfw-migrate")
    world = await world_with(redis, keys, both, settle_s=11.0)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    moving = one(await world.engine.handle(world.onset("vfw-migrate", host_target("h1"))))
    silent = world.onset("heal", vnfc_target("c1"), "v-silent", value=None)
    held = one(await world.engine.handle(silent))
    assert held.verdict == "queued" and not guard(held, "in_flight")[0]

    assert await world.finish(moving, after_s=20.0) == []
    assert await world.advance(5.0) == [], "no heal on KPIs from before the migration"
    await world.engine.handle(world.abated(silent))
    assert await world.advance(10.0) == []
    assert [d.id for d in await world.approved()] == [moving.id]


async def test_a_heal_still_needed_after_the_settle_time_runs(redis: Any, keys: Keys) -> None:
    heal = policy("heal", SILENT) + "  action: {type: heal}\n"
    both = policies_from(heal) + shipped_policies("vfw-migrate")
    world = await world_with(redis, keys, both, settle_s=11.0)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    moving = one(await world.engine.handle(world.onset("vfw-migrate", host_target("h1"))))
    held = one(await world.engine.handle(world.onset("heal", vnfc_target("c1"), "v-s", value=None)))
    await world.finish(moving, after_s=20.0)
    assert await world.advance(5.0) == []
    healing = one(await world.advance(6.0))
    assert healing.id == held.id and healing.approved
    assert guard(healing, "settle")[0]


async def test_no_scale_in_while_another_condition_is_open_on_the_vnf(
    redis: Any, keys: Keys
) -> None:
    heal = policy("heal", SILENT) + "  action: {type: notify}\n  notify: {url: 'http://x:1/'}\n"
    scale_in = policy("in", CPU_LOW) + "  action: {type: scale_in, aspect: fw-scale}\n"
    world = await world_of(redis, keys, heal, scale_in)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2"), ("c3", "h1")], level=1)
    silent = world.onset("heal", vnfc_target("c1"), "v-silent", value=None)
    await world.engine.handle(silent)

    held = one(await world.engine.handle(world.onset("in", vnf_target("fw1"), "v-low")))
    assert held.verdict == "queued"
    assert "no scale-in while heal/c is open" in guard(held, "coordination")[1]
    await world.engine.handle(world.abated(silent))
    assert one(await world.advance(5.0), Action.SCALE_IN).approved


async def test_a_decision_queued_behind_the_global_cap_runs_when_a_slot_frees(
    redis: Any, keys: Keys
) -> None:
    world = await world_with(redis, keys, shipped_policies("vfw-scale-out"), max_concurrent=1)
    await world.add_vnf("fw1", [("a1", "h1"), ("a2", "h2")])
    await world.add_vnf("fw2", [("b1", "h1"), ("b2", "h2")])
    first = one(await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v1")))

    held = one(await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw2"), "v2")))
    assert held.verdict == "queued"
    assert "at most 1 at once" in guard(held, "concurrency")[1]
    assert await world.advance(5.0) == [], "still no slot: re-checked, not published again"

    await world.finish(first)
    released = one(await world.advance(5.0))
    assert released.id == held.id and released.approved


async def test_the_per_host_cap_queues_a_second_operation_on_one_host(
    redis: Any, keys: Keys
) -> None:
    world = await world_with(
        redis, keys, shipped_policies("vfw-migrate"), max_concurrent_per_host=1
    )
    await world.add_vnf("fw1", [("a1", "h1")])
    await world.add_vnf("fw2", [("b1", "h1")])

    first, second = await world.engine.handle(world.onset("vfw-migrate", host_target("h1")))

    assert first.approved and second.verdict == "queued"
    assert "on host h1 (at most 1 per host)" in guard(second, "concurrency")[1]


# --- guards -------------------------------------------------------------------


async def test_the_frequency_limit_holds_the_next_action_until_the_window_frees(
    redis: Any, keys: Keys
) -> None:
    text = policy("heal", SILENT) + (
        "  action: {type: heal}\n  guards: {frequency: {max: 1, per: 10m}}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    first_onset = world.onset("heal", vnfc_target("c1"), "v-1", value=None)
    first = one(await world.engine.handle(first_onset))
    await world.finish(first, after_s=60.0)
    await world.engine.handle(world.abated(first_onset))

    held = one(await world.engine.handle(world.onset("heal", vnfc_target("c1"), "v-2")))
    assert held.verdict == "queued"
    assert "the next is allowed in 9m" in guard(held, "frequency")[1]
    assert one(await world.advance(540.0)).approved


async def test_a_blackout_window_queues_until_it_closes(redis: Any, keys: Keys) -> None:
    # START (2023-11-14 22:13:20 UTC) falls in a window opening daily at 22:00 for 1h.
    text = policy("heal", SILENT) + (
        "  action: {type: heal}\n"
        "  guards: {blackout: [{cron: '0 22 * * *', duration: 1h, timezone: UTC}]}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    held = one(await world.engine.handle(world.onset("heal", vnfc_target("c1"), value=None)))
    assert held.verdict == "queued" and "46m40s more" in guard(held, "blackout")[1]
    assert one(await world.advance(46 * 60 + 40)).approved


async def test_outside_its_maintenance_windows_a_policy_waits_for_the_next(
    redis: Any, keys: Keys
) -> None:
    text = policy("heal", SILENT) + (
        "  action: {type: heal}\n"
        "  guards: {maintenance: [{cron: '30 23 * * *', duration: 30m, timezone: UTC}]}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    held = one(await world.engine.handle(world.onset("heal", vnfc_target("c1"), value=None)))
    assert "the next opens in 1h16m" in guard(held, "maintenance")[1]
    assert one(await world.advance(76 * 60 + 40)).approved


async def test_the_blast_radius_breaker_stops_and_escalates(redis: Any, keys: Keys) -> None:
    text = policy("heal", SILENT) + (
        "  action: {type: heal}\n"
        "  guards: {blast_radius: {vnfcs: 50%}}\n"
        "  notify: {url: 'http://127.0.0.1:9/hook'}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2"), ("c3", "h3")])
    assert one(await world.engine.handle(world.onset("heal", vnfc_target("c1"), "v1"))).approved

    decisions = await world.engine.handle(world.onset("heal", vnfc_target("c2"), "v2"))

    heal = one(decisions, Action.HEAL)
    assert heal.verdict == "denied"
    assert "2 of 3 VNFCs of VNF fw1 fail at once" in guard(heal, "blast_radius")[1]
    assert one(decisions, Action.NOTIFY).parameters["result"] == "denied"


async def test_the_breaker_trips_on_a_spike_of_onsets(redis: Any, keys: Keys) -> None:
    text = policy("heal", SILENT) + (
        "  action: {type: heal}\n  guards: {blast_radius: {onsets: {max: 2, per: 1m}}}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [(f"c{i}", "h1") for i in range(5)])
    for i in range(2):
        await world.engine.handle(world.onset("heal", vnfc_target(f"c{i}"), f"v{i}"))

    third = one(await world.engine.handle(world.onset("heal", vnfc_target("c2"), "v2")))

    assert third.verdict == "denied"
    assert "3 ONSETs in 1m" in guard(third, "blast_radius")[1]


async def test_a_scale_out_the_vim_cannot_place_is_denied_by_the_capacity_check(
    redis: Any, keys: Keys
) -> None:
    # One host with one vCPU: a firewall VNFC (2 vCPUs) fits nowhere.
    tiny = SimulatedVim(ManualClock(), redis, keys, [SimHost("h1", vcpus=1, ram_mb=2048)])
    granter = VimGranter(VimRegistry([tiny]))
    world = await world_with(redis, keys, shipped_policies("vfw-scale-out"), granter=granter)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    denied = one(await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"))))

    assert denied.verdict == "denied"
    passed, detail = guard(denied, "capacity")
    assert not passed and "VIM sim" in detail


# --- autonomy -----------------------------------------------------------------


async def test_an_approve_policy_waits_for_the_operator(redis: Any, keys: Keys) -> None:
    text = policy("heal", SILENT) + "  action: {type: heal}\n  mode: approve\n"
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    waiting = one(await world.engine.handle(world.onset("heal", vnfc_target("c1"), value=None)))
    assert waiting.verdict == "awaiting_approval" and not waiting.approved
    assert await world.advance(5.0) == []
    await world.redis.hset(
        world.keys.policy_approvals(), waiting.id, json.dumps({"answer": "approve"})
    )
    approved = one(await world.advance(5.0))

    assert approved.id == waiting.id and approved.approved


@pytest.mark.parametrize(("default", "approved"), [("approve", True), ("reject", False)])
async def test_an_unanswered_approval_takes_its_default_at_the_timeout(
    redis: Any, keys: Keys, default: str, approved: bool
) -> None:
    text = policy("heal", SILENT) + (
        "  action: {type: heal}\n  mode: approve\n"
        f"  approval: {{timeout: 1m, default: {default}}}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    waiting = one(await world.engine.handle(world.onset("heal", vnfc_target("c1"), value=None)))

    for _ in range(11):
        await world.advance(5.0)
    answered = one(await world.advance(5.0))

    assert answered.id == waiting.id and answered.approved is approved
    assert answered.verdict == ("approved" if approved else "rejected")
    assert "nobody answered within 1m" in answered.reason


async def test_a_dry_run_policy_decides_and_records_but_runs_nothing(
    redis: Any, keys: Keys
) -> None:
    text = policy("heal", SILENT) + "  action: {type: heal}\n  mode: dry_run\n"
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    onset = world.onset("heal", vnfc_target("c1"), value=None)

    decision = one(await world.engine.handle(onset))
    assert decision.verdict == "dry_run" and not decision.approved
    assert await world.advance(600.0) == [], "no follow-up: nothing ran"
    await world.engine.handle(world.abated(onset))

    record = await world.engine.audit.episode_of(decision.id)
    assert record is not None and record.episode.result == "dry_run"


async def test_an_operator_can_disable_a_policy_and_opt_a_vnf_out(redis: Any, keys: Keys) -> None:
    world = await world_with(redis, keys, shipped_policies("vfw-heal"))
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    await world.redis.hset(world.keys.policy_modes(), "vfw-heal", "disabled")
    assert await world.engine.handle(world.onset("vfw-heal", vnfc_target("c1"), "v1")) == []

    await world.redis.hdel(world.keys.policy_modes(), "vfw-heal")
    await world.redis.hset(world.keys.policy_optouts(), "vnf:fw1", "change freeze")
    held = one(await world.engine.handle(world.onset("vfw-heal", vnfc_target("c2"), "v2")))
    assert held.verdict == "queued"
    assert "automation is off for vnf:fw1: change freeze" in guard(held, "opt_out")[1]
    await world.redis.hdel(world.keys.policy_optouts(), "vnf:fw1")
    assert one(await world.advance(30.0)).approved


# --- triggers ----------------------------------------------------------------


async def test_a_trigger_combines_conditions_with_all_and_not(redis: Any, keys: Keys) -> None:
    text = policy("combo", "") + (
        "  conditions:\n"
        "    - {name: cpu, kpi: vnf_cpu_utilisation, scope: vnf, op: '>', threshold: 75}\n"
        "    - {name: latency, kpi: vnf_latency, scope: vnf, op: '>', threshold: 0.05}\n"
        "    - {name: draining, kpi: vnf_draining, scope: vnf, op: '>', threshold: 0}\n"
        "  trigger: {all: [cpu, latency, {not: draining}]}\n"
        "  action: {type: scale_out, aspect: fw-scale}\n"
    )
    world = await world_of(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    target = vnf_target("fw1")
    draining = world.onset("combo", target, "v-drain", condition="draining")

    cpu = world.onset("combo", target, "v-cpu", condition="cpu")
    latency = world.onset("combo", target, "v-lat", condition="latency")
    assert await world.engine.handle(cpu) == []
    await world.engine.handle(draining)
    assert await world.engine.handle(latency) == []
    [decision] = await world.engine.handle(world.abated(draining))

    assert decision.approved and decision.action is Action.SCALE_OUT
