"""The operator's data bound (cdk.json context ``data_access``): validated at synth, given to the API
Lambda and baked into the worker boundary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from geobatch.wire import env

pytestmark = pytest.mark.infra


def _config(**context: Any) -> Any:
    """The settings ``cdk synth -c ...`` would read (the stack itself is not built)."""
    import aws_cdk as cdk

    from stacks.config import GeoBatchConfig

    return GeoBatchConfig.from_context(cdk.App(context=context).node)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"read": ["https://bucket/x"]}, r"'data_access.read\[0\]': 'https://bucket/x' is not an s3:// URI"),
        (
            {"write": ["s3://ok-bucket/*", "s3://Bad_Bucket/*"]},
            r"data_access.write\[1\].*not an S3 bucket name",
        ),
        ({"read": ["s3://bucket/a*b/*"]}, r"only a trailing '\*'"),
        ({"reads": ["s3://bucket/*"]}, r"only the keys read and write"),
        ("s3://bucket/*", r"must be an object"),
        ({"read": "s3://bucket/*,s3://x"}, r"data_access.read\[1\]"),
        ({"read": [f"s3://bucket/{i}/*" for i in range(21)]}, r"has 21 locations; at most 20"),
        ({"read": [f"s3://bucket-{i}/{'k' * 60}/*" for i in range(19)]}, r"characters of IAM policy"),
    ],
)
def test_a_bad_bound_fails_synthesis_with_a_clear_message(value: Any, message: str) -> None:
    from stacks.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        _config(data_access=value)


def test_the_bound_from_a_command_line_string() -> None:
    config = _config(data_access='{"read": ["s3://sentinel-cogs"], "write": ["s3://my-bucket/out/*"]}')
    assert config.data_bound == {"read": ["s3://sentinel-cogs/*"], "write": ["s3://my-bucket/out/*"]}


def _boundary_and_api_env(template: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    resources = template["Resources"]
    (boundary,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for k, r in resources.items()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and k.startswith("ExecutionWorkerBoundary")
    ]
    (api_env,) = [
        r["Properties"]["Environment"]["Variables"]
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith("ApiHandler")
    ]
    return boundary, api_env


def test_by_default_workers_may_touch_no_user_data(default: Any) -> None:
    boundary, api_env = _boundary_and_api_env(default.template_json)
    assert json.loads(api_env[env.DATA_ACCESS]) == {"read": [], "write": []}
    assert not [s for s in boundary if str(s.get("Sid", "")).startswith("Bound")]
    # Without a bound the worker boundary still allows only the stack bucket's own prefixes.
    s3 = [s for s in boundary if any(str(a).startswith("s3:") for a in _list(s["Action"]))]
    resources = json.dumps([s["Resource"] for s in s3])
    assert all(p in resources for p in ("/bundles/*", "/args/*", "/results/*", "/logs/*"))
    assert "s3:::" not in resources  # no bucket named by hand: only the stack's own bucket


def test_the_boundary_allows_exactly_the_bound(synth: Any) -> None:
    bound = {
        "read": ["s3://sentinel-cogs/*", "s3://my-landcover/*"],
        "write": ["s3://my-landcover/products/*"],
    }
    boundary, api_env = _boundary_and_api_env(synth(data_access=bound).template_json)
    assert json.loads(api_env[env.DATA_ACCESS]) == bound
    granted = {
        s["Sid"]: (sorted(_list(s["Action"])), json.dumps(s["Resource"])) for s in boundary if "Sid" in s
    }
    assert granted["BoundRead"][0] == ["s3:GetObject"]
    assert (
        ":s3:::sentinel-cogs/*" in granted["BoundRead"][1]
        and ":s3:::my-landcover/*" in granted["BoundRead"][1]
    )
    assert granted["BoundWrite"][0] == ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert ":s3:::my-landcover/products/*" in granted["BoundWrite"][1]
    assert sorted(k for k in granted if k.startswith("BoundList")) == ["BoundList0", "BoundList1"]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_a_stack_with_a_bound_passes_cdk_nag_and_cfn_lint(synth: Any, tmp_path: Any) -> None:
    from tests.infra.test_nag_and_lint import _unacknowledged
    from tests.infra.test_worker_roles_data_access import BOUND

    variant = synth(data_access=BOUND)  # the variant the IAM tests deploy on moto
    assert _unacknowledged(variant) == []
    template = tmp_path / "GeoBatch.template.json"
    template.write_text(json.dumps(variant.template_json))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", str(template)], capture_output=True, text=True
    )
    assert result.returncode & 2 == 0, result.stdout  # exit bit 2: errors
