"""Backtest: recorded KPI history through the detectors and the shipped policies, no VIM.

The history is a firewall whose CPU is hot for ten minutes, then cold: the
shipped scale-out policy steps it up to the VNFD's max_instances, each
step once the shared cooldown (counted on the history's timestamps) has
passed, and the scale-in policy steps it down under its stabilisation
window. The same run reads the history from a CSV and from a real
Prometheus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assure.settings import DEFAULTS_DIR
from tests.history_support import backfilled_prometheus, nfv_assure

POLICIES = DEFAULTS_DIR / "policies"
START = 1714557600.0  # 2024-05-01T10:00:00Z


def history(rows_per_vnfc: int = 120) -> str:
    """Every 10s: CPU 90 from 60s to 700s, 50 before, 15 from 900s; traffic steady."""
    lines = ["timestamp,vnf,vnfc,kpi,value,host,vnfd"]
    for i in range(rows_per_vnfc):
        offset = 10 * i
        cpu = 90 if 60 <= offset < 700 else (15 if offset >= 900 else 50)
        for vnfc, host in (("fw-1-a", "compute-1"), ("fw-1-b", "compute-2")):
            ts = int(START) + offset
            lines.append(f"{ts},fw-1,{vnfc},vnf_cpu_utilisation,{cpu},{host},vfw")
            lines.append(f"{ts},fw-1,{vnfc},vnf_requests_per_second,100,{host},vfw")
    return "\n".join(lines) + "\n"


def backtest(tmp_path: Path, text: str, *args: str) -> Any:
    data = tmp_path / "history.csv"
    data.write_text(text)
    return nfv_assure(
        "policy", "backtest", "--data", str(data), "--policies", str(POLICIES), *args
    )  # fmt: skip


def failed_guards(decision: dict[str, Any]) -> list[str]:
    return [g["guard"] for g in decision["guards"] if not g["passed"]]


def test_every_decision_with_its_guards_at_the_history_timestamps(tmp_path: Path) -> None:
    result = backtest(tmp_path, history(), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    decisions = [
        (d["decided_at"] - START, d["verdict"], d["action"], d["parameters"].get("steps"),
         failed_guards(d))
        for d in out["decisions"]
    ]  # fmt: skip
    # Hot from 60s, for 30s: the first step at 90s. Each step is verified for
    # a minute, then the next waits for the 2m cooldown from the last completion.
    assert decisions == [
        (90.0, "approved", "scale_out", 1, []),
        (150.0, "queued", "scale_out", 1, ["cooldown"]),
        (210.0, "approved", "scale_out", 1, []),
        (270.0, "queued", "scale_out", 1, ["cooldown"]),
        (330.0, "approved", "scale_out", 1, []),
        (390.0, "denied", "scale_out", None, ["max_instances"]),
        # Cold from 900s for 60s; verified for 2m, then held by the 5m stabilisation.
        (960.0, "approved", "scale_in", 1, []),
        (1080.0, "queued", "scale_in", 1, ["stabilisation"]),
    ]
    first = out["decisions"][0]
    assert [g["guard"] for g in first["guards"]] == [
        "max_instances", "opt_out", "coordination", "in_flight", "cooldown", "capacity",
        "concurrency",
    ]  # fmt: skip
    assert first["target"] == {"kind": "vnf", "id": "fw-1", "vnf": "fw-1", "vnfd": "vfw",
                               "host": None}  # fmt: skip
    assert first["guards"][0]["detail"] == (
        "VDU fw: 2 -> 3 VNFCs (max_instances 5); aspect fw-scale level 0 -> 1"
    )
    # A queued decision keeps its id when it is finally approved.
    assert out["decisions"][1]["id"] == out["decisions"][2]["id"]
    episodes = {e["policy"]: e for e in out["episodes"]}
    assert episodes["vfw-scale-out"]["result"] == "denied"
    assert episodes["vfw-scale-out"]["closed_at"] - START == 390.0
    assert episodes["vfw-scale-in"]["result"] is None  # still open when the history ends
    assert (out["events"], out["samples"], out["start"], out["end"]) == (
        3, 480, START, START + 1190
    )  # fmt: skip


def test_the_human_form_names_time_verdict_action_target_and_each_guard(tmp_path: Path) -> None:
    result = backtest(tmp_path, history())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "2024-05-01T10:01:30Z approved          scale_out vnf:fw-1: vfw-scale-out: "
        "avg(vnf_cpu_utilisation) 90 > 75 for 30s: scale_out vnf:fw-1 (aspect=fw-scale, steps=1)"
    )
    assert lines[1] == (
        "    pass max_instances: VDU fw: 2 -> 3 VNFCs (max_instances 5); "
        "aspect fw-scale level 0 -> 1"
    )
    cooldown = "the last operation under scale:fw-scale ended 1m ago; cooldown 2m, 1m left"
    assert f"    FAIL cooldown: {cooldown}" in lines
    assert "8 decisions (4 approved) from 3 events of 480 samples" in result.stderr


def test_a_row_that_cannot_be_read_is_named_by_its_line_and_exits_1(tmp_path: Path) -> None:
    text = history().replace(f"{int(START) + 20},fw-1,fw-1-a,vnf_cpu_utilisation,50",
                             f"{int(START) + 20},fw-1,fw-1-a,vnf_cpu_utilisation,hot")  # fmt: skip
    result = backtest(tmp_path, text, "--json")
    assert result.returncode == 1
    assert f"{tmp_path / 'history.csv'}:10: value 'hot' is not a number" in result.stderr
    assert len(json.loads(result.stdout)["decisions"]) == 8  # the other rows are read


@pytest.mark.parametrize(
    ("text", "says"),
    [("", "empty: expected a header line"), ("timestamp,vnf,kpi,value\n", "header lacks vnfc")],
)
def test_a_history_that_cannot_be_read_exits_1(tmp_path: Path, text: str, says: str) -> None:
    result = backtest(tmp_path, text)
    assert result.returncode == 1
    assert says in result.stderr


def test_a_broken_policy_is_named_by_file_line_and_column(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "bad.yaml").write_text(
        (POLICIES / "vfw-heal.yaml").read_text().replace("verify: 1m", "verify: 1m\n  colour: red")
    )
    data = tmp_path / "history.csv"
    data.write_text(history())
    result = nfv_assure("policy", "backtest", "--data", str(data), "--policies", str(policies))
    assert result.returncode == 1
    assert f"{policies / 'bad.yaml'}:" in result.stderr and "colour" in result.stderr
    assert result.stdout == ""


def test_needs_a_history() -> None:
    result = nfv_assure("policy", "backtest", "--policies", str(POLICIES))
    assert result.returncode != 0
    assert "give --data FILE or --prometheus URL" in result.stderr


# --- a real Prometheus --------------------------------------------------------
@pytest.fixture(scope="module")
def prometheus() -> Iterator[tuple[str, float]]:
    with backfilled_prometheus() as served:
        yield served


def test_a_prometheus_range_query_is_backtested_on_its_timestamps(
    prometheus: tuple[str, float],
) -> None:
    url, start = prometheus
    result = nfv_assure(
        "policy", "backtest", "--prometheus", url, "--from", str(start), "--to", str(start + 600),
        "--step", "15s", "--policies", str(POLICIES), "--vnfd", "vfw", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    decisions = [
        (d["decided_at"] - start, d["verdict"], d["action"], failed_guards(d))
        for d in out["decisions"]
    ]
    # Hot from minute 2 for 30s: a step at 150s, verified for a minute, queued by
    # the cooldown until 270s, a second step; the CPU is back to normal at 300s.
    assert decisions == [
        (150.0, "approved", "scale_out", []),
        (210.0, "queued", "scale_out", ["cooldown"]),
        (270.0, "approved", "scale_out", []),
    ]
    (episode,) = out["episodes"]
    assert (episode["result"], episode["closed_at"] - start) == ("recovered", 300.0)
