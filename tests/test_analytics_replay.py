"""Replay: recorded KPI history through the detectors, from a CSV or a real Prometheus.

The replay must raise what the running stage raises from the same samples:
one test feeds both and compares.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analytics.history import read_csv
from analytics.replay import replay
from assure.settings import DEFAULTS_DIR
from bus.contracts import Sample, SampleBatch, ViolationStatus
from bus.keys import Keys
from mano_core.inventory import Inventory
from policy.conditions import conditions_of
from policy.loader import load_policies
from tests.analytics_support import T0, analytics, vnf, vnfc
from tests.history_support import backfilled_prometheus, nfv_assure
from tests.redis_server import free_port

POLICIES = DEFAULTS_DIR / "policies"

CSV = """\
timestamp,vnf,vnfc,kpi,value,host
2024-05-01T10:00:00Z,fw-1,fw-1-a,vnf_cpu_utilisation,80,compute-1
2024-05-01T10:00:00Z,fw-1,fw-1-b,vnf_cpu_utilisation,90,compute-2
2024-05-01T10:00:20+00:00,fw-1,fw-1-a,vnf_cpu_utilisation,80,compute-1
2024-05-01T10:00:20,fw-1,fw-1-b,vnf_cpu_utilisation,nope,compute-2
1714557620,fw-1,fw-1-b,vnf_cpu_utilisation,90,compute-2
1714557630,fw-1,fw-1-a,vnf_cpu_utilisation,82,compute-1
1714557630,fw-1,fw-1-b,vnf_cpu_utilisation,92,compute-2
1714557640,fw-1,fw-1-a,vnf_cpu_utilisation,30,compute-1
yesterday,fw-1,fw-1-b,vnf_cpu_utilisation,92,compute-2
1714557640,fw-1,fw-1-b,vnf_cpu_utilisation,32,compute-2
"""
START = 1714557600.0  # 2024-05-01T10:00:00Z


def test_replay_of_a_csv_prints_each_onset_and_abated_with_its_evidence(tmp_path: Path) -> None:
    data = tmp_path / "history.csv"
    data.write_text(CSV)

    result = nfv_assure(
        "analytics", "replay", "--data", str(data), "--policies", str(POLICIES),
        "--vnfd", "vfw", "--json",
    )  # fmt: skip

    assert result.returncode == 1, result.stderr  # bad rows were skipped
    assert f"{data}:5: value 'nope' is not a number" in result.stderr
    assert f"{data}:10: timestamp 'yesterday' is neither ISO 8601 nor Unix seconds" in result.stderr
    out = json.loads(result.stdout)
    assert [(p["line"], p["file"]) for p in out["problems"]] == [(5, str(data)), (10, str(data))]
    events = out["events"]
    assert [(e["status"], e["policy"], e["target"]["id"]) for e in events] == [
        ("ONSET", "vfw-scale-out", "fw-1"),
        ("ABATED", "vfw-scale-out", "fw-1"),
    ]
    onset, abated = events
    assert (onset["started_at"], onset["at"], abated["at"]) == (START, START + 30, START + 40)
    assert onset["evidence"]["description"] == "avg(vnf_cpu_utilisation) 87 > 75 for 30s"
    assert onset["evidence"]["values"] == {"fw-1-a": 82.0, "fw-1-b": 92.0}
    assert onset["target"]["vnfd"] == "vfw"
    assert out["samples"] == 8


def test_the_human_form_names_time_status_policy_target_and_evidence(tmp_path: Path) -> None:
    data = tmp_path / "history.csv"
    data.write_text(
        CSV.replace(",host\n", ",host,vnfd\n")
        .replace("compute-1\n", "compute-1,vfw\n")
        .replace("compute-2\n", "compute-2,vfw\n")
    )
    result = nfv_assure("analytics", "replay", "--data", str(data), "--policies", str(POLICIES))
    assert result.stdout.splitlines() == [
        "2024-05-01T10:00:30Z ONSET  vfw-scale-out/cpu-high vnf:fw-1: "
        "avg(vnf_cpu_utilisation) 87 > 75 for 30s [since 2024-05-01T10:00:00Z]",
        "2024-05-01T10:00:40Z ABATED vfw-scale-out/cpu-high vnf:fw-1: "
        "avg(vnf_cpu_utilisation) 31 <= 60 after 40s [since 2024-05-01T10:00:00Z]",
    ]


def test_an_ns_column_gives_ns_scope_conditions_their_targets() -> None:
    from bus.conditions import ConditionSpec
    from bus.contracts import TargetKind

    text = """\
timestamp,vnf,vnfc,kpi,value,vnfd,ns
1714557600,fw-1,fw-1-a,vnf_cpu_utilisation,80,vfw,edge-1
1714557600,fw-1,fw-1-b,vnf_cpu_utilisation,60,vfw,edge-1
1714557600,lb-1,lb-1-a,vnf_cpu_utilisation,90,vlb,edge-1
1714557600,fw-2,fw-2-a,vnf_cpu_utilisation,0,vfw,
1714557610,fw-1,fw-1-a,vnf_cpu_utilisation,40,vfw,edge-1
1714557610,fw-1,fw-1-b,vnf_cpu_utilisation,40,vfw,edge-1
1714557610,lb-1,lb-1-a,vnf_cpu_utilisation,50,vlb,edge-1
1714557610,fw-2,fw-2-a,vnf_cpu_utilisation,0,vfw,
"""
    history = read_csv_text(text)
    assert not history.problems
    busy = ConditionSpec(
        policy="edge", name="ns-busy", kind="threshold", kpi="vnf_cpu_utilisation",
        scope=TargetKind.NS, op=">", threshold=75.0, clear=65.0,
    )  # fmt: skip
    events = replay(history.samples, [busy]).events
    # fw-1 is 70 (its two VNFCs), lb-1 90: the NS 80; fw-2 is in no NS.
    assert [(e.status, e.target.kind, e.target.id, e.evidence.value) for e in events] == [
        (ViolationStatus.ONSET, TargetKind.NS, "edge-1", 80.0),
        (ViolationStatus.ABATED, TargetKind.NS, "edge-1", 45.0),
    ]
    assert events[0].evidence.values == {"fw-1": 70.0, "lb-1": 90.0}


def test_an_ns_needs_its_vnf() -> None:
    text = "timestamp,vnf,vnfc,kpi,value,host,ns\n1714557600,,,host_cpu,80,compute-1,edge-1\n"
    (problem,) = read_csv_text(text).problems
    assert problem.message == "a row that names an ns names its vnf and vnfc too"


def read_csv_text(text: str) -> Any:
    from analytics.history import read_rows

    return read_rows(text.splitlines(keepends=True), "history.csv", vnfd=None)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty: expected a header line"),
        ("timestamp,vnf,kpi,value\n", "header lacks vnfc"),
        ("timestamp,vnf,vnfc,kpi,value,vnf\n", "header names vnf twice"),
    ],
)
def test_a_history_that_cannot_be_read_exits_2(tmp_path: Path, text: str, says: str) -> None:
    data = tmp_path / "history.csv"
    data.write_text(text)
    result = nfv_assure("analytics", "replay", "--data", str(data), "--policies", str(POLICIES))
    assert result.returncode == 2
    assert says in result.stderr


def test_rows_without_a_vnfd_need_one(tmp_path: Path) -> None:
    data = tmp_path / "history.csv"
    data.write_text(CSV)
    history = read_csv(data)
    assert {p.message for p in history.problems} >= {
        "no vnfd: give a vnfd column or a default VNFD"
    }


async def test_replay_raises_what_the_running_stage_raises(redis: Any, keys: Keys) -> None:
    conditions = conditions_of(load_policies(POLICIES).policies)
    fw = vnf("fw-1", [vnfc("a", host="h1"), vnfc("b", host="h2")], vnfd="vfw")
    await Inventory(redis, keys).save(fw)
    stage = analytics(redis, keys, conditions)
    batches = []
    for offset in range(0, 400, 5):
        cpu = 90.0 if 60 <= offset < 200 else (15.0 if offset >= 300 else 50.0)
        rps = {"a": 100.0} if offset >= 100 else {"a": 100.0, "b": 100.0}
        batch = SampleBatch(
            "scrape",
            T0 + offset,
            [
                *(_sample("vnf_cpu_utilisation", c, T0 + offset, cpu) for c in ("a", "b")),
                *(_sample("vnf_requests_per_second", c, T0 + offset, v) for c, v in rps.items()),
            ],
        )
        batches.append(batch)
    live = []
    for batch in batches:
        await stage.ingest(batch)
        live += await stage.evaluate(now=batch.collected_at)
    replayed = replay([s for b in batches for s in b.samples], conditions).events

    assert [(v.id, v.status, v.at) for v in replayed] == [(v.id, v.status, v.at) for v in live]
    assert {v.status for v in live} == {ViolationStatus.ONSET, ViolationStatus.ABATED}
    assert {v.policy for v in live} == {"vfw-scale-out", "vfw-scale-in", "vfw-heal"}


def _sample(kpi: str, vnfc_id: str, ts: float, value: float) -> Sample:
    host = "h1" if vnfc_id == "a" else "h2"
    return Sample(kpi, {"vnf": "fw-1", "vnfc": vnfc_id, "vnfd": "vfw", "host": host}, ts, value)


# --- a real Prometheus --------------------------------------------------------
@pytest.fixture(scope="module")
def prometheus() -> Iterator[tuple[str, float]]:
    """A real Prometheus whose TSDB holds ten minutes of a VNF's CPU (backfilled)."""
    with backfilled_prometheus() as served:
        yield served


def test_replay_of_a_prometheus_range_query(prometheus: tuple[str, float]) -> None:
    url, start = prometheus
    result = nfv_assure(
        "analytics", "replay", "--prometheus", url, "--from", str(start),
        "--to", str(start + 600), "--step", "15s", "--policies", str(POLICIES),
        "--vnfd", "vfw", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)["events"]
    assert [(e["status"], e["policy"]) for e in events] == [
        ("ONSET", "vfw-scale-out"),
        ("ABATED", "vfw-scale-out"),
    ]
    onset, abated = events
    # Hot from minute 2 (sample 8); the policy wants 30s of it.
    assert onset["started_at"] == start + 120 and onset["at"] == start + 150
    assert abated["at"] == start + 300


def test_an_unreachable_prometheus_exits_2() -> None:
    result = nfv_assure(
        "analytics", "replay", "--prometheus", f"http://127.0.0.1:{free_port()}",
        "--from", "0", "--to", "60", "--policies", str(POLICIES),
    )  # fmt: skip
    assert result.returncode == 2
    assert "api/v1/query_range" in result.stderr
