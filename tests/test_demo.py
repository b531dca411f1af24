"""The demo scenario end to end: every expected action, in order, on the right target.

These run the real platform (collector scraping real HTTP exporters,
analytics, policy engine, actuator, all over a real Redis) on two simulated
sites in accelerated time, the firewall a member of a network service the
NFVO instantiated.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from assure.demo.plan import make_plan
from assure.demo.progress import Progress
from assure.demo.runner import DemoRunner
from assure.settings import DEFAULTS_DIR, Settings
from bus.clock import WallClock
from bus.contracts import OpState
from bus.keys import Keys
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.models import LcmOperation
from mano_core.nfvo.inventory import NsInventory
from mano_core.nfvo.records import NsOpState, NsState

SPEED = 30.0


async def test_all_four_actions_happen_in_order_on_the_right_targets(
    redis: Any, keys: Keys, settings: Settings
) -> None:
    out = io.StringIO()
    runner = DemoRunner(settings, make_plan(5), Progress(Console(file=out, width=200)), speed=SPEED)
    report = await runner.run()
    log = out.getvalue()

    assert report.ok, log + "\n" + json.dumps(report.to_json(), indent=1)
    actions = [a.action for a in report.actions]
    assert actions[0] == "scale_out" and actions[1] == "heal" and actions[-1] == "scale_in"
    assert set(actions[2:-1]) == {"migrate"}
    for a in report.actions:
        assert a.detected_at is not None and a.completed_at is not None
        assert a.fault_at < a.detected_at <= a.completed_at

    # What the platform recorded in Redis agrees with the report.
    (ns,) = await NsInventory(redis, keys).list()
    assert ns.state is NsState.INSTANTIATED
    assert [(o.operation, o.state) for o in ns.operations] == [("INSTANTIATE", NsOpState.COMPLETED)]
    inventory = Inventory(redis, keys)
    members = {v.member: await inventory.get(v.vnf_id or "") for v in ns.vnfs}
    assert {m.vim for m in members.values()} == {"site-a", "site-b"}, "one site each"
    vnf = members["fw"]
    assert {a.vnf for a in report.actions} == {vnf.id}, "every action on the firewall"
    ops = await OpOccStore(redis, keys, WallClock()).list(vnf.id, limit=100)
    by_kind: dict[LcmOperation, list[Any]] = {}
    for op in ops:
        by_kind.setdefault(op.operation, []).append(op)
        if op.operation is not LcmOperation.HEAL:
            assert op.state == OpState.COMPLETED, op
    heal = report.actions[1]
    # A crashed server refuses a soft reboot: the heal climbed to a hard reboot.
    heal_ops = sorted(by_kind[LcmOperation.HEAL], key=lambda op: op.started_at)
    assert [(op.operation_params["level"], op.state) for op in heal_ops] == [
        ("soft_reboot", OpState.FAILED),
        ("hard_reboot", OpState.COMPLETED),
    ]
    assert heal.vnfc is not None
    assert {op.operation_params["vnfc_id"] for op in heal_ops} == {heal.vnfc}, "the crashed VNFC"
    migrated = {a.vnfc for a in report.actions if a.action == "migrate"}
    degraded_host = report.actions[2].fault.split()[0]
    assert len(by_kind[LcmOperation.MIGRATE]) == len(migrated)
    assert all(c.host != degraded_host for c in vnf.vnfcs), "nothing left on the sick host"
    assert len(by_kind[LcmOperation.SCALE]) == 2, "one scale-out, one scale-in"
    assert len(vnf.vnfcs) == 2, "back to two VNFCs after the scale-in"
    assert "ONSET" in log and "ABATED" in log and "KPI" in log


def test_cli_json_run_with_a_malformed_policy_in_the_directory(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULTS_DIR / "policies", policies)
    (policies / "zz-broken.yaml").write_text("apiVersion: assure/v1\nkind: KpiPolicy\nspec: [\n")
    result = subprocess.run(
        [sys.executable, "-m", "assure", "demo", "--json", "--seed", "11",
         "--speed", str(SPEED), "--policies", str(policies)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    report = json.loads(result.stdout)  # stdout holds exactly one JSON object
    assert result.returncode == 0, result.stderr[-3000:]
    assert report["ok"] is True and report["seed"] == 11
    assert [a["action"] for a in report["actions"]][:2] == ["scale_out", "heal"]
    for a in report["actions"]:
        assert {"action", "vnf", "vnfc", "fault_at", "detected_at", "completed_at"} <= set(a)
    assert isinstance(report["objective_broken_seconds"], float)
    assert "zz-broken.yaml" in result.stderr, "the bad file is reported, the rest still runs"


def test_the_demo_fails_when_an_expected_action_does_not_happen(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULTS_DIR / "policies", policies)
    (policies / "vfw-heal.yaml").unlink()  # nothing will heal the crashed VNFC
    result = subprocess.run(
        [sys.executable, "-m", "assure", "demo", "--json", "--seed", "2",
         "--speed", "40", "--policies", str(policies)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr[-3000:]
    assert report["ok"] is False
    states = {a["action"]: a["state"] for a in report["actions"]}
    assert states["heal"] == "MISSING"
    assert states["scale_out"] == "COMPLETED", "the rest of the loop still worked"
    # The missing heal holds the next fault back only so long: the host still degrades.
    assert states["migrate"] == "COMPLETED"
