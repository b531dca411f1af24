"""The corpus of bad descriptors, onboarded through the CLI as a user would.

Every problem a corpus file expects (``# expect: PLACE @ LINE``) is printed
as ``FILE:LINE: PLACE: PROBLEM``; the command exits 1 without a traceback
and the catalogue holds nothing it did not hold before.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from assure.settings import DEFAULTS_DIR
from bus.keys import Keys

CORPUS = Path(__file__).parent / "corpus"
EXPECT = re.compile(r"^# expect: (?P<place>\S+) @ (?P<line>\d+)$", re.M)


def expectations(kind: str) -> dict[str, set[tuple[str, int]]]:
    files = sorted((CORPUS / kind).glob("*.yaml"))
    assert len(files) >= 3
    expected = {
        str(f): {(m["place"], int(m["line"])) for m in EXPECT.finditer(f.read_text())}
        for f in files
    }
    assert all(expected.values()), "every corpus file expects something"
    return expected


def nfv_assure(redis_url: str, keys: Keys, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "NFVA_REDIS_PREFIX": keys.prefix}
    return subprocess.run(
        [sys.executable, "-m", "assure", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def reported(stdout: str) -> dict[str, set[tuple[str, int]]]:
    """``FILE:LINE: PLACE: PROBLEM`` lines, by file."""
    found: dict[str, set[tuple[str, int]]] = {}
    for line in stdout.splitlines():
        match = re.match(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<place>\S+): .+$", line)
        assert match is not None, f"not a problem line: {line!r}"
        found.setdefault(match["file"], set()).add((match["place"], int(match["line"])))
    return found


async def stored(redis: Any, keys: Keys) -> set[str]:
    return {
        field.decode()
        for kind in ("vnfd", "nsd")
        for field in await redis.hkeys(keys.catalogue(kind))
    }


async def test_every_bad_vnfd_is_reported_by_place_and_line_and_nothing_is_stored(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    expected = expectations("vnfd")
    result = nfv_assure(redis_url, keys, "vnfd", "onboard", *expected)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    found = reported(result.stdout)
    for path, wanted in expected.items():
        assert wanted <= found.get(path, set()), (path, found.get(path))
    assert await stored(redis, keys) == set()


async def test_every_bad_nsd_is_reported_against_the_real_catalogue(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    vnfds = [str(DEFAULTS_DIR / "vnfds" / name) for name in ("vfw.yaml", "vlb.yaml")]
    good = nfv_assure(redis_url, keys, "vnfd", "onboard", *vnfds)
    assert good.returncode == 0, good.stdout + good.stderr
    before = await stored(redis, keys)
    assert before == {"vfw@1.0", "vlb@1.0"}

    expected = expectations("nsd")
    result = nfv_assure(redis_url, keys, "nsd", "onboard", "--json", *expected)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    out = json.loads(result.stdout)
    assert out["onboarded"] == []
    found: dict[str, set[tuple[str, int]]] = {}
    for p in out["problems"]:
        found.setdefault(p["file"], set()).add((p["place"], p["line"]))
    for path, wanted in expected.items():
        assert wanted <= found.get(path, set()), (path, found.get(path))
    assert await stored(redis, keys) == before


def test_validate_needs_no_platform_and_reports_the_same_places() -> None:
    expected = expectations("vnfd")
    # The flavour check needs the VIMs: validate leaves it to onboarding.
    local = {p: w for p, w in expected.items() if not p.endswith("flavour_too_big.yaml")}
    result = subprocess.run(
        [sys.executable, "-m", "assure", "vnfd", "validate", *local],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "REDIS_URL"},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    found = reported(result.stdout)
    for path, wanted in local.items():
        assert wanted <= found.get(path, set()), (path, found.get(path))


async def test_onboard_list_show_and_delete_from_the_command_line(
    redis: Any, redis_url: str, keys: Keys, tmp_path: Path
) -> None:
    vfw = DEFAULTS_DIR / "vnfds" / "vfw.yaml"
    vlb = DEFAULTS_DIR / "vnfds" / "vlb.yaml"
    edge = DEFAULTS_DIR / "nsds" / "edge.yaml"
    onboarded = nfv_assure(redis_url, keys, "vnfd", "onboard", str(vfw), str(vlb))
    assert onboarded.returncode == 0, onboarded.stderr
    assert onboarded.stdout.splitlines() == [
        "onboarded VNFD vfw version 1.0",
        "onboarded VNFD vlb version 1.0",
    ]
    # One VIM here: the shipped NSD keeps its two VNFs on different VIMs.
    one_site = edge.read_text().replace(
        "  - {type: anti_affinity, scope: vim, members: [fw, lb]}\n", ""
    )
    (tmp_path / "edge.yaml").write_text(one_site)
    assert (
        nfv_assure(redis_url, keys, "nsd", "onboard", str(tmp_path / "edge.yaml")).returncode == 0
    )

    listed = json.loads(nfv_assure(redis_url, keys, "vnfd", "list", "--json").stdout)
    assert [(e["id"], e["version"], e["acceptance"]) for e in listed] == [
        ("vfw", "1.0", "not_validated"),
        ("vlb", "1.0", "not_validated"),
    ]
    shown = json.loads(nfv_assure(redis_url, keys, "nsd", "show", "edge", "--json").stdout)
    assert (shown["versions"], shown["descriptor"]["vnfs"][0]["vnfd"]) == (["1.0"], "vfw")
    text = nfv_assure(redis_url, keys, "vnfd", "show", "vfw").stdout
    assert "acceptance: not_validated" in text and "kind: Vnfd" in text, "the YAML as onboarded"

    in_use = nfv_assure(redis_url, keys, "vnfd", "delete", "vlb")
    assert in_use.returncode == 1 and "Traceback" not in in_use.stderr
    assert "in use by NSD edge@1.0 (member lb)" in in_use.stderr
    assert nfv_assure(redis_url, keys, "nsd", "delete", "edge").returncode == 0
    assert nfv_assure(redis_url, keys, "vnfd", "delete", "vlb").returncode == 0
    assert await stored(redis, keys) == {"vfw@1.0"}
    missing = nfv_assure(redis_url, keys, "nsd", "show", "edge")
    assert missing.returncode == 1 and "NSD 'edge' is not onboarded" in missing.stderr
