"""The Lambda code asset, bundled for real (pip from the index, as ``cdk synth`` does; once per inputs,
cached under ``.venv/rehearsal-cache`` beside the rehearsal's).

The runtime provides boto3 and botocore; an asset that bundles its own botocore (aws-xray-sdk
pulls it) would run the runtime's boto3 on a foreign botocore. Every handler must import with
only the asset plus the runtime's boto3 closure on the path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.lambda_factory import LAMBDAS_DIR, RUNTIME_PROVIDED, PipLocalBundling

pytestmark = pytest.mark.infra

HANDLERS = (
    "geobatch_api.app",
    "geobatch_ops.scaler",
    "geobatch_ops.build_events",
    "geobatch_ops.batch_events",
)
# Import names of the runtime's packages (what the Lambda Python runtime has on its path).
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.fixture(scope="module")
def asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.rehearsal.synth import install_bundle_cache

    # Bundled once for the session's inputs and shared with the rehearsal's synthesis (the cache is
    # keyed by lambdas/, constraints.txt and stacks/lambda_factory.py): a fresh clone bundles once.
    install_bundle_cache()
    out = tmp_path_factory.mktemp("asset")
    assert PipLocalBundling(LAMBDAS_DIR, architecture="x86_64").try_bundle(str(out), image=None)
    return out


def test_the_asset_leaves_boto3_and_botocore_to_the_runtime(asset):
    installed = {p.name.split("-")[0].lower().replace("_", "-") for p in asset.glob("*.dist-info")}
    assert not installed & RUNTIME_PROVIDED, installed & RUNTIME_PROVIDED
    assert not (asset / "botocore").exists() and not (asset / "boto3").exists()
    assert {"aws-lambda-powertools", "pydantic", "aws-xray-sdk", "wrapt"} <= installed
    print(f"\nLambda asset: {_size(asset) / 1e6:.1f} MB, {len(installed)} distributions: {sorted(installed)}")


def test_every_handler_imports_from_the_asset_and_the_runtimes_boto3(asset, tmp_path):
    if os.uname().machine != "x86_64":
        pytest.skip("the asset's compiled wheels are for x86_64 Lambdas")
    import boto3

    site = Path(boto3.__file__).resolve().parent.parent
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in RUNTIME_MODULES:
        (runtime / name).symlink_to(site / name)
    # -S: no site-packages (neither the venv's nor the system's); the path is the asset + the runtime.
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint('ok')"
    environment = {
        "PYTHONPATH": f"{asset}{os.pathsep}{runtime}",
        "AWS_DEFAULT_REGION": "us-west-2",
        "POWERTOOLS_SERVICE_NAME": "asset-test",
        "PATH": os.environ.get("PATH", ""),
    }
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, *HANDLERS],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
