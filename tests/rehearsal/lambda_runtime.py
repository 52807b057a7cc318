"""The stack's Lambdas run as Lambda runs them: from the synthesized asset, in an interpreter with only
what the Lambda Python runtime has, with the deployed function's environment and its role's credentials.

The runtime interpreter is a venv, without system site-packages, of this machine's CPython of the
deployed function's runtime (python3.11, ``stacks.lambda_factory.PYTHON_VERSION``), holding only
the SDK the Lambda runtime ships. AWS updates that SDK on its own schedule and it lags
the newest release by months (the project pins boto3 1.44.8): ``RUNTIME_SDK`` pins an older release
line, boto3/botocore 1.40.4 with urllib3 1.26 (Amazon Linux 2 runtimes keep urllib3 below 2), so code
that only works with the project's newer SDK fails here as it would in Lambda. It is cached under
``.venv/rehearsal-cache`` (one pip install, from PyPI or pip's cache, on first use).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.rehearsal import synth
from tests.rehearsal.cloud import ACCOUNT, REGION, MotoCloud
from tests.rehearsal.synth import CACHE

RUNTIME_SDK = (
    "boto3==1.40.4",
    "botocore==1.40.4",
    "s3transfer==0.13.1",
    "jmespath==1.0.1",
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    "urllib3==1.26.20",
)
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")


def base_python(version: str) -> Path:
    """This machine's CPython ``version`` (e.g. "3.11"): the one running the tests when it is that
    version, else ``pythonX.Y`` from PATH."""
    name = f"python{version}"
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return Path(sys.base_prefix) / "bin" / name
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"the stack's Lambdas run {name} (stacks/lambda_factory.py) and this machine has no {name} "
            f"(the tests run on {sys.version.split()[0]}): install CPython {version} to rehearse them"
        )
    return Path(found)


def runtime_python(runtime: str) -> Path:
    """The interpreter of the Lambda ``runtime`` as deployed (e.g. "python3.11"), created once."""
    version = runtime.removeprefix("python")
    tag = "-".join(p.replace("==", "") for p in RUNTIME_SDK[:2])
    home = CACHE / f"lambda-runtime-py{version}-{tag}"
    python = home / "bin" / "python"
    stamp = home / ".complete"
    if not stamp.exists():
        # Built beside the cache entry and published in one rename (a venv without scripts still runs
        # when moved), so parallel test workers never see, or delete, each other's half-made one.
        staging = synth.staging_dir(home)
        subprocess.run([str(base_python(version)), "-m", "venv", "--without-pip", str(staging)], check=True)
        site = next((staging / "lib").glob(f"python{version}/site-packages"))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-compile",
                "--target",
                str(site),
                *RUNTIME_SDK,
            ],
            check=True,
        )
        (staging / stamp.name).touch()
        if not stamp.exists():  # without its stamp, an old unfinished one; with it, a parallel worker's
            shutil.rmtree(home, ignore_errors=True)
        synth.publish(staging, home)
    return python


@dataclass
class Invocation:
    result: Any
    error: dict[str, Any] | None
    output: str  # the function's stdout/stderr (its CloudWatch log in AWS)

    def ok(self) -> Any:
        assert self.error is None, (
            f"{self.error['errorType']}: {self.error['errorMessage']}\n"
            + "".join(self.error.get("stackTrace", []))
            + f"\n--- function output ---\n{self.output[-4000:]}"
        )
        return self.result


class DeployedLambda:
    """One deployed function: configuration read back from moto's Lambda, credentials from its role."""

    def __init__(self, cloud: MotoCloud, function_name: str, asset_dir: Path) -> None:
        self.cloud = cloud
        self.config = cloud.client("lambda").get_function_configuration(FunctionName=function_name)
        self.asset_dir = asset_dir
        self.role_arn = str(self.config["Role"])
        self.process: subprocess.Popen[str] | None = None
        self._log = Path(os.devnull)

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.config.get("Environment", {}).get("Variables", {}))

    def _process_environment(self) -> dict[str, str]:
        credentials = self.cloud.assume(self.role_arn, self.config["FunctionName"])
        name = self.config["FunctionName"]
        return {
            "PATH": "/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            **self.environment,
            "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": credentials["aws_session_token"],
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # The one addition to what Lambda sets: the SDK talks to moto's server.
            "AWS_ENDPOINT_URL": self.cloud.endpoint,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.config['Runtime']}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.config["MemorySize"]),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.config["Timeout"]),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "LAMBDA_TASK_ROOT": str(self.asset_dir),
            "_HANDLER": self.config["Handler"],
            "_X_AMZN_TRACE_ID": "Root=1-675e1a2b-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "REHEARSAL_FUNCTION_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        }

    def invoke(self, event: dict[str, Any]) -> Invocation:
        """One invocation in the function's warm execution environment (started on first use, with
        credentials of the function's role, as Lambda starts one)."""
        process = self._environment_process()
        assert process.stdin is not None and process.stdout is not None
        start = self._log.stat().st_size
        process.stdin.write(json.dumps(event) + "\n")
        process.stdin.flush()
        answer = process.stdout.readline()
        output = self._log.read_text(errors="replace")[start:]
        if not answer:
            self.process = None
            raise AssertionError(f"the Lambda runtime died (exit {process.wait()}):\n{output[-4000:]}")
        outcome = json.loads(answer)
        if "result" in outcome:
            return Invocation(outcome["result"], None, output)
        return Invocation(None, outcome, output)

    def _environment_process(self) -> subprocess.Popen[str]:
        if self.process is None or self.process.poll() is not None:
            self._log = Path(tempfile.mkdtemp(prefix="lambda-")) / "output.log"
            self._log.touch()
            self.process = subprocess.Popen(
                [
                    str(runtime_python(self.config["Runtime"])),
                    "-B",
                    str(BOOTSTRAP),
                    str(self.asset_dir),
                    self.config["Handler"],
                    str(self._log),
                ],
                env=self._process_environment(),
                cwd=self._log.parent,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        return self.process

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


def function_names(cloud: MotoCloud, stack_name: str) -> dict[str, str]:
    """{logical id: function name} of the stack's Lambda functions."""
    summaries = cloud.client("cloudformation").list_stack_resources(StackName=stack_name)
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in summaries["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::Lambda::Function"
    }


def environment_without_aws(extra: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **extra}
