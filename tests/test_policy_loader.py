"""KPI policy files: the shipped ones load; each bad file is reported by place and skipped alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.contracts import TargetKind
from mano_core.nsd import load_nsd
from mano_core.vnfd import RecoveryLevel, load_vnfd
from policy.conditions import conditions_of
from policy.loader import Problem, load_policies, validate_files
from policy.schema import HealAction, MigrateAction, ScaleAction, ScaleNsAction

DEFAULTS = Path(__file__).resolve().parents[1] / "assure" / "defaults"
POLICIES = DEFAULTS / "policies"

GOOD = """\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: good}
spec:
  target: {vnfd: vfw}
  conditions:
    - name: cpu-high
      kpi: vnf_cpu_utilisation
      scope: vnf
      op: ">"
      threshold: 75
      clear: 60
      for: 30s
  action: {type: scale_out, aspect: fw-scale}
  guards: {cooldown: 120s}
"""

# The bad policy: a copy of GOOD named "bad", with one line changed.
BAD = GOOD.replace("name: good", "name: bad")


# An NS policy: GOOD on the NS's latency, scaling the NS.
NS_BAD = (
    BAD.replace("  target: {vnfd: vfw}", "  target: {nsd: edge}")
    .replace(
        "kpi: vnf_cpu_utilisation\n      scope: vnf", "kpi: vnf_cpu_utilisation\n      scope: ns"
    )
    .replace("{type: scale_out, aspect: fw-scale}", "{type: scale_ns_out, aspect: capacity}")
)


def bad(old: str, new: str) -> str:
    assert old in BAD, old
    return BAD.replace(old, new)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


CASES = [
    # (case, file text, place, line holding this text, words of the problem)
    (
        "syntax",
        bad("  target: {vnfd: vfw}", "  target: {vnfd: vfw"),
        "(yaml)",
        None,
        "invalid YAML",
    ),
    ("api version", bad("assure/v1", "assure/v2"), "apiVersion", "apiVersion", "'assure/v1'"),
    ("kind", bad("kind: KpiPolicy", "kind: Policy"), "kind", "kind:", "'KpiPolicy'"),
    (
        "unknown field",
        bad("      for: 30s", "      for: 30s\n      treshold: 80"),
        "spec.conditions[0].treshold",
        "treshold",
        "unknown field 'treshold' (did you mean 'threshold'?)",
    ),
    (
        "missing threshold",
        bad("      threshold: 75\n", ""),
        "spec.conditions[0].threshold",
        "- name: cpu-high",
        "required for a threshold condition",
    ),
    (
        "clear on the wrong side",
        bad("clear: 60", "clear: 80"),
        "spec.conditions[0].clear",
        "clear:",
        "clear 80 must not be above threshold 75",
    ),
    (
        "anomaly clear above its score",
        bad(
            '      op: ">"\n      threshold: 75\n      clear: 60\n',
            "      kind: anomaly\n      clear: 0.9\n      anomaly: {score: 0.8}\n",
        ),
        "spec.conditions[0].clear",
        "clear:",
        "clear 0.9 must not be above anomaly.score 0.8",
    ),
    (
        "duration without unit",
        bad("for: 30s", "for: 30"),
        "spec.conditions[0].for",
        "for: 30",
        "needs a unit",
    ),
    (
        "cooldown without unit",
        bad("cooldown: 120s", "cooldown: 120"),
        "spec.guards.cooldown",
        "cooldown",
        "needs a unit",
    ),
    (
        "scale without aspect",
        bad("{type: scale_out, aspect: fw-scale}", "{type: scale_out, steps: 1}"),
        "spec.action.aspect",
        "action:",
        "required field is missing",
    ),
    (
        "duplicate condition name",
        bad(
            "      for: 30s\n",
            "      for: 30s\n    - {name: cpu-high, kpi: x, scope: vnf, op: '>', threshold: 1}\n",
        ),
        "spec.conditions[1].name",
        "kpi: x",
        "duplicate condition name 'cpu-high'",
    ),
    (
        "unknown action",
        bad("type: scale_out", "type: scale-out"),
        "spec.action.type",
        "action:",
        "did you mean 'scale_out'?",
    ),
    (
        "startup on a threshold condition",
        bad("      for: 30s\n", "      for: 30s\n      startup: 2m\n"),
        "spec.conditions[0].startup",
        "startup: 2m",
        "startup is for absent conditions",
    ),
    (
        "startup on a stale condition",
        bad(
            '      scope: vnf\n      op: ">"\n      threshold: 75\n      clear: 60\n',
            "      scope: vnfc\n      kind: stale\n      startup: 2m\n",
        ),
        "spec.conditions[0].startup",
        "startup: 2m",
        "a stale condition watches only VNFCs that sent the KPI: it has no startup",
    ),
    (
        "absent on a whole VNF",
        bad('      op: ">"\n      threshold: 75\n      clear: 60\n', "      kind: absent\n"),
        "spec.conditions[0].scope",
        "scope: vnf",
        "absent condition needs scope vnfc",
    ),
    (
        "trigger names an unknown condition",
        bad("  action:", "  trigger: {all: [cpu-high, {not: cpu-hot}]}\n  action:"),
        "spec.trigger.all[1].not",
        "trigger:",
        "trigger names unknown condition 'cpu-hot'",
    ),
    (
        "a trigger that holds on nothing",
        bad("  action:", "  trigger: {not: cpu-high}\n  action:"),
        "spec.trigger",
        "trigger:",
        "the trigger holds when no condition does",
    ),
    (
        "action and steps both",
        bad("  guards:", "  steps: [{id: s, action: {type: heal}}]\n  guards:"),
        "spec",
        "spec:",
        "give either action (one step) or steps (a chain), not both",
    ),
    (
        "branch to an unknown step",
        bad(
            "  action: {type: scale_out, aspect: fw-scale}",
            "  steps:\n    - {id: grow, action: {type: scale_out, aspect: fw-scale}, "
            "on_denied: shout}",
        ),
        "spec.steps[0].on_denied",
        "- {id: grow",
        "on_denied names unknown step 'shout'",
    ),
    (
        "notify without a receiver",
        bad("{type: scale_out, aspect: fw-scale}", "{type: notify}"),
        "spec.action",
        "action:",
        "a notify action needs the policy's notify receiver",
    ),
    (
        "receiver that is not a URL",
        bad("  guards:", "  notify: {url: slack}\n  guards:"),
        "spec.notify.url",
        "notify:",
        "expected an http(s) URL",
    ),
    (
        "approval without approve mode",
        bad("  guards:", "  approval: {timeout: 5m}\n  guards:"),
        "spec.approval",
        "approval:",
        "approval is for mode approve",
    ),
    (
        "unknown mode",
        bad("  guards:", "  mode: auto\n  guards:"),
        "spec.mode",
        "mode:",
        "'enforce', 'approve', 'dry_run' or 'disabled'",
    ),
    (
        "bad cron field",
        bad("cooldown: 120s", "blackout: [{cron: '0 25 * * *', duration: 1h}]"),
        "spec.guards.blackout[0].cron",
        "blackout",
        "hour: 25 is outside 0-23",
    ),
    (
        "unknown time zone",
        bad("cooldown: 120s", "maintenance: [{cron: '0 2 * * *', duration: 1h, timezone: Mars}]"),
        "spec.guards.maintenance[0].timezone",
        "maintenance",
        "unknown time zone 'Mars'",
    ),
    (
        "share without a percent sign",
        bad("cooldown: 120s", "blast_radius: {vnfcs: 0.5}"),
        "spec.guards.blast_radius.vnfcs",
        "blast_radius",
        "written as a percentage",
    ),
    (
        "stabilisation on a scale-out",
        bad("cooldown: 120s", "stabilisation: 5m"),
        "spec.guards.stabilisation",
        "stabilisation",
        "stabilisation applies to scaling in only",
    ),
    (
        "a target that selects nothing",
        bad("  target: {vnfd: vfw}", "  target: {vnfd_version: '1.0'}"),
        "spec.target",
        "target:",
        "a target needs vnfd, nsd, ns, vnf_labels or hosts",
    ),
    (
        "change of flavour without its RAM",
        bad("{type: scale_out, aspect: fw-scale}", "{type: change_flavour, vdu: fw, vcpus: 4}"),
        "spec.action.ram_mb",
        "action:",
        "required field is missing",
    ),
    (
        "operate to an unknown state",
        bad("{type: scale_out, aspect: fw-scale}", "{type: operate, state: PAUSED}"),
        "spec.action.state",
        "action:",
        "'STARTED' or 'STOPPED'",
    ),
    (
        "NS scaling driven by a VNF condition",
        bad("{type: scale_out, aspect: fw-scale}", "{type: scale_ns_out, aspect: capacity}"),
        "spec.conditions[0].scope",
        "scope: vnf",
        "scope vnf cannot drive a scale_ns_out action (it needs scope ns)",
    ),
    (
        "NS scaling by no step",
        NS_BAD.replace("aspect: capacity}", "aspect: capacity, steps: 0}"),
        "spec.action.steps",
        "action:",
        "greater than or equal to 1",
    ),
    (
        "NS scaling to no level",
        NS_BAD.replace(
            "{type: scale_ns_out, aspect: capacity}", "{type: scale_ns_to_level, aspect: capacity}"
        ),
        "spec.action.level",
        "action:",
        "required field is missing",
    ),
    (
        "NS scaling in the wrong direction",
        NS_BAD.replace("scale_ns_out", "scale_ns_up"),
        "spec.action.type",
        "action:",
        "did you mean 'scale_ns_out'?",
    ),
    (
        "NS conditions on a VNFD's VNFs",
        NS_BAD.replace("  target: {nsd: edge}", "  target: {vnfd: vfw}"),
        "spec.target.vnfd",
        "target:",
        "vnfd selects VNFs; conditions of scope ns apply to network services",
    ),
    (
        "an NSD selector with VNF conditions",
        bad("  target: {vnfd: vfw}", "  target: {nsd: edge}"),
        "spec.target.nsd",
        "target:",
        "nsd selects network services: it goes with conditions of scope ns only",
    ),
    (
        "empty file",
        "# nothing here yet\n",
        "(file)",
        None,
        "no policy document in the file",
    ),
    (
        "python object tag",
        "!!python/object/apply:os.system ['touch /tmp/pwned']\n",
        "(yaml)",
        "python/object",
        "could not determine a constructor",
    ),
]


@pytest.mark.parametrize(
    ("text", "place", "line_text", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_bad_file_is_reported_by_place_and_line_and_the_others_still_load(
    tmp_path: Path, text: str, place: str, line_text: str | None, words: str
) -> None:
    (tmp_path / "a-good.yaml").write_text(GOOD)
    (tmp_path / "b-bad.yaml").write_text(text)
    (tmp_path / "c-good.yaml").write_text(GOOD.replace("name: good", "name: good-too"))

    result = load_policies(tmp_path)

    assert [p.name for p in result.policies] == ["good", "good-too"]
    bad_file = str(tmp_path / "b-bad.yaml")
    assert result.problems, "the bad file must be reported"
    assert {p.file for p in result.problems} == {bad_file}
    problem = next(p for p in result.problems if p.place == place)
    assert words in problem.message
    if line_text is not None:
        assert problem.line == line_of(text, line_text)
    else:
        assert problem.line is not None
    assert problem.column is not None
    where = f"{bad_file}:{problem.line}:{problem.column}"
    assert problem.format() == f"{where}: {place}: {problem.message}"
    assert "\n" not in problem.format()


def test_yaml_syntax_errors_name_the_line_to_fix(tmp_path: Path) -> None:
    unclosed_mid_file = tmp_path / "mid.yaml"
    unclosed_mid_file.write_text(GOOD.replace("  target: {vnfd: vfw}", "  target: {vnfd: vfw"))
    unclosed_at_end = tmp_path / "end.yaml"
    unclosed_at_end.write_text("apiVersion: assure/v1\nkind: KpiPolicy\nmetadata: {name: [oops\n")

    mid, end = validate_files([unclosed_mid_file, unclosed_at_end])

    # Where the parser gave up, and the line the open bracket is on.
    assert (mid.place, mid.line) == ("(yaml)", 6)
    assert "flow mapping started on line 5" in mid.message
    # Running off the end of the file says nothing; the open bracket's line does.
    assert (end.place, end.line) == ("(yaml)", 3)


def test_a_policy_name_defined_twice_across_files_is_a_problem_of_the_later_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)

    result = load_policies(tmp_path)

    assert [p.name for p in result.policies] == ["good"]
    assert result.origins["good"] == f"{tmp_path / 'a.yaml'}:3"
    [problem] = result.problems
    assert (problem.file, problem.place, problem.line) == (
        str(tmp_path / "b.yaml"),
        "metadata.name",
        3,
    )
    assert (
        f"duplicate policy name 'good' (already defined at {tmp_path / 'a.yaml'}:3)"
        in problem.message
    )


def test_a_file_with_one_bad_document_loads_none_of_its_documents(tmp_path: Path) -> None:
    # A file loads whole or not at all: half a file live would surprise its author.
    second = BAD.replace("for: 30s", "for: soon")
    path = tmp_path / "two.yaml"
    path.write_text(GOOD + "---\n" + second)

    result = load_policies(path)

    assert result.policies == []
    [problem] = result.problems
    assert problem.place == "spec.conditions[0].for"
    assert problem.line == GOOD.count("\n") + 1 + line_of(second, "for: soon")


def test_a_key_given_twice_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    text = GOOD.replace("      clear: 60\n", "      clear: 60\n      clear: 70\n")
    path.write_text(text)

    [problem] = validate_files(path)

    assert (problem.place, problem.line) == ("spec.conditions[0].clear", line_of(text, "clear: 70"))


def test_a_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    [problem] = validate_files([tmp_path / "nowhere.yaml"])
    assert (problem.place, problem.line) == ("(file)", None)
    assert problem.format().startswith(f"{tmp_path / 'nowhere.yaml'}: (file): cannot read")


def test_the_shipped_policies_load_with_the_settings_the_demo_relies_on() -> None:
    result = load_policies(POLICIES)
    assert result.problems == []
    policies = {p.name: p for p in result.policies}
    assert set(policies) == {"vfw-scale-out", "vfw-scale-in", "vfw-heal", "vfw-migrate"}
    assert all(p.vnfd == "vfw" for p in policies.values())

    out, in_ = policies["vfw-scale-out"].spec, policies["vfw-scale-in"].spec
    assert out.action == ScaleAction(type="scale_out", aspect="fw-scale", steps=1)
    assert in_.action == ScaleAction(type="scale_in", aspect="fw-scale", steps=1)
    heal = HealAction(type="heal", level=RecoveryLevel.SOFT_REBOOT)
    assert policies["vfw-heal"].spec.action == heal
    assert policies["vfw-migrate"].spec.action == MigrateAction(type="migrate", live=True)
    cooldowns = {name: p.spec.guards.cooldown for name, p in policies.items()}
    assert cooldowns == {
        "vfw-scale-out": 120.0,
        "vfw-scale-in": 120.0,
        "vfw-heal": 60.0,
        "vfw-migrate": 60.0,
    }

    specs = {c.policy: c for c in conditions_of(result.policies)}
    high, low = specs["vfw-scale-out"], specs["vfw-scale-in"]
    assert (high.kpi, high.scope, high.aggregate, high.op) == (
        "vnf_cpu_utilisation",
        TargetKind.VNF,
        "avg",
        ">",
    )
    assert (high.threshold, high.clear, high.for_s, high.vnfd) == (75.0, 60.0, 30.0, "vfw")
    assert (low.op, low.threshold, low.clear, low.for_s) == ("<", 33.0, 43.0, 60.0)
    absent = specs["vfw-heal"]
    assert (absent.kind, absent.kpi, absent.scope, absent.for_s) == (
        "absent",
        "vnf_requests_per_second",
        TargetKind.VNFC,
        15.0,
    )
    host = specs["vfw-migrate"]
    assert (host.kpi, host.scope, host.op, host.threshold, host.clear, host.for_s) == (
        "vim_host_degraded",
        TargetKind.HOST,
        ">",
        0.0,
        0.0,
        10.0,
    )
    # Host series carry no VNFD label; filtering them by VNFD would never fire.
    assert host.vnfd is None


def test_the_shipped_scale_policies_name_an_aspect_of_the_shipped_vnfd() -> None:
    vnfd = load_vnfd(DEFAULTS / "vnfds" / "vfw.yaml")
    for policy in load_policies(POLICIES).policies:
        action = policy.spec.action
        if isinstance(action, ScaleAction):
            assert list(vnfd.aspect(action.aspect).deltas) == ["fw"]


def test_problem_format_without_a_line() -> None:
    problem = Problem("p.yaml", "(file)", None, "cannot read: No such file or directory")
    assert problem.format() == "p.yaml: (file): cannot read: No such file or directory"


def test_a_per_vnfc_condition_may_combine_several_series_of_its_kpi(tmp_path: Path) -> None:
    path = tmp_path / "nic.yaml"
    path.write_text(
        "apiVersion: assure/v1\n"
        "kind: KpiPolicy\n"
        "metadata: {name: nic-errors}\n"
        "spec:\n"
        "  target: {vnfd: vfw}\n"
        "  conditions:\n"
        "    - {name: errors, kpi: vnf_nic_errors_per_second, scope: vnfc, aggregate: max,\n"
        "       op: '>', threshold: 10, for: 30s}\n"
        "  action: {type: heal, level: soft_reboot}\n"
    )
    result = load_policies(path)
    assert result.problems == []
    (condition,) = conditions_of(result.policies)
    assert condition.scope is TargetKind.VNFC
    assert condition.aggregate == "max", "the worst interface decides, not a random one"


def test_problems_name_the_column_of_their_place(tmp_path: Path) -> None:
    text = bad("      threshold: 75", "      threshold: lots")
    text = text.replace("  guards: {cooldown: 120s}", "  guards: {cooldown: 120s, coldown: 1m}")
    path = tmp_path / "p.yaml"
    path.write_text(text)

    threshold, typo = validate_files([path])

    assert (threshold.line, threshold.column) == (line_of(text, "threshold: lots"), 7)
    assert (typo.line, typo.column) == (line_of(text, "coldown"), 28)
    assert typo.format() == (
        f"{path}:{typo.line}:28: spec.guards.coldown: unknown field 'coldown' "
        "(did you mean 'cooldown'?)"
    )


def test_an_ns_scaling_policy_loads_with_its_aspect_steps_and_ns_conditions(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ns.yaml"
    path.write_text(NS_BAD.replace("name: bad", "name: edge-grow"))
    result = load_policies(path)
    assert result.problems == []
    [policy] = result.policies
    assert policy.spec.action == ScaleNsAction(type="scale_ns_out", aspect="capacity", steps=1)
    assert policy.spec.target.nsd == "edge"
    [spec] = conditions_of([policy])
    assert (spec.scope, spec.vnfd) == (TargetKind.NS, None)


def test_the_ns_scaling_example_loads_and_steps_an_aspect_of_the_shipped_edge_nsd() -> None:
    result = load_policies(DEFAULTS.parent.parent / "docs" / "examples" / "edge-ns-scale.yaml")
    assert result.problems == []
    nsd = load_nsd(DEFAULTS / "nsds" / "edge.yaml")
    actions = {p.name: p.spec.action for p in result.policies}
    assert set(actions) == {"edge-latency-high", "edge-latency-low"}
    for policy in result.policies:
        action = policy.spec.action
        assert isinstance(action, ScaleNsAction)
        assert policy.spec.target.nsd == nsd.id
        assert [m.vnf for m in nsd.aspect(action.aspect).members] == ["fw"]
