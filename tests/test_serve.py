"""``nfv-assure serve``: every role and the API in one process, its state kept on disk."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.serve_support import serving


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["NFVA_REDIS_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "assure", *args],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip


async def _status(url: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        return response.status


async def test_first_start_prints_one_admin_token_and_a_restart_keeps_the_tokens(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with serving(data) as first:
        admin = first.first_token()
        assert admin is not None, "".join(first.stderr)
        made = await asyncio.to_thread(_cli, "token", "create", "--role", "viewer", data_dir=data)
        assert made.returncode == 0, made.stderr
        viewer = made.stdout.strip()
        assert made.stdout == viewer + "\n", "the token and nothing else on stdout"
        listed = await asyncio.to_thread(_cli, "token", "list", data_dir=data)
        assert "viewer" in listed.stdout and "admin" in listed.stdout
    async with serving(data) as second:
        assert second.first_token() is None, "the first token is shown once"
        # Tokens live in the persisted Redis: both still authenticate.
        for token in (admin, viewer):
            assert await _status(second.url + "/api/v1/openapi.json", token) == 200


async def test_a_second_serve_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with serving(data):
        other = await asyncio.to_thread(_cli, "serve", "--data-dir", str(data), data_dir=data)
    assert other.returncode == 1
    assert "in use by another nfv-assure process" in other.stderr


ALERT_POLICY = """\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: heal-on-alert}
spec:
  target: {vnfd: vfw}
  mode: dry_run
  trigger: {alert: VnfcDown}
  action: {type: heal}
"""


async def test_a_restart_on_the_same_data_directory_keeps_the_platforms_state(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "alert.yaml").write_text(ALERT_POLICY)
    env = {"NFVA_POLICY_POLICY_DIR": str(policies), "NFVA_VIM_BOOT": "0s"}
    async with serving(data, env) as first, aiohttp.ClientSession() as session:
        admin = first.first_token()
        assert admin is not None
        auth = {"Authorization": f"Bearer {admin}"}
        base = first.url + "/vnflcm/v2"
        create = {"vnfdId": "vfw", "vnfInstanceName": "kept"}
        async with session.post(f"{base}/vnf_instances", headers=auth, json=create) as made:
            vnf_id = (await made.json())["id"]
        async with session.post(f"{base}/vnf_instances/{vnf_id}/instantiate", headers=auth,
                                json={}) as started:  # fmt: skip
            occurrence = started.headers["Location"]
        for _ in range(300):
            async with session.get(first.url + occurrence, headers=auth) as reply:
                if (await reply.json())["operationState"] == "COMPLETED":
                    break
            await asyncio.sleep(0.1)
        async with session.get(f"{base}/vnf_instances/{vnf_id}", headers=auth) as reply:
            vnfc = (await reply.json())["instantiatedVnfInfo"]["vnfcResourceInfo"][0]["id"]
        notification = {
            "version": "4", "groupKey": "g", "status": "firing", "receiver": "r",
            "alerts": [{"status": "firing", "labels": {"alertname": "VnfcDown", "vnfc_id": vnfc},
                        "startsAt": "2026-01-01T00:00:00Z", "fingerprint": "kept-1"}],
        }  # fmt: skip
        async with session.post(first.url + "/api/v1/alerts", headers=auth,
                                json=notification) as reply:  # fmt: skip
            assert reply.status == 200
        for _ in range(300):
            async with session.get(first.url + "/api/v1/violations", headers=auth) as reply:
                if await reply.json():
                    break
            await asyncio.sleep(0.1)
        shipped = Path(__file__).resolve().parents[1] / "assure/defaults/vnfds/vfw.yaml"
        extra = tmp_path / "kept.yaml"
        extra.write_text(shipped.read_text().replace("\nid: vfw\n", "\nid: vfw-kept\n"))
        onboarded = await asyncio.to_thread(_cli, "vnfd", "onboard", str(extra), data_dir=data)
        assert onboarded.returncode == 0, onboarded.stderr
    async with serving(data, env) as second, aiohttp.ClientSession() as session:
        async with session.get(f"{second.url}/vnflcm/v2/vnf_instances/{vnf_id}",
                               headers=auth) as reply:  # fmt: skip
            kept = await reply.json()
        assert kept["instantiationState"] == "INSTANTIATED", "the inventory is kept"
        async with session.get(second.url + occurrence, headers=auth) as reply:
            assert (await reply.json())["operationState"] == "COMPLETED", "the history is kept"
        async with session.get(second.url + "/api/v1/violations", headers=auth) as reply:
            (still_open,) = await reply.json()
        assert still_open["target"]["id"] == vnfc, "the open violation is kept"
        listed = await asyncio.to_thread(_cli, "vnfd", "list", data_dir=data)
        assert "vfw-kept" in listed.stdout, "the catalogue is kept"
