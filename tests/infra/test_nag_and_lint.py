"""cdk-nag (AWS Solutions) and cfn-lint on the synthesized templates.

cdk-nag 3 is a CDK policy-validation plugin: findings are no longer Annotations but violations
in a ``PolicyValidationPluginReport``; ``validate_scope`` returns that report for a synthesized app
(acknowledgments are recorded during synthesis, so the app must be synthesized first).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cdk_nag import AwsSolutionsChecks

pytestmark = pytest.mark.infra


def _unacknowledged(synth_result) -> list[str]:
    report = AwsSolutionsChecks().validate_scope(synth_result.app)
    return [
        f"{v.rule_name} at {r.resource_logical_id or ''} {r.template_path or ''}: {v.description[:100]}"
        for v in report.violations
        for r in v.violating_resources
    ]


@pytest.mark.parametrize(
    "context", [{}, {"compute_type": "EC2"}, {"stage": "prod", "alarm_email": "ops@example.com"}]
)
def test_no_unacknowledged_cdk_nag_findings(synth, context):
    assert _unacknowledged(synth(**context)) == []


def test_cdk_nag_catches_a_violation(synth, tmp_path):
    """The check is live: an unencrypted, unlogged bucket added to a fresh app is reported."""
    from aws_cdk import aws_s3 as s3

    from app import SKIP_BUNDLING, build_app

    app, stack = build_app(dict(SKIP_BUNDLING), nag=False, outdir=str(tmp_path))
    s3.Bucket(stack, "Naughty")
    app.synth()
    report = AwsSolutionsChecks().validate_scope(app)
    assert "AwsSolutions-S1" in {v.rule_name for v in report.violations}


def test_cfn_lint_has_no_errors(default, tmp_path):
    template = tmp_path / "GeoBatch.template.json"
    template.write_text(json.dumps(default.template_json))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", str(template)], capture_output=True, text=True, check=False
    )
    errors = [line for line in result.stdout.splitlines() if _level(line) == "E"]
    assert errors == [], result.stdout
    assert result.returncode & 2 == 0 and result.returncode < 16, result.stderr  # exit bits: 2 E, 4 W, 8 I


def _level(line: str) -> str:
    """Rule level of a parseable cfn-lint line: ``file:line:col:line:col:RULE:message``."""
    parts = line.split(":")
    return parts[5][:1] if len(parts) > 5 else ""
