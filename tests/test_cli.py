"""The command line as a user meets it: help, validation, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assure.cli import main
from assure.settings import DEFAULTS_DIR

POLICIES = DEFAULTS_DIR / "policies"


def nfv_assure(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "assure", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_top_level_help_lists_every_command() -> None:
    result = nfv_assure("--help")
    assert result.returncode == 0
    for command in ("demo", "run", "policy", "vnfd", "status", "ops"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["demo"], "--seed"),
        (["demo"], "--policies"),
        (["demo"], "--json"),
        (["run"], "--role"),
        (["policy", "validate"], "FILE:LINE:COL: PLACE: PROBLEM"),
        (["vnfd", "onboard"], "catalogue"),
        (["status"], "VNF instances"),
        (["ops"], "LCM operation occurrences"),
    ],
)
def test_each_subcommand_explains_itself(args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0
    assert says in result.output


def test_the_shipped_policies_validate() -> None:
    result = CliRunner().invoke(main, ["policy", "validate", str(POLICIES)])
    assert result.exit_code == 0, result.output


def test_a_malformed_policy_is_reported_with_file_place_and_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: assure/v1\n"
        "kind: KpiPolicy\n"
        "metadata: {name: broken}\n"
        "spec:\n"
        "  target: {vnfd: vfw}\n"
        "  conditions:\n"
        "    - name: cpu\n"
        "      kpi: vnf_cpu_utilisation\n"
        "      scope: vnf\n"
        "      op: '>'\n"
        "      threshold: high\n"
        "      for: 30\n"
        "  action: {type: scale_out, aspect: fw-scale}\n"
    )
    result = CliRunner().invoke(main, ["policy", "validate", str(bad), str(POLICIES)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any(
        str(bad) in line and "spec.conditions[0].threshold" in line and ":11:" in line
        for line in lines
    ), lines
    assert any("spec.conditions[0].for" in line for line in lines), lines
    assert all(str(bad) in line for line in lines), "only the bad file is reported"


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "syntax.yaml"
    bad.write_text("apiVersion: assure/v1\nkind: KpiPolicy\nmetadata: {name: [oops\n")
    result = CliRunner().invoke(main, ["policy", "validate", str(bad)])
    assert result.exit_code == 1
    assert str(bad) in result.output
    assert "line" in result.output.lower() or ":3:" in result.output


def test_vnfd_validate_reports_bad_descriptors(tmp_path: Path) -> None:
    good = DEFAULTS_DIR / "vnfds" / "vfw.yaml"
    assert CliRunner().invoke(main, ["vnfd", "validate", str(good)]).exit_code == 0
    bad = tmp_path / "vnfd.yaml"
    bad.write_text(good.read_text().replace("max_instances: 5", "max_instances: 1"))
    result = CliRunner().invoke(main, ["vnfd", "validate", str(bad)])
    assert result.exit_code == 1
    assert str(bad) in result.output
    assert "vdus[0]" in result.output


def test_state_commands_say_what_they_need_without_redis() -> None:
    result = CliRunner().invoke(main, ["status"], env={"REDIS_URL": ""})
    assert result.exit_code == 2
    assert "REDIS_URL" in result.output


def test_bad_settings_are_a_usage_error_naming_the_variable() -> None:
    result = CliRunner().invoke(main, ["status"], env={"NFVA_VIM_HOSTS": "many"})
    assert result.exit_code == 2
    assert "NFVA_VIM_HOSTS" in result.output


def test_an_unreachable_redis_is_one_clear_line_not_a_traceback() -> None:
    result = CliRunner().invoke(main, ["status"], env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.exit_code == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in result.output
    assert "Traceback" not in result.output
