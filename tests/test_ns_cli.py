"""``nfv-assure ns``: a network service created, instantiated, scaled, healed and terminated
from the command line, on the platform's shared Redis and simulated clouds."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from assure.cli import main
from assure.settings import DEFAULTS_DIR, Settings

FAST = {"NFVA_VIM_BOOT": "1s", "NFVA_VIM_REBOOT": "1s"}


def run(settings: Settings, *args: str, code: int = 0) -> Any:
    assert settings.redis.url is not None
    env = {"REDIS_URL": settings.redis.url, "NFVA_REDIS_PREFIX": settings.redis.prefix, **FAST}
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def data(settings: Settings, *args: str, code: int = 0) -> Any:
    return json.loads(run(settings, *args, "--json", code=code).stdout)


def victim_vnfc(settings: Settings, server_id: str) -> str:
    vnfs = data(settings, "status")
    return str(next(c["id"] for v in vnfs for c in v["vnfcs"] if c["server_id"] == server_id))


def onboard(settings: Settings) -> None:
    vnfds = DEFAULTS_DIR / "vnfds"
    run(settings, "vnfd", "onboard", str(vnfds / "vfw.yaml"), str(vnfds / "vlb.yaml"))
    run(settings, "nsd", "onboard", str(DEFAULTS_DIR / "nsds" / "edge.yaml"))


def test_an_ns_from_create_to_delete_on_the_command_line(settings: Settings) -> None:
    onboard(settings)
    created = data(settings, "ns", "create", "edge", "shop", "--label", "tenant=blue",
                   "--version", "1.0", "--description", "the web shop")  # fmt: skip
    assert created["state"] == "NOT_INSTANTIATED" and created["labels"] == {"tenant": "blue"}
    assert (created["nsd_version"], created["description"]) == ("1.0", "the web shop")

    done = data(settings, "ns", "instantiate", "shop")
    assert done["operation"]["state"] == "COMPLETED"
    vnfs = done["ns"]["vnfs"]
    assert sorted(v["name"] for v in vnfs) == ["shop-fw-1", "shop-lb-1"]
    assert {v["vim"] for v in vnfs} == {"site-a", "site-b"}
    servers = data(settings, "sim", "servers")
    assert len(servers) == 4 and {s["site"] for s in servers} == {"site-a", "site-b"}

    listed = data(settings, "ns", "list")
    assert [(n["name"], n["state"]) for n in listed] == [("shop", "INSTANTIATED")]
    shown = run(settings, "ns", "show", "shop").stdout
    assert "shop (" in shown and "vnf shop-fw-1" in shown and "INSTANTIATE" in shown

    scaled = run(settings, "ns", "scale", "shop", "capacity", "out", "--steps", "2").stdout
    assert "SCALE" in scaled and ": COMPLETED" in scaled and "scale: capacity=2" in scaled
    assert len(data(settings, "sim", "servers")) == 6

    fw = next(v for v in vnfs if v["name"] == "shop-fw-1")
    victim = next(s for s in servers if s["site"] == fw["vim"])
    run(settings, "sim", "fault", "crash-server", victim["id"])
    healed = data(settings, "ns", "heal", "shop", "--vnf", "shop-fw-1")
    assert healed["operation"]["state"] == "COMPLETED"
    # One VNFC named, at one level: exactly that heal (a hard reboot).
    healed = data(settings, "ns", "heal", "shop", "--vnfc", victim_vnfc(settings, victim["id"]),
                  "--level", "hard_reboot")  # fmt: skip
    assert healed["operation"]["state"] == "COMPLETED"
    assert len(healed["operation"]["vnf_ops"]) == 1
    after = {s["id"]: s["status"] for s in data(settings, "sim", "servers")}
    assert after[victim["id"]] == "ACTIVE"

    terminated = data(settings, "ns", "terminate", "shop", "--forceful")
    assert terminated["operation"]["params"] == {"graceful": False}
    assert terminated["operation"]["state"] == "COMPLETED"
    assert terminated["ns"]["state"] == "NOT_INSTANTIATED"
    assert data(settings, "sim", "servers") == []
    assert "deleted NS shop" in run(settings, "ns", "delete", "shop").stdout
    assert run(settings, "ns", "list").stdout.strip() == "no NS instances"


def test_ns_commands_exit_1_with_the_reason(settings: Settings) -> None:
    onboard(settings)
    said = run(settings, "ns", "show", "nope", code=1).output
    assert "no NS instance has the id or name 'nope'" in said and "Traceback" not in said
    said = run(settings, "ns", "create", "nothing", "x", code=1).output
    assert "NSD 'nothing' is not onboarded" in said
    assert "--label" in run(settings, "ns", "create", "edge", "x", "--label", "v", code=2).output
    run(settings, "ns", "create", "edge", "shop")
    said = run(settings, "ns", "scale", "shop", "capacity", "out", code=1).output
    assert "NS shop is NOT_INSTANTIATED" in said

    # The firewall's first server is refused: the instantiate is rolled back, exit 1.
    run(settings, "sim", "fault", "api-errors", "--site", "site-a", "--operation", "create",
        "--kind", "permanent")  # fmt: skip
    said = run(settings, "ns", "instantiate", "shop", code=1).output
    assert "INSTANTIATE" in said and "ROLLED_BACK" in said and "injected permanent" in said
    assert data(settings, "sim", "servers") == []
    said = run(settings, "ns", "scale", "shop", "capacity", "in", code=1).output
    assert "NS shop is NOT_INSTANTIATED" in said
