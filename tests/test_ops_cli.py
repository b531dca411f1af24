"""``nfv-assure ops``: list occurrences, and retry, roll back, fail or cancel one by its id."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from click.testing import CliRunner

from assure.cli import main
from assure.platform import Platform
from assure.settings import Settings
from bus.clock import WallClock
from bus.contracts import OpState
from mano_core.models import LcmOperation


def instant(settings: Settings) -> Settings:
    vim = dataclasses.replace(settings.vim, boot=0.0, reboot=0.0, migrate=0.0)
    return dataclasses.replace(settings, vim=vim)


def env_of(settings: Settings) -> dict[str, str]:
    assert settings.redis.url is not None
    return {
        "REDIS_URL": settings.redis.url,
        "NFVA_REDIS_PREFIX": settings.redis.prefix,
        "NFVA_VIM_BOOT": "0s",
        "NFVA_VIM_REBOOT": "0s",
        "NFVA_VIM_MIGRATE": "0s",
    }


def failing_scale(settings: Settings, *, after: int) -> tuple[str, str]:
    """A vfw instance and a scale out of it left FAILED_TEMP: ``(vnf id, op id)``."""

    async def go() -> tuple[str, str]:
        platform = await Platform.open(settings, WallClock())
        try:
            await platform.onboard_dir(settings.policy.vnfd_dir)
            vnf, op = await platform.vnfm.instantiate("vfw", "fw-1")
            assert op.state is OpState.COMPLETED, op.error
            sim = platform.sims[platform.vims.default]
            await sim.fail_next("create", temporary=True, after=after)
            scale = await platform.vnfm.scale(vnf.id, "fw-scale", "out", 2)
            assert scale.state is OpState.FAILED_TEMP
            return vnf.id, scale.id
        finally:
            await platform.aclose()

    return asyncio.run(go())


def cli(settings: Settings, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(main, list(args), env=env_of(settings))
    assert result.exit_code == code, result.output
    return result


def test_retry_from_the_command_line_completes_the_operation(settings: Settings) -> None:
    settings = instant(settings)
    vnf_id, op_id = failing_scale(settings, after=0)
    said = cli(settings, "ops", "retry", op_id)
    assert f"{op_id} SCALE vnf={vnf_id} COMPLETED" in said.output
    listed = json.loads(cli(settings, "ops", "--json", "--vnf", vnf_id).output)
    assert [(o["operation"], o["state"]) for o in listed] == [
        ("SCALE", "COMPLETED"),
        ("INSTANTIATE", "COMPLETED"),
    ]
    assert f"{op_id} SCALE" in cli(settings, "ops").output


def test_rollback_and_fail_from_the_command_line(settings: Settings) -> None:
    settings = instant(settings)
    _, first = failing_scale(settings, after=1)
    said = cli(settings, "ops", "rollback", first, "--json")
    assert json.loads(said.output)["state"] == "ROLLED_BACK"
    _, second = failing_scale(settings, after=0)
    assert " FAILED" in cli(settings, "ops", "fail", second).output
    again = cli(settings, "ops", "fail", second, code=1)
    assert "only FAILED_TEMP is failed" in again.output


def test_cancel_settles_an_occurrence_whose_worker_stopped(settings: Settings) -> None:
    settings = instant(settings)

    async def left_running() -> str:
        platform = await Platform.open(settings, WallClock())
        try:
            op = await platform.ops.create("vnf-x", LcmOperation.HEAL, {}, op_id="orphan")
            await platform.ops.transition(op, OpState.PROCESSING)
            return op.id
        finally:
            await platform.aclose()

    op_id = asyncio.run(left_running())
    # Opening the platform for the action settles it first (start-up recovery)...
    said = cli(settings, "ops", "cancel", op_id, code=1)
    assert "FAILED_TEMP: only a running one is cancelled" in said.output
    missing = cli(settings, "ops", "cancel", "no-such-op", code=1)
    assert "operation no-such-op does not exist" in missing.output
