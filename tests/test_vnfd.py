"""VNF descriptors: the shipped one parses; every bad one names each place and line at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from mano_core.vnfd import DescriptorError, RecoveryLevel, Vnfd, load_vnfd, parse_vnfd

VFW = Path(__file__).resolve().parents[1] / "assure" / "defaults" / "vnfds" / "vfw.yaml"

VALID = """\
apiVersion: assure/v1
kind: Vnfd
id: lb
vdus:
  - id: web
    image: {name: web-image, version: "2.1"}
    flavour: {vcpus: 1, ram_mb: 512}
    min_instances: 1
    max_instances: 4
    exporter: {port: 9100}
  - id: db
    image: {name: db-image, version: "13"}
    flavour: {vcpus: 2, ram_mb: 4096, disk_gb: 20}
    min_instances: 1
    max_instances: 1
    start_order: 0
scaling_aspects:
  - {id: web-scale, deltas: {web: 1}, max_scale_level: 3}
"""


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(DescriptorError) as exc:
        parse_vnfd(text, "lb.yaml")
    assert all(p.file == "lb.yaml" for p in exc.value.problems)
    return [(p.place, p.line, p.message) for p in exc.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_shipped_vfw_descriptor_parses_with_what_the_vnfm_needs() -> None:
    vnfd = load_vnfd(VFW)
    fw = vnfd.vdu("fw")
    assert (fw.image.name, fw.image.version) == ("fw-image", "1.0")
    assert (fw.flavour.vcpus, fw.flavour.ram_mb, fw.flavour.disk_gb) == (2, 2048, 10)
    assert (fw.min_instances, fw.max_instances) == (2, 5)
    assert fw.exporter is not None and (fw.exporter.port, fw.exporter.path) == (9273, "/metrics")
    assert vnfd.initial_instances() == {"fw": 2}
    assert vnfd.initial_scale_levels() == {"fw-scale": 0}
    aspect = vnfd.aspect("fw-scale")
    assert (aspect.delta("fw"), aspect.max_scale_level, aspect.scale_in_victims) == (
        1,
        3,
        "newest_first",
    )
    assert [(s.level, s.timeout) for s in vnfd.ladder("fw")] == [
        (RecoveryLevel.SOFT_REBOOT, 60.0),
        (RecoveryLevel.HARD_REBOOT, 120.0),
        (RecoveryLevel.REBUILD, 180.0),
        (RecoveryLevel.RECREATE, 300.0),
    ]
    assert vnfd.levels_after("fw", "hard_reboot") == [RecoveryLevel.REBUILD, RecoveryLevel.RECREATE]
    assert [k.name for k in vnfd.kpis_with_objectives()] == [
        "vnf_cpu_utilisation",
        "vnf_request_latency_seconds",
    ]
    assert vnfd.load_profile is not None and vnfd.load_profile.warmup == 30.0


def test_defaults_a_descriptor_leaves_out() -> None:
    vnfd = parse_vnfd(VALID)
    assert vnfd.initial_instances() == {"web": 1, "db": 1}
    assert [s.level for s in vnfd.ladder("db")] == list(RecoveryLevel)
    assert vnfd.hook("web", "drain") is None
    exporter = vnfd.vdu("web").exporter
    assert exporter is not None and exporter.path == "/metrics"


def test_vdus_start_in_their_start_order() -> None:
    text = VALID.replace(
        "    exporter: {port: 9100}\n", "    exporter: {port: 9100}\n    start_order: 5\n"
    )
    vnfd = parse_vnfd(text)
    assert [[v.id for v in group] for group in vnfd.vdus_in_start_order()] == [["db"], ["web"]]
    assert list(vnfd.initial_instances()) == ["db", "web"]


def test_an_instantiation_level_sets_counts_and_scale_levels() -> None:
    text = VALID + (
        "instantiation_levels:\n"
        "  - {id: small, vdu_instances: {web: 1}}\n"
        "  - {id: big, vdu_instances: {web: 2}, scale_levels: {web-scale: 1}}\n"
        "default_instantiation_level: big\n"
    )
    vnfd = parse_vnfd(text)
    assert vnfd.initial_instances() == {"web": 2, "db": 1}
    assert vnfd.initial_scale_levels() == {"web-scale": 1}
    assert vnfd.initial_instances("small") == {"web": 1, "db": 1}


def test_an_aspect_says_what_each_step_changes() -> None:
    text = VALID.replace(
        "deltas: {web: 1}, max_scale_level: 3", "deltas: {web: 2}, max_scale_level: 1"
    )
    aspect = parse_vnfd(text).aspect("web-scale")
    assert aspect.change(0, 1) == {"web": 2}
    assert aspect.change(1, 0) == {"web": -2}


def test_hooks_carry_their_call() -> None:
    text = VALID.replace(
        "    exporter: {port: 9100}\n",
        "    exporter: {port: 9100}\n"
        "    hooks:\n"
        "      day1: {port: 8080, path: /config, timeout: 5s,\n"
        "             parameters: {mode: fast, workers: 4}}\n"
        "      drain: {port: 8080, path: /drain, method: PUT, timeout: 30s}\n",
    )
    vnfd = parse_vnfd(text)
    day1 = vnfd.hook("web", "day1")
    drain = vnfd.hook("web", "drain")
    assert day1 is not None and (day1.method, day1.parameters, day1.timeout) == (
        "POST",
        {"mode": "fast", "workers": 4},
        5.0,
    )
    assert drain is not None and (drain.method, drain.path, drain.timeout) == (
        "PUT",
        "/drain",
        30.0,
    )


def test_a_stored_descriptor_reads_back_the_same() -> None:
    vnfd = load_vnfd(VFW)
    assert Vnfd.model_validate_json(vnfd.model_dump_json(by_alias=True)) == vnfd


def test_a_wrong_type_names_its_place_and_line() -> None:
    text = VALID.replace("vcpus: 1", "vcpus: many")
    assert problems(text) == [
        ("vdus[0].flavour.vcpus", line_of(text, "vcpus: many"), "input should be a valid integer")
    ]


def test_a_version_written_as_a_number_is_refused_not_coerced() -> None:
    text = VALID.replace('version: "2.1"', "version: 2.1")
    [(place, line, message)] = problems(text)
    assert (place, line) == ("vdus[0].image.version", line_of(text, "version: 2.1"))
    assert "string" in message


def test_min_above_max_is_refused_at_min_instances() -> None:
    text = VALID.replace(
        "min_instances: 1\n    max_instances: 4", "min_instances: 6\n    max_instances: 4"
    )
    assert ("vdus[0].min_instances", 8, "min_instances (6) exceeds max_instances (4)") in problems(
        text
    )


def test_every_broken_reference_is_reported_at_once() -> None:
    text = VALID.replace("deltas: {web: 1}", "deltas: {nope: 1}") + (
        "healing:\n"
        "  ghost:\n"
        "    - {level: soft_reboot, timeout: 1m}\n"
        "default_instantiation_level: missing\n"
    )
    found = problems(text)
    assert [(place, line) for place, line, _ in found] == [
        ("scaling_aspects[0].deltas.nope", line_of(text, "deltas: {nope")),
        ("healing.ghost", line_of(text, "ghost:")),
        ("default_instantiation_level", line_of(text, "default_instantiation_level")),
    ]
    assert "unknown VDU 'nope' (known: db, web)" in found[0][2]


def test_a_scale_level_beyond_the_vdus_bounds_is_refused() -> None:
    text = VALID.replace("max_scale_level: 3", "max_scale_level: 4")
    [(place, _, message)] = problems(text)
    assert place == "scaling_aspects[0].deltas.web"
    assert message == "scale level 4 gives 5 VNFCs of web, above its max_instances 4"


def test_an_instantiation_level_outside_the_bounds_is_refused() -> None:
    text = VALID + "instantiation_levels:\n  - {id: huge, vdu_instances: {web: 9, other: 1}}\n"
    found = problems(text)
    assert [p for p, _, _ in found] == [
        "scaling_aspects[0].deltas.web",  # from level huge, 9 + 3 steps
        "instantiation_levels[0].vdu_instances.web",
        "instantiation_levels[0].vdu_instances.other",
    ]


def test_ladder_steps_must_be_known_have_units_and_appear_once() -> None:
    text = VALID + (
        "healing:\n"
        "  web:\n"
        "    - {level: reboot, timeout: 1m}\n"
        "    - {level: rebuild, timeout: 60}\n"
    )
    found = problems(text)
    assert [(p, line) for p, line, _ in found] == [
        ("healing.web[0].level", line_of(text, "level: reboot")),
        ("healing.web[1].timeout", line_of(text, "timeout: 60}")),
    ]
    assert "'soft_reboot'" in found[0][2]
    assert "a duration needs a unit" in found[1][2]
    twice = VALID + (
        "healing:\n  web:\n"
        "    - {level: rebuild, timeout: 1m}\n"
        "    - {level: rebuild, timeout: 2m}\n"
    )
    assert problems(twice) == [
        (
            "healing.web[1].level",
            line_of(twice, "timeout: 2m"),
            "step rebuild is already in the ladder",
        )
    ]


def test_connection_points_must_reach_declared_links() -> None:
    text = (
        VALID.replace(
            "    exporter: {port: 9100}\n",
            "    exporter: {port: 9100}\n"
            "    connection_points:\n"
            "      - {id: web-cp, virtual_link: lan}\n",
        )
        + "external_connection_points:\n  - {id: out, connection_point: nope}\n"
    )
    found = problems(text)
    assert [p for p, _, _ in found] == [
        "vdus[0].connection_points[0].virtual_link",
        "external_connection_points[0].connection_point",
    ]


def test_a_kpi_read_from_an_exporter_needs_a_vdu_with_one() -> None:
    text = VALID + (
        "monitoring_parameters:\n  - {name: db_qps, source: exporter, vdu: db, unit: 1/s}\n"
    )
    assert problems(text) == [
        (
            "monitoring_parameters[0].source",
            line_of(text, "db_qps"),
            "VDU db has no exporter to read db_qps from",
        )
    ]


def test_a_duplicate_vdu_id_names_the_second_one() -> None:
    text = VALID.replace("  - id: db\n", "  - id: web\n")
    second = line_of(text, "db-image") - 1
    assert ("vdus[1].id", second, "duplicate VDU id 'web'") in problems(text)


def test_an_unknown_field_is_refused_with_a_hint() -> None:
    text = VALID.replace(
        "    exporter: {port: 9100}\n", "    exporter: {port: 9100}\n    exportr: {}\n"
    )
    [(place, line, message)] = problems(text)
    assert (place, line) == ("vdus[0].exportr", line_of(text, "exportr"))
    assert message == "unknown field 'exportr' (did you mean 'exporter'?)"


def test_bad_yaml_names_its_line() -> None:
    [(place, line, message)] = problems("apiVersion: assure/v1\nkind: Vnfd\nvdus: [\n  - id: x\n")
    assert (place, line) == ("(yaml)", 4)
    assert message.startswith("invalid YAML")


def test_an_empty_file_and_a_list_are_refused() -> None:
    assert problems("") == [("(document)", 1, "the file is empty: expected a Vnfd")]
    assert problems("- just\n- a list\n") == [
        ("(document)", 1, "expected a Vnfd mapping, got list")
    ]


def test_an_alias_bomb_is_refused_before_it_is_expanded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]\n"
    [(place, _, message)] = problems(bomb)
    assert place == "(yaml)"
    assert "expands to more than" in message


def test_an_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(DescriptorError) as exc:
        load_vnfd(missing)
    assert [(p.file, p.place) for p in exc.value.problems] == [(str(missing), "(file)")]
