"""The wire format: versioned, round-trips, and refuses what it does not know."""

from __future__ import annotations

import msgspec
import pytest

from bus.contracts import (
    Action,
    ContractError,
    Decision,
    Evidence,
    GuardResult,
    OpResult,
    OpState,
    Sample,
    SampleBatch,
    Target,
    TargetKind,
    Violation,
    ViolationStatus,
    decode,
    encode,
    to_builtins,
)
from bus.packing import pack_samples
from bus.units import format_duration, parse_duration

TARGET = Target(kind=TargetKind.VNFC, id="c1", vnf="v1", vnfd="vfw", host="h1")


@pytest.mark.parametrize(
    "message",
    [
        SampleBatch("scrape", 1.0, [Sample("cpu", {"vnf": "v1"}, 1.0, 50.0)]),
        Violation(
            id="x",
            status=ViolationStatus.ONSET,
            policy="p",
            condition="c",
            target=TARGET,
            evidence=Evidence(value=80.0, values={"c1": 80.0}, window_s=30, threshold=75),
            started_at=1.0,
            at=31.0,
            request_id="r",
        ),
        Decision(
            id="d",
            violation_id="x",
            policy="p",
            action=Action.HEAL,
            target=TARGET,
            parameters={"level": "reboot"},
            guards=[GuardResult("cooldown", True)],
            approved=True,
            reason="r",
            decided_at=2.0,
            request_id="r",
        ),
        OpResult(
            op_id="o",
            decision_id="d",
            vnf="v1",
            operation="HEAL",
            action=Action.HEAL,
            target=TARGET,
            state=OpState.COMPLETED,
            started_at=1.0,
            finished_at=2.0,
        ),
    ],
)
def test_every_contract_round_trips(message: object) -> None:
    assert decode(encode(message)) == message  # type: ignore[arg-type]


def test_the_encoding_names_kind_and_version() -> None:
    raw = msgspec.msgpack.decode(encode(SampleBatch("vim", 0.0, [])))
    assert raw["type"] == "samples.v1"


def test_unknown_versions_and_garbage_are_refused_clearly() -> None:
    future = msgspec.msgpack.encode({"type": "samples.v9", "source": "x"})
    with pytest.raises(ContractError, match=r"samples\.v9"):
        decode(future)
    with pytest.raises(ContractError):
        decode(b"\x00\x01garbage")


def test_a_packed_batch_reads_across_releases_with_and_without_its_collector() -> None:
    """A rolling upgrade: entries of the previous release name no collector, and its
    readers skip the field this one adds."""
    batch = pack_samples("scrape", 1.0, [Sample("cpu", {"vnfc": "c1"}, 1.0, 5.0)])
    raw = msgspec.msgpack.decode(encode(msgspec.structs.replace(batch, collector="collector-a")))
    assert raw["collector"] == "collector-a"
    del raw["collector"]
    assert decode(msgspec.msgpack.encode(raw)) == batch  # collector "" when not named

    class PreviousPackedBatch(msgspec.Struct, tag="samples.v2"):
        source: str
        collected_at: float
        complete: bool = True

    named = encode(msgspec.structs.replace(batch, complete=False, collector="collector-a"))
    previous = msgspec.msgpack.decode(named, type=PreviousPackedBatch)
    assert (previous.source, previous.complete) == ("scrape", False)


def test_json_form_is_plain_data() -> None:
    data = to_builtins(SampleBatch("vim", 0.0, [Sample("k", {}, 1.0, 2.0)]))
    assert data == {
        "type": "samples.v1",
        "source": "vim",
        "collected_at": 0.0,
        "samples": [["k", {}, 1.0, 2.0]],
    }


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("500ms", 0.5), ("1h", 3600), ("1.5m", 90)]
)
def test_durations_carry_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "5 minutes", "", "-1s"])
def test_durations_without_a_known_unit_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_durations_format_for_humans() -> None:
    assert [format_duration(s) for s in (45, 150, 3900)] == ["45s", "2m30s", "1h05m"]
