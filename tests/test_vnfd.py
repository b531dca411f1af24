"""VNF descriptors: the shipped example parses; every bad file names the place at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from mano_core.vnfd import DescriptorError, RecoveryLevel, load_vnfd, parse_vnfd

VFW = Path(__file__).resolve().parents[1] / "assure" / "defaults" / "vnfds" / "vfw.yaml"

VALID = """
apiVersion: assure/v1
kind: Vnfd
id: lb
vdus:
  - id: web
    image: web-image
    flavour: {vcpus: 1, ram_mb: 512}
    min_instances: 1
    max_instances: 4
    monitoring: {port: 9100}
scaling_aspects:
  - {id: web-scale, vdu: web, step_instances: 1, max_scale_level: 3}
"""


def places(exc: pytest.ExceptionInfo[DescriptorError]) -> list[str]:
    return [place for place, _ in exc.value.problems]


def test_the_shipped_vfw_descriptor_parses() -> None:
    vnfd = load_vnfd(VFW)
    fw = vnfd.vdu("fw")
    assert (vnfd.id, fw.image, fw.flavour.vcpus, fw.flavour.ram_mb) == ("vfw", "fw-image", 2, 2048)
    assert (fw.min_instances, fw.max_instances, fw.initial) == (2, 5, 2)
    assert fw.monitoring is not None
    assert (fw.monitoring.port, fw.monitoring.path) == (9273, "/metrics")
    aspect = vnfd.aspect("fw-scale")
    assert (aspect.vdu, aspect.step_instances, aspect.max_scale_level) == ("fw", 1, 3)
    assert vnfd.healing.ladder == [
        RecoveryLevel.REBOOT,
        RecoveryLevel.REBUILD,
        RecoveryLevel.RECREATE,
    ]


def test_a_valid_descriptor_gets_its_defaults() -> None:
    vnfd = parse_vnfd(VALID)
    web = vnfd.vdu("web")
    assert web.initial == web.min_instances == 1
    assert web.monitoring is not None and web.monitoring.path == "/metrics"
    assert vnfd.healing.ladder[0] is RecoveryLevel.REBOOT


def test_bad_yaml_names_the_line() -> None:
    with pytest.raises(DescriptorError) as exc:
        parse_vnfd("apiVersion: assure/v1\nkind: Vnfd\nvdus: [\n  - id: x\n", "broken.yaml")
    assert exc.value.source == "broken.yaml"
    assert places(exc)[0].startswith("line ")
    assert "broken.yaml" in str(exc.value)


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(DescriptorError) as exc:
        parse_vnfd("- just\n- a list\n")
    assert places(exc) == ["(document)"]


def test_a_wrong_type_names_its_dotted_path() -> None:
    text = VALID.replace("vcpus: 1", "vcpus: many")
    with pytest.raises(DescriptorError) as exc:
        parse_vnfd(text)
    assert places(exc) == ["vdus[0].flavour.vcpus"]


def test_min_above_max_is_refused_at_the_vdu() -> None:
    text = VALID.replace("min_instances: 1", "min_instances: 6")
    with pytest.raises(DescriptorError) as exc:
        parse_vnfd(text)
    assert places(exc) == ["vdus[0]"]
    assert "min_instances (6) exceeds max_instances (4)" in str(exc.value)


def test_an_aspect_naming_an_unknown_vdu_is_refused() -> None:
    text = VALID.replace("vdu: web,", "vdu: nope,")
    with pytest.raises(DescriptorError) as exc:
        parse_vnfd(text)
    assert places(exc) == ["scaling_aspects[0].vdu"]
    assert "scaling aspect 'web-scale' names unknown VDU 'nope'" in str(exc.value)


def test_a_duplicate_vdu_id_names_the_second_one() -> None:
    second = (
        "  - {id: web, image: i, flavour: {vcpus: 1, ram_mb: 1},"
        " min_instances: 1, max_instances: 1}\n"
    )
    text = VALID.replace("scaling_aspects:", second + "scaling_aspects:")
    with pytest.raises(DescriptorError) as exc:
        parse_vnfd(text)
    assert places(exc) == ["vdus[1].id"]


def test_an_unknown_field_is_refused_rather_than_ignored() -> None:
    text = VALID.replace("image: web-image", "image: web-image\n    imgae: typo")
    with pytest.raises(DescriptorError) as exc:
        parse_vnfd(text)
    assert places(exc) == ["vdus[0].imgae"]


def test_an_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(DescriptorError) as exc:
        load_vnfd(missing)
    assert exc.value.source == str(missing)
    assert places(exc) == ["(file)"]
