"""rules.check_specs: every concern runs on every spec it applies to; findings carry layer D and the key's line."""

from __future__ import annotations

from tools.validate.document import spec_from_dict
from tools.validate.rules.concerns import check_specs
from tools.validate.rules.support import RuleContext


def test_findings_from_several_concerns_on_one_spec() -> None:
    spec = spec_from_dict({"$schema": "https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json",
                           "type": "amlcompute", "name": "9gpu", "size": "Standard_NC6s_v3",
                           "min_instances": 3, "max_instances": 1})  # fmt: skip
    findings = check_specs(RuleContext([spec]))
    assert {("name", "name"), ("min_instances", "range")} <= {(f.key, f.rule) for f in findings}
    assert all(f.layer == "D" and f.line for f in findings)
