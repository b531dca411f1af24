"""Hot reload: policy files changed on disk take effect without a restart; bad ones keep
their last good version, and say why."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assure.reloading import reloading
from bus.clock import ScaledClock
from bus.keys import Keys
from policy.conditions import conditions_of
from policy.reload import PolicyDirectory
from policy.schema import KpiPolicy
from tests.actuator_support import until
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


def write(path: Path, threshold: int = 75, steps: int = 1, name: str = "grow") -> None:
    text = POLICY.replace("THRESHOLD", str(threshold)).replace("STEPS", str(steps))
    path.write_text(text.replace("name: grow", f"name: {name}"))


def test_a_changed_file_replaces_its_policies_and_a_broken_one_keeps_its_last_version(
    tmp_path: Path,
) -> None:
    write(tmp_path / "grow.yaml")
    directory = PolicyDirectory(tmp_path)
    first = directory.poll()
    assert first is not None and [p.name for p in first.policies] == ["grow"]
    assert directory.poll() is None, "nothing changed"

    write(tmp_path / "grow.yaml", steps=2)
    second = directory.poll()
    assert second is not None and second.version != first.version
    assert second.policies[0].spec.chain()[0].action.model_dump()["steps"] == 2

    (tmp_path / "grow.yaml").write_text(POLICY.replace("THRESHOLD", "high").replace("STEPS", "1"))
    assert directory.poll() is None, "the version in force did not change"
    [problem] = directory.snapshot.problems
    assert problem.format().startswith(f"{tmp_path / 'grow.yaml'}:7:")
    assert "threshold" in problem.place
    assert directory.snapshot.policies == second.policies, "the last good version stays"

    write(tmp_path / "grow.yaml", steps=3)
    fixed = directory.poll()
    assert fixed is not None and not fixed.problems


def test_a_new_file_that_reuses_a_name_is_refused_and_a_removed_file_takes_its_policies(
    tmp_path: Path,
) -> None:
    write(tmp_path / "a.yaml")
    directory = PolicyDirectory(tmp_path)
    directory.poll()
    write(tmp_path / "b.yaml")  # the same policy name again
    write(tmp_path / "c.yaml", name="other")

    snapshot = directory.poll()
    assert snapshot is not None and [p.name for p in snapshot.policies] == ["grow", "other"]
    [clash] = snapshot.problems
    assert clash.file.endswith("b.yaml") and "duplicate policy name 'grow'" in clash.message

    (tmp_path / "a.yaml").unlink()
    (tmp_path / "b.yaml").unlink()
    gone = directory.poll()
    assert gone is not None and [p.name for p in gone.policies] == ["other"]


async def test_the_engine_acts_on_a_reloaded_policy_and_records_what_is_in_force(
    redis: Any, keys: Keys, tmp_path: Path
) -> None:
    write(tmp_path / "grow.yaml", steps=1)
    directory = PolicyDirectory(tmp_path)
    world = await world_with(redis, keys, [], reloader=directory)
    await world.engine.reload(directory)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    write(tmp_path / "grow.yaml", steps=2)
    (tmp_path / "broken.yaml").write_text("apiVersion: assure/v1\nkind: KpiPolicy\n")

    assert await world.engine.reload(directory)
    decision = one(await world.engine.handle(world.onset("grow", vnf_target("fw1"))))

    assert decision.parameters["steps"] == 2
    status = await redis.hgetall(keys.policy_status())
    assert status[b"policies"] == b'["grow"]'
    assert b"broken.yaml:1:1: metadata: required field is missing" in status[b"problems"]


async def test_a_role_built_from_the_policies_starts_again_when_its_conditions_change(
    tmp_path: Path,
) -> None:
    write(tmp_path / "grow.yaml", threshold=75)
    started: list[list[float]] = []
    stopped = 0

    def build(policies: Sequence[KpiPolicy]) -> Any:
        async def work(stop: asyncio.Event) -> None:
            nonlocal stopped
            started.append([c.threshold or 0 for c in conditions_of(policies)])
            await stop.wait()
            stopped += 1

        return work

    directory = PolicyDirectory(tmp_path)
    initial = directory.poll()
    assert initial is not None
    clock = ScaledClock(speed=1000)
    run = reloading(
        "test",
        initial.policies,
        build,
        key=conditions_of,
        directory=tmp_path,
        interval_s=10.0,
        clock=clock,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    try:
        await until(lambda: _true(len(started) == 1))
        write(tmp_path / "grow.yaml", threshold=90)
        await until(lambda: _true(len(started) == 2))
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)

    assert started == [[75.0], [90.0]]
    assert stopped == 2


async def _true(value: bool) -> bool:
    return value
