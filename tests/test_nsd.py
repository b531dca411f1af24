"""NS descriptors on their own: the shipped one parses; the rules within one, by place and line."""

from __future__ import annotations

import pytest

from assure.settings import DEFAULTS_DIR
from mano_core.descriptor import DescriptorError
from mano_core.nsd import load_nsd, parse_nsd

NSD = """\
apiVersion: assure/v1
kind: Nsd
id: svc
vnfs:
  - {id: a, vnfd: vfw}
  - {id: b, vnfd: vlb, depends_on: [a], count: 2}
  - {id: c, vnfd: vlb, depends_on: [a, b]}
virtual_links:
  - id: l1
    connects:
      - {vnf: a, connection_point: data}
      - {vnf: b, connection_point: back}
placement:
  - {type: anti_affinity, members: [a, b]}
  - {type: affinity, scope: host, members: [b], vdus: [lb]}
scaling_aspects:
  - id: grow
    max_scale_level: 2
    members: [{vnf: a, aspect: fw-scale}]
"""


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(DescriptorError) as exc:
        parse_nsd(text, "svc.yaml")
    return [(p.place, p.line, p.message) for p in exc.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_shipped_nsd_parses_and_starts_its_members_in_dependency_order() -> None:
    nsd = load_nsd(DEFAULTS_DIR / "nsds" / "edge.yaml")
    assert [[m.id for m in group] for group in nsd.start_order()] == [["fw"], ["lb"]]
    assert [r.type for r in nsd.rules_for("lb")] == ["anti_affinity", "anti_affinity"]
    assert nsd.aspect("capacity").members[0].aspect == "fw-scale"


def test_members_start_after_what_they_depend_on() -> None:
    nsd = parse_nsd(NSD)
    assert [[m.id for m in g] for g in nsd.start_order()] == [["a"], ["b"], ["c"]]
    assert nsd.member("b").count == 2


def test_a_dependency_cycle_is_refused_where_it_starts() -> None:
    text = NSD.replace("  - {id: a, vnfd: vfw}", "  - {id: a, vnfd: vfw, depends_on: [c]}")
    assert problems(text) == [
        ("vnfs[0].depends_on", line_of(text, "id: a,"), "dependency cycle: a -> c -> a")
    ]


def test_every_unknown_member_is_reported_with_its_line() -> None:
    text = (
        NSD.replace("depends_on: [a], count: 2", "depends_on: [x], count: 2")
        .replace("{vnf: b, connection_point: back}", "{vnf: y, connection_point: back}")
        .replace("members: [a, b]}", "members: [a, z]}")
        .replace("members: [{vnf: a, aspect", "members: [{vnf: w, aspect")
    )
    found = problems(text)
    assert [(p, line) for p, line, _ in found] == [
        ("vnfs[1].depends_on[0]", line_of(text, "depends_on: [x]")),
        ("virtual_links[0].connects[1].vnf", line_of(text, "vnf: y")),
        ("placement[0].members[1]", line_of(text, "members: [a, z]")),
        ("scaling_aspects[0].members[0].vnf", line_of(text, "vnf: w")),
    ]
    assert "unknown member 'x' (members: a, b, c)" in found[0][2]


def test_a_rule_must_fit_its_scope() -> None:
    text = NSD.replace(
        "  - {type: affinity, scope: host, members: [b], vdus: [lb]}",
        "  - {type: affinity, scope: host, members: [b]}\n"
        "  - {type: anti_affinity, scope: vim, members: [b], vdus: [lb]}\n"
        "  - {type: affinity, scope: zone, members: [b], vdus: [lb], vims: [site-1]}",
    )
    assert [p for p, _, _ in problems(text)] == [
        "placement[1].scope",
        "placement[2].vdus",
        "placement[3].vims",
    ]


def test_members_both_kept_together_and_apart_are_refused() -> None:
    text = NSD.replace(
        "  - {type: anti_affinity, members: [a, b]}",
        "  - {type: anti_affinity, members: [a, b]}\n  - {type: affinity, members: [b, a]}",
    )
    [(place, _, message)] = problems(text)
    assert place == "placement[0]"
    assert "kept on one VIM by placement[1]" in message


def test_unknown_fields_wrong_types_and_a_missing_member_list() -> None:
    text = NSD.replace("  - {id: a, vnfd: vfw}", "  - {id: a, vnfd: vfw, cuont: 2}").replace(
        "count: 2}", "count: two}"
    )
    found = problems(text)
    assert [p for p, _, _ in found] == ["vnfs[0].cuont", "vnfs[1].count"]
    assert "did you mean 'count'" in found[0][2]
    assert problems("apiVersion: assure/v1\nkind: Nsd\nid: x\n") == [
        ("vnfs", 1, "required field is missing")
    ]
