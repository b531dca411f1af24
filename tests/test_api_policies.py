"""Policies replaced over REST: validated as files are, taken up by the running policy engine
and the analytics stage on their hot reload, kept over a restart, and dropped again; the
operator's mode over REST decides the next decision."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from assure.api.tokens import Role
from assure.platform import Platform
from assure.reloading import reloading
from assure.settings import Settings
from bus.clock import ScaledClock, WallClock
from bus.keys import Keys
from policy.conditions import conditions_of
from policy.reload import PolicyDirectory
from policy.replacements import PolicyReplacements
from policy.schema import KpiPolicy
from tests.actuator_support import until
from tests.api_support import Api, running_api
from tests.policy_support import one, vnf_target, world_with

POLICY = """\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: grow}
spec:
  target: {vnfd: vfw}
  conditions:
    - {name: cpu, kpi: vnf_cpu_utilisation, scope: vnf, op: ">", threshold: THRESHOLD}
  action: {type: scale_out, aspect: fw-scale, steps: STEPS}
"""


def text(threshold: int = 75, steps: int = 1) -> str:
    return POLICY.replace("THRESHOLD", str(threshold)).replace("STEPS", str(steps))


@dataclasses.dataclass
class World:
    api: Api
    directory: Path


@pytest.fixture
def reload_interval() -> float:
    return 5.0


@pytest.fixture
async def world(
    settings: Settings, redis: Any, tmp_path: Path, reload_interval: float
) -> AsyncIterator[World]:
    (tmp_path / "grow.yaml").write_text(text())
    policy = dataclasses.replace(
        settings.policy, policy_dir=tmp_path, reload_interval=reload_interval
    )
    settings = dataclasses.replace(settings, policy=policy)
    platform = await Platform.open(settings, WallClock())
    try:
        loaded = platform.load_policies()
        assert loaded.ok, loaded.problems
        async with running_api(platform, loaded.policies, policy_dir=tmp_path) as running:
            yield World(running, tmp_path)
    finally:
        await platform.aclose()


async def put(api: Api, path: str, body: str, role: Role = Role.OPERATOR) -> Any:
    headers = {**api.auth(role), "Content-Type": "application/yaml"}
    return await api.client.put(path, data=body, headers=headers)


async def test_a_replacement_is_validated_as_a_file_with_each_problem_placed(world: World) -> None:
    api = world.api
    path = "/api/v1/policies/grow"
    broken = await put(api, path, text().replace("threshold: 75", "threshold: high"))
    assert broken.status == 422
    assert broken.content_type == "application/problem+json"
    problem = await broken.json()
    assert problem["detail"].startswith("invalid policy: request:7:"), problem
    [error] = problem["errors"]
    assert error["place"] == "spec.conditions[0].threshold"
    assert (error["line"], isinstance(error["column"], int)) == (7, True)

    syntax = await put(api, path, "apiVersion: [assure/v1\n")
    assert syntax.status == 422
    assert (await syntax.json())["errors"][0]["place"] == "(yaml)"
    renamed = await put(api, path, text().replace("name: grow", "name: shrink"))
    assert renamed.status == 422
    assert "'grow'" in (await renamed.json())["detail"]
    two = await put(api, path, text() + "---\n" + text())
    assert two.status == 422
    assert "one KpiPolicy document" in (await two.json())["detail"]
    assert (await put(api, path, text(steps=2), Role.VIEWER)).status == 403
    assert (await put(api, "/api/v1/policies/nope", text())).status == 404
    as_json = await api.client.put(path, json={"policy": "x"}, headers=api.auth(Role.OPERATOR))
    assert as_json.status == 415

    shown = await api.get_json(path)
    assert shown["replaced"] is False, "nothing invalid was stored"
    assert await PolicyReplacements(api.deps.redis, api.deps.keys).texts() == {}


async def test_the_running_engine_takes_up_a_replacement_on_its_reload_and_a_dropped_one_too(
    world: World, redis: Any, keys: Keys
) -> None:
    api = world.api
    directory = PolicyDirectory(world.directory)
    engine_world = await world_with(redis, keys, [], reloader=directory)
    engine = engine_world.engine
    await engine.reload(directory)
    await engine_world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    await engine_world.add_vnf("fw2", [("c3", "h1"), ("c4", "h2")])

    replaced = await put(api, "/api/v1/policies/grow", text(steps=2))
    assert replaced.status == 200, await replaced.text()
    doc = await replaced.json()
    assert doc["replaced"] is True
    assert doc["policy"]["spec"]["action"]["steps"] == 2
    assert [p["replaced"] for p in await api.get_json("/api/v1/policies")] == [True]

    assert await engine.reload(directory), "the replacement changed the policies in force"
    first = one(await engine.handle(engine_world.onset("grow", vnf_target("fw1"), "v-1")))
    assert first.parameters["steps"] == 2
    assert first.verdict == "approved"

    mode = await api.client.put("/api/v1/policies/grow/mode", json={"mode": "dry_run"},
                                headers=api.auth(Role.OPERATOR))  # fmt: skip
    assert (await mode.json())["mode"] == "dry_run"
    second = one(await engine.handle(engine_world.onset("grow", vnf_target("fw2"), "v-2")))
    assert second.verdict == "dry_run", "the mode is read at each decision, no reload needed"

    drop = "/api/v1/policies/grow/replacement"
    dropped = await api.client.delete(drop, headers=api.auth(Role.OPERATOR))
    assert dropped.status == 200
    assert (await dropped.json())["replaced"] is False
    assert await engine.reload(directory)
    assert engine.policies[0].spec.chain()[0].action.model_dump()["steps"] == 1
    again = await api.client.delete(drop, headers=api.auth(Role.OPERATOR))
    assert again.status == 404


async def test_a_replacement_survives_a_restart_of_the_engine(
    world: World, redis: Any, keys: Keys
) -> None:
    assert (await put(world.api, "/api/v1/policies/grow", text(steps=3))).status == 200
    # A new worker starts on the files, and reads what is in force before any violation.
    fresh = await world_with(
        redis, keys, [], reloader=PolicyDirectory(world.directory), reload_s=3600.0
    )
    stop = asyncio.Event()
    stop.set()  # run reads what is in force first, then stops at once
    await fresh.engine.run(stop)
    assert fresh.engine.policies[0].spec.chain()[0].action.model_dump()["steps"] == 3


async def test_the_analytics_stage_starts_again_on_a_replacement_that_changes_its_conditions(
    world: World, redis: Any, keys: Keys
) -> None:
    started: list[list[float]] = []

    def build(policies: Sequence[KpiPolicy]) -> Any:
        async def work(stop: asyncio.Event) -> None:
            started.append([c.threshold or 0 for c in conditions_of(policies)])
            await stop.wait()

        return work

    run = reloading("analytics", [], build, key=conditions_of, directory=world.directory,
                    interval_s=10.0, clock=ScaledClock(speed=1000),
                    replacements=PolicyReplacements(redis, keys))  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    try:
        await until(lambda: _true(len(started) == 1))
        assert (await put(world.api, "/api/v1/policies/grow", text(threshold=90))).status == 200
        await until(lambda: _true(len(started) == 2))
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert started == [[75.0], [90.0]]


@pytest.mark.parametrize("reload_interval", [0.0])
async def test_a_replacement_is_refused_where_policies_do_not_hot_reload(world: World) -> None:
    refused = await put(world.api, "/api/v1/policies/grow", text(steps=2))
    assert refused.status == 409
    assert "reload_interval" in (await refused.json())["detail"]


async def _true(value: bool) -> bool:
    return value


async def test_the_api_shows_the_policies_the_directory_holds_now(world: World) -> None:
    api = world.api
    (world.directory / "shrink.yaml").write_text(text().replace("name: grow", "name: shrink"))

    async def listed() -> bool:
        return "shrink" in [p["name"] for p in await api.get_json("/api/v1/policies")]

    await until(listed)
    assert (await put(api, "/api/v1/policies/shrink", text(steps=2).replace(
        "name: grow", "name: shrink"))).status == 200  # fmt: skip
    (world.directory / "shrink.yaml").unlink()

    async def gone() -> bool:
        return (await api.client.get("/api/v1/policies/shrink", headers=api.auth())).status == 404

    await until(gone)
