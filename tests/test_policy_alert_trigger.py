"""Policies triggered by Alertmanager alerts: the schema, and which alerts trigger which policy."""

from __future__ import annotations

from policy.alerts import triggered_by
from policy.loader import parse_text
from policy.schema import AlertTrigger

HEAL_ON_ALERT = """\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: heal-on-alert}
spec:
  target: {vnfd: vfw}
  trigger:
    alert: VnfcDown
    matchers: {severity: critical}
  action: {type: heal}
"""


def test_a_policy_may_have_an_alert_trigger_instead_of_conditions() -> None:
    parsed = parse_text(HEAL_ON_ALERT, "heal.yaml")
    assert not parsed.problems
    ((policy, _line),) = parsed.policies
    assert isinstance(policy.spec.trigger, AlertTrigger)
    assert policy.spec.trigger.alert == "VnfcDown"
    assert policy.spec.conditions == []


def test_a_policy_with_neither_conditions_nor_trigger_is_refused_at_its_place() -> None:
    text = HEAL_ON_ALERT.replace(
        "  trigger:\n    alert: VnfcDown\n    matchers: {severity: critical}\n", ""
    )
    (problem,) = parse_text(text, "p.yaml").problems
    assert problem.place == "spec.conditions"
    assert "alert trigger" in problem.message


def test_a_misspelt_trigger_field_is_named_with_a_hint() -> None:
    (problem,) = parse_text(HEAL_ON_ALERT.replace("matchers:", "matcher:"), "p.yaml").problems
    assert problem.place == "spec.trigger.matcher"
    assert problem.line == 8
    assert "did you mean 'matchers'" in problem.message


def test_an_alert_triggers_the_policies_whose_name_labels_and_vnfd_match() -> None:
    ((policy, _),) = parse_text(HEAL_ON_ALERT, "p.yaml").policies
    labels = {"alertname": "VnfcDown", "severity": "critical", "vnfc_id": "c1"}
    assert triggered_by([policy], labels, "vfw") == [policy]
    assert triggered_by([policy], labels, None) == [policy], "a host alert names no VNFD"
    assert triggered_by([policy], labels, "other-vnfd") == []
    assert triggered_by([policy], {**labels, "severity": "warning"}, "vfw") == []
    assert triggered_by([policy], {**labels, "alertname": "VnfcSlow"}, "vfw") == []
