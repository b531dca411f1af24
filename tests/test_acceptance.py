"""Onboarding acceptance: a VNFD run in a sandbox under its load profile, validated or rejected."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

import pytest

from assure.acceptance import Acceptance
from assure.settings import DEFAULTS_DIR, Settings
from bus.clock import ScaledClock
from bus.keys import Keys
from mano_core.catalogue import Catalogue
from mano_core.errors import InvalidRequest
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.vim.simulated import SimHost, SimulatedVim
from mano_core.vnfd import parse_vnfd
from mano_core.vnfm import Vnfm

VFW = (DEFAULTS_DIR / "vnfds" / "vfw.yaml").read_text()
PROFILE = """load_profile:
  warmup: 30s
  phases:
    - {requests_per_second: 800, for: 1m}
    - {requests_per_second: 1400, for: 2m}
"""
assert PROFILE in VFW
QUICK = VFW.replace(
    PROFILE,
    "load_profile:\n  warmup: 10s\n  phases:\n    - {requests_per_second: 1200, for: 30s}\n",
)
HOT = QUICK.replace("id: vfw\n", "id: vfw-hot\n").replace(
    "requests_per_second: 1200", "requests_per_second: 1900"
)


async def accept(redis: Any, keys: Keys, settings: Settings, text: str) -> Any:
    catalogue = Catalogue(redis, keys)
    vnfd = parse_vnfd(text)
    await catalogue.onboard(vnfd, text)
    report = await Acceptance(redis, keys, catalogue, settings, speed=200).run(vnfd.id)
    return report, await catalogue.entry("vnfd", vnfd.id)


async def test_a_vnfd_meeting_its_objectives_is_validated_with_what_it_measured(
    redis: Any, keys: Keys, settings: Settings
) -> None:
    report, entry = await accept(redis, keys, settings, QUICK)
    assert report.validated, report.reasons
    assert report.measurements >= 5
    assert entry.acceptance == "validated" and entry.accepted_on == "sandbox"
    # Two VNFCs share 1200 rps: about 60% CPU each, p95 about 25 ms.
    assert 55 < entry.measured["vnf_cpu_utilisation"] < 70
    assert 0.02 < entry.measured["vnf_request_latency_seconds"] < 0.035
    assert entry.measured == report.measured
    # The sandbox left nothing: no VNF in the deployment, no sandbox records.
    assert await Inventory(redis, keys).list() == []
    assert [k async for k in redis.scan_iter(match=f"{keys.prefix}:sandbox:*")] == []


async def test_a_vnfd_breaking_an_objective_under_its_load_is_rejected_with_reasons(
    redis: Any, keys: Keys, settings: Settings
) -> None:
    report, entry = await accept(redis, keys, settings, HOT)
    assert not report.validated
    assert entry.acceptance == "rejected"
    assert any(
        r.startswith("vnf_cpu_utilisation was ") and "at 1900 rps (objective <= 75)" in r
        for r in entry.reasons
    ), entry.reasons
    assert entry.measured["vnf_cpu_utilisation"] > 90


async def test_a_vnfd_without_a_load_profile_cannot_be_accepted(
    redis: Any, keys: Keys, settings: Settings
) -> None:
    catalogue = Catalogue(redis, keys)
    await catalogue.onboard(parse_vnfd(VFW.replace(PROFILE, "")))
    with pytest.raises(InvalidRequest, match="declares no load_profile"):
        await Acceptance(redis, keys, catalogue, settings).run("vfw")
    assert (await catalogue.entry("vnfd", "vfw")).acceptance == "not_validated"


async def test_a_vnfd_not_validated_is_instantiated_with_a_warning(
    redis: Any, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ScaledClock(speed=400)
    vim = SimulatedVim(clock, redis, keys, [SimHost("h1", 16, 65536)])
    await vim.add_image("fw-image", "1.0")
    catalogue = Catalogue(redis, keys)
    await catalogue.onboard(parse_vnfd(VFW))
    vnfm = Vnfm(vim, Inventory(redis, keys), catalogue, OpOccStore(redis, keys, clock), clock)
    with caplog.at_level(logging.WARNING, logger="mano_core.vnfm"):
        vnf, op = await vnfm.instantiate("vfw", "fw-1")
    assert op.state == "COMPLETED"
    assert "instantiating vfw@1.0, which onboarding acceptance has not validated" in caplog.text
    await vnfm.terminate(vnf.id)


def test_accept_from_the_command_line_exits_by_its_verdict(
    redis_url: str, keys: Keys, tmp_path: Any
) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "NFVA_REDIS_PREFIX": keys.prefix}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "assure", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )

    (tmp_path / "hot.yaml").write_text(HOT)
    assert cli("vnfd", "onboard", str(tmp_path / "hot.yaml")).returncode == 0
    rejected = cli("vnfd", "accept", "vfw-hot", "--speed", "200", "--json")
    assert rejected.returncode == 1, rejected.stderr
    assert json.loads(rejected.stdout)["validated"] is False
    assert "load: 1900 rps for 30s" in rejected.stderr, "progress goes to stderr"
    listed = json.loads(cli("vnfd", "list", "--json").stdout)
    assert [(e["id"], e["acceptance"]) for e in listed] == [("vfw-hot", "rejected")]
