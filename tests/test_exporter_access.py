"""Exporters behind TLS and credentials, as the VNFD's ``exporter`` section configures them.

A real aiohttp exporter serves HTTPS with a certificate of a test CA,
requires a client certificate of that CA (mutual TLS) and a bearer token or
basic auth; the collector scrapes it with the settings of each VNF's VNFD
(certificates made by openssl here), over a real Redis and catalogue.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from bus.clock import ScaledClock
from bus.keys import Keys
from bus.sample_view import read_samples
from collector.exporter_access import ExporterAccess
from collector.service import Collector
from mano_core.catalogue import Catalogue
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from mano_core.vnfd import Exporter, parse_vnfd

ADDRESS = "127.77.8.1"
SHIPPED = Path(__file__).resolve().parents[1] / "assure/defaults/vnfds/vfw.yaml"
TOKEN = "t0ken"
GOOD_TEXT = "# TYPE vnf_cpu_utilisation gauge\nvnf_cpu_utilisation 42\n"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA, the exporter's certificate for ADDRESS and a client certificate, both of the CA."""
    d = tmp_path_factory.mktemp("pki")
    files = {name: str(d / f"{name}.pem") for name in
             ("ca", "ca_key", "server", "server_key", "client", "client_key")}  # fmt: skip
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test ca",
            "-keyout", files["ca_key"], "-out", files["ca"])  # fmt: skip
    for who, extra in (("server", f"subjectAltName=IP:{ADDRESS}"), ("client", "")):
        csr = str(d / f"{who}.csr")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}",
                "-keyout", files[f"{who}_key"], "-out", csr)  # fmt: skip
        ext = d / f"{who}.ext"
        ext.write_text(extra + "\n" if extra else "basicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", csr, "-CA", files["ca"], "-CAkey", files["ca_key"],
                "-CAcreateserial", "-days", "1", "-out", files[who],
                "-extfile", str(ext))  # fmt: skip
    return files


@pytest.fixture
async def exporter(pki: dict[str, str]) -> AsyncIterator[str]:
    """The HTTPS exporter (client certificate required); yields its URL."""

    async def metrics(request: web.Request) -> web.Response:
        basic = "Basic " + base64.b64encode(b"ops:pw").decode()
        if request.headers.get("Authorization") not in (f"Bearer {TOKEN}", basic):
            return web.Response(status=401, text="who are you")
        return web.Response(text=GOOD_TEXT)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki["ca"])
    context.load_cert_chain(pki["server"], pki["server_key"])
    context.verify_mode = ssl.CERT_REQUIRED
    site = web.TCPSite(runner, ADDRESS, 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://{ADDRESS}:{runner.addresses[0][1]}/metrics"
    finally:
        await runner.cleanup()


def vnfd_text(vnfd_id: str, exporter: str) -> str:
    text = SHIPPED.read_text().replace("\nid: vfw\n", f"\nid: {vnfd_id}\n")
    return text.replace("exporter: {port: 9273, path: /metrics}", f"exporter: {exporter}")


async def up_of(redis: Any, keys: Keys, collector: Collector) -> tuple[dict[str, float], Any]:
    report = await collector.scrape_cycle()
    written = [b for entry, b in await read_samples(redis, keys) if entry in report.entry_ids]
    up = {s.labels["vnfc"]: s.value for b in written for s in b.samples if s.kpi == "up"}
    return up, report


async def test_tls_and_credentials_come_from_each_vnfds_exporter_section(
    redis: Any, keys: Keys, tmp_path: Path, pki: dict[str, str], exporter: str
) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "wrong").write_text("not the token")
    (tmp_path / "password").write_text("pw")
    mtls = f"{{ca_file: {pki['ca']}, cert_file: {pki['client']}, key_file: {pki['client_key']}}}"
    port = exporter.rsplit(":", 1)[1].split("/", maxsplit=1)[0]
    https = f"port: {port}, scheme: https"
    vnfds = {
        "bearer": f"{{{https}, tls: {mtls}, bearer_token_file: {tmp_path / 'token'}}}",
        "basic": f"{{{https}, tls: {mtls}, "
                 f"basic_auth: {{username: ops, password_file: {tmp_path / 'password'}}}}}",
        "wrong": f"{{{https}, tls: {mtls}, bearer_token_file: {tmp_path / 'wrong'}}}",
        "nofile": f"{{{https}, tls: {mtls}, bearer_token_file: {tmp_path / 'absent'}}}",
        "nocert": f"{{{https}, tls: {{ca_file: {pki['ca']}}}, "
                  f"bearer_token_file: {tmp_path / 'token'}}}",
        "untrusted": f"{{{https}, tls: {{cert_file: {pki['client']}, "
                     f"key_file: {pki['client_key']}}}, bearer_token_file: {tmp_path / 'token'}}}",
    }  # fmt: skip
    catalogue, inventory = Catalogue(redis, keys), Inventory(redis, keys)
    for name, section in vnfds.items():
        await catalogue.onboard(parse_vnfd(vnfd_text(name, section)))
        vnfc = VnfcInstance(f"c-{name}", "fw", f"srv-{name}", "host-a", ADDRESS, exporter, 0.0)
        await inventory.save(VnfInstance(f"vnf-{name}", name, name, "sim",
                                         InstantiationState.INSTANTIATED, {}, [vnfc], 0.0, 0.0,
                                         vnfd_version="1.0"))  # fmt: skip
    collector = Collector(
        redis, keys, inventory, [], ScaledClock(speed=100), access=ExporterAccess(catalogue)
    )
    try:
        up, report = await up_of(redis, keys, collector)
        assert up == {"c-bearer": 1.0, "c-basic": 1.0, "c-wrong": 0.0, "c-nofile": 0.0,
                      "c-nocert": 0.0, "c-untrusted": 0.0}  # fmt: skip
        reasons = {n: next(e for t, e in report.errors.items() if f"c-{n}" in f"{t} {e}")
                   for n in ("wrong", "nofile", "nocert", "untrusted")}  # fmt: skip
        assert "HTTP 401" in reasons["wrong"]
        assert f"cannot read bearer_token_file {tmp_path / 'absent'}" in reasons["nofile"]
        assert "certificate" in reasons["untrusted"].lower()
        assert reasons["nocert"], "the exporter refused the handshake without a client cert"
        # A rotated token file is read on the next cycle.
        (tmp_path / "wrong").write_text(TOKEN)
        up, _ = await up_of(redis, keys, collector)
        assert up["c-wrong"] == 1.0 and up["c-bearer"] == 1.0
    finally:
        await collector.stop()


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"port": 1, "tls": {"ca_file": "/ca.pem"}}, "tls needs scheme https"),
        ({"port": 1, "scheme": "https", "tls": {"cert_file": "/c.pem"}},
         "cert_file and key_file go together"),
        ({"port": 1, "bearer_token_file": "/t", "basic_auth": {"username": "u",
                                                               "password_file": "/p"}},
         "exclude each other"),
    ],
)  # fmt: skip
def test_an_exporter_section_that_cannot_work_is_refused(
    section: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        Exporter.model_validate(section)
