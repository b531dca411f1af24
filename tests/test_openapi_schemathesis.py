"""The OpenAPI document matches the server: schemathesis against the running API.

Schemathesis reads ``/api/v1/openapi.json`` and sends generated requests
(valid and invalid) to every documented operation with an admin token;
the run fails on any 5xx, any response that breaks its documented schema,
status code, content type or headers. The event stream is left out: it
never ends, so no tool can read a whole response of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assure.platform import Platform
from assure.settings import Settings
from bus.clock import ScaledClock
from tests.api_support import Api, running_api

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


@pytest.fixture
async def api(settings: Settings, redis: Any) -> AsyncIterator[Api]:
    settings = dataclasses.replace(
        settings,
        vim=dataclasses.replace(settings.vim, boot=0.0, reboot=0.0),
        api=dataclasses.replace(settings.api, request_timeout=10.0),
    )
    platform = await Platform.open(settings, ScaledClock(50))
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        loaded = platform.load_policies()
        async with running_api(platform, loaded.policies) as running:
            yield running
    finally:
        await platform.aclose()


async def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
    api: Api, tmp_path: Path
) -> None:
    document = await api.get_json("/api/v1/openapi.json")
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(document))
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert binary is not None, "schemathesis comes with the dev extra"
    admin = api.auth()["Authorization"]
    process = await asyncio.create_subprocess_exec(
        binary, "run", str(schema),
        "--url", f"http://127.0.0.1:{api.client.port}",
        "-H", f"Authorization: {admin}",
        "--checks", CHECKS,
        "--exclude-path", "/api/v1/events",
        "--max-examples", "8",
        "--seed", "1",
        "--request-timeout", "15",
        "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,  # its cache of examples stays out of the checkout
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert " passed" in text and "Tested: " in text, text[-3000:]
