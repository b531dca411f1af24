"""Chaos: the policy worker and the actuator killed with SIGKILL at random, 54 operations on.

Two real processes (``nfv-assure run --role policy``, ``--role actuator``)
share nothing but Redis, the simulated cloud included. The test plays the
analytics stage: nine firewalls are each driven up three scale steps and
down three, one ONSET at a time (and its ABATED once the step is done).
Meanwhile one of the two processes, drawn at random, is killed with
SIGKILL at random moments and started again. Afterwards, counted from the
simulated VIM's own call log, every scale-out decision created exactly one
server and every scale-in deleted exactly one, each decision has exactly
one operation, completed, and no decision is missing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis.exceptions import ResponseError

from actuator.idempotency import op_id_for
from assure.platform import Platform
from assure.settings import Settings
from bus.clock import WallClock
from bus.contracts import (
    Decision,
    Evidence,
    OpResult,
    OpState,
    Target,
    TargetKind,
    Violation,
    ViolationStatus,
)
from bus.keys import Keys
from bus.redis import reply_text
from bus.streams import StreamPublisher, read_all
from tests.vnfm_support import eventually

VNFS = 9
STEPS = 3  # up from 2 VNFCs to 5 (the VDU's max), then down again: 6 operations per VNF

POLICIES = """\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: chaos-out}
spec:
  target: {vnfd: vfw}
  conditions:
    - {name: cpu-high, kpi: vnf_cpu_utilisation, scope: vnf, aggregate: avg,
       op: ">", threshold: 75, clear: 60, for: 0s}
  action: {type: scale_out, aspect: fw-scale, steps: 1}
  verify: 1h
  guards: {cooldown: 1s}
---
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: chaos-in}
spec:
  target: {vnfd: vfw}
  conditions:
    - {name: cpu-low, kpi: vnf_cpu_utilisation, scope: vnf, aggregate: avg,
       op: "<", threshold: 25, clear: 35, for: 0s}
  action: {type: scale_in, aspect: fw-scale, steps: 1}
  verify: 1h
  guards: {cooldown: 1s}
"""

ENV = {
    "NFVA_VIM_BOOT": "300ms",
    "NFVA_VIM_HOSTS": "6",
    "NFVA_VIM_HOST_VCPUS": "64",
    "NFVA_ACTUATOR_LEASE_TTL": "3s",
    "NFVA_ACTUATOR_DECISION_MAX_AGE": "1h",
    "NFVA_POLICY_TICK": "200ms",
    "NFVA_POLICY_RELOAD_INTERVAL": "0s",
}


class Role:
    """One ``nfv-assure run --role ROLE`` process, killed and started again on demand.

    It is up once it reads ``stream`` as a consumer of its group (its pid in its name).
    """

    def __init__(self, role: str, stream: str, env: dict[str, str], logs: Path) -> None:
        self.role = role
        self.stream = stream
        self.env = env
        self.logs = logs
        self.started = 0
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.started += 1
        log = (self.logs / f"{self.role}-{self.started}.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "assure", "run", "--role", self.role,
            env=self.env, stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        log.close()

    async def up(self, redis: Any) -> bool:
        assert self.process is not None
        assert self.process.returncode is None, self.tail()
        try:
            consumers = await redis.xinfo_consumers(self.stream, self.role)
        except ResponseError:  # no stream or group yet
            return False
        names = [reply_text(c["name"]) for c in consumers]
        return any(f"-{self.process.pid}-" in name for name in names)

    async def kill(self) -> None:
        assert self.process is not None
        assert self.process.returncode is None, self.tail()
        self.process.send_signal(signal.SIGKILL)
        assert await self.process.wait() == -signal.SIGKILL

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)

    def tail(self) -> str:
        return (self.logs / f"{self.role}-{self.started}.log").read_text()[-3000:]


def violation(vnf_id: str, policy: str, n: int, status: ViolationStatus) -> Violation:
    now = WallClock().now()
    high = policy == "chaos-out"
    return Violation(
        id=f"v-{vnf_id}-{n}", status=status, policy=policy,
        condition="cpu-high" if high else "cpu-low",
        target=Target(TargetKind.VNF, vnf_id, vnf=vnf_id, vnfd="vfw"),
        evidence=Evidence(value=90.0 if high else 10.0, values={}, window_s=0.0,
                          threshold=75.0 if high else 25.0),
        started_at=now, at=now, request_id=f"req-{vnf_id}-{n}",
    )  # fmt: skip


@pytest.mark.timeout(600)
async def test_killed_workers_lose_no_decision_and_run_none_twice(
    redis: Any, redis_url: str, keys: Keys, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "chaos.yaml").write_text(POLICIES)
    env = {
        **os.environ, **ENV, "REDIS_URL": redis_url, "NFVA_REDIS_PREFIX": keys.prefix,
        "NFVA_POLICY_POLICY_DIR": str(tmp_path / "policies"),
    }  # fmt: skip
    settings = dataclasses.replace(
        settings, vim=dataclasses.replace(settings.vim, boot=0.3, hosts=6, host_vcpus=64)
    )
    platform = await Platform.open(settings, WallClock())
    roles = [
        Role("policy", keys.stream("violations"), env, tmp_path),
        Role("actuator", keys.stream("decisions"), env, tmp_path),
    ]
    seed = random.SystemRandom().randrange(1 << 32)
    chance = random.Random(seed)
    kills: list[str] = []
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        vnf_ids = []
        for i in range(VNFS):
            vnf, op = await platform.vnfm.instantiate("vfw", f"chaos-{i}")
            assert op.state is OpState.COMPLETED, op.error
            vnf_ids.append(vnf.id)
        sim = platform.sims[vnf.vim]
        for role in roles:
            await role.start()
        publisher = StreamPublisher(redis, keys.stream("violations"))
        plan = ["chaos-out"] * STEPS + ["chaos-in"] * STEPS
        done = dict.fromkeys(vnf_ids, 0)  # steps completed per VNF
        sent: dict[str, Violation] = {}

        async def drive() -> None:
            """One step at a time per VNF: ONSET, then ABATED once the VNF has scaled."""
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 240
            while any(n < len(plan) for n in done.values()):
                if killer.done():
                    killer.result()  # a role that stopped by itself, or never came up
                if loop.time() > deadline:
                    stuck = [v for v, n in done.items() if n < len(plan)]
                    raise AssertionError(
                        f"stuck at {done} (seed {seed}, kills {kills}): {await why(stuck)}"
                    )
                for vnf_id, n in done.items():
                    if n == len(plan):
                        continue
                    if vnf_id not in sent:
                        sent[vnf_id] = violation(vnf_id, plan[n], n, ViolationStatus.ONSET)
                        await publisher.publish(sent[vnf_id])
                        continue
                    vnf = await platform.inventory.get(vnf_id)
                    wanted = 2 + (n + 1 if n < STEPS else 2 * STEPS - n - 1)
                    if len(vnf.vnfcs) == wanted:
                        onset = sent.pop(vnf_id)
                        await publisher.publish(msgspec.structs.replace(
                            onset, status=ViolationStatus.ABATED, at=WallClock().now()
                        ))  # fmt: skip
                        done[vnf_id] = n + 1
                await asyncio.sleep(0.2)

        async def why(stuck: list[str]) -> str:
            said = []
            for vnf_id in stuck:
                said.append(f"loop {vnf_id}: {await redis.hgetall(keys.policy_loop(vnf_id))!r}")
                for stream in ("decisions", "op_results", "violations"):
                    said += [
                        f"{stream}: {m}"
                        for _, m in await read_all(redis, keys.stream(stream))
                        if vnf_id in repr(m)
                    ]
                said.append(f"ops: {await platform.ops.list(vnf_id)}")
            for stream in ("decisions", "op_results", "violations"):
                dead = await redis.xrange(keys.dead_letters(stream))
                said.append(f"dead letters of {stream}: {dead}")
            return "\n".join(said)

        async def chaos() -> None:
            """Kill a role at a random moment once it is up, and start it again."""
            while True:
                role = chance.choice(roles)
                try:
                    await eventually(lambda role=role: role.up(redis), timeout_s=120)
                except AssertionError as exc:
                    raise AssertionError(f"{role.role} not reading: {role.tail()}") from exc
                await asyncio.sleep(chance.uniform(0.2, 3.0))
                await role.kill()
                kills.append(role.role)
                await role.start()

        killer = asyncio.create_task(chaos())
        try:
            await drive()
        finally:
            killer.cancel()
            await asyncio.gather(killer, return_exceptions=True)
        assert len(kills) >= 5, f"only {kills} were killed (seed {seed})"

        decisions = {
            m.id: m
            for _, m in await read_all(redis, keys.stream("decisions"))
            if isinstance(m, Decision) and m.approved
        }
        assert len(decisions) == VNFS * len(plan), f"seed {seed}, kills {kills}"

        async def every_result() -> dict[str, list[OpResult]]:
            results: dict[str, list[OpResult]] = {}
            for _, m in await read_all(redis, keys.stream("op_results")):
                if isinstance(m, OpResult):
                    results.setdefault(m.decision_id, []).append(m)
            return results

        results = await every_result()
        assert set(results) == set(decisions)
        # A result may be published twice (a kill between publishing and recording
        # it), never for two operations.
        for decision_id, published in results.items():
            assert {(r.op_id, r.state) for r in published} == {
                (op_id_for(decision_id), OpState.COMPLETED)
            }, f"seed {seed}, kills {kills}"
        ops = [o for v in vnf_ids for o in await platform.ops.list(v) if o.operation == "SCALE"]
        by_id = {o.id: o for o in ops}
        missing = [d for d in decisions.values() if op_id_for(d.id) not in by_id]
        extra = [o for o in ops if o.id not in {op_id_for(d) for d in decisions}]
        assert not missing and not extra, f"{missing}\n{extra}\n{results}"
        assert {o.state for o in ops} == {OpState.COMPLETED}

        # The VIM's own call log: per VNF, 2 servers instantiated and 3 scaled out,
        # each VNFC's server created once and, for the 3 scaled in, deleted once.
        calls = await sim.calls()
        created = Counter(c.metadata.get("vnfc") for c in calls if c.operation == "create")
        assert set(created.values()) == {1}, f"a server created twice (seed {seed}, {kills})"
        per_vnf = Counter(c.metadata.get("vnf") for c in calls if c.operation == "create")
        assert per_vnf == dict.fromkeys(vnf_ids, 2 + STEPS)
        servers = {c.subject for c in calls if c.operation == "create"}
        deletes = Counter(c.subject for c in calls if c.operation == "delete" and not c.error)
        assert set(deletes.values()) == {1} and set(deletes) <= servers
        assert len(deletes) == VNFS * STEPS, f"seed {seed}, kills {kills}"
        for vnf_id in vnf_ids:
            assert len((await platform.inventory.get(vnf_id)).vnfcs) == 2
    finally:
        for role in roles:
            await role.stop()
        await platform.aclose()
