"""The rehearsal's session: synthesize once (with bundling), start moto with IAM enforced, deploy once.

Every test module of ``tests/rehearsal`` carries the ``rehearsal`` marker (``make rehearse-cloud``
runs only them). The deployed stack is shared by the session; tests that change state create their own
Functions.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "lambdas"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tests.rehearsal import cloud as cloud_  # noqa: E402
from tests.rehearsal import deploy, synth  # noqa: E402
from tests.rehearsal.lambda_runtime import DeployedLambda, function_names  # noqa: E402

# What the synthesized assembly depends on: a change to any of them synthesizes again.
ASSEMBLY_INPUTS = (
    "app.py",
    "cdk.json",
    "constraints.txt",
    "stacks",
    "lambdas",
    "batch_image",
    "sdk/geobatch",
)


def _assembly_key() -> str:
    digest = hashlib.sha256(json.dumps(synth.CONTEXT, sort_keys=True).encode())
    for name in ASSEMBLY_INPUTS:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(file.relative_to(ROOT).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:24]


@dataclass
class Assembly:
    outdir: Path
    stack_name: str
    template: dict[str, Any]

    @property
    def lambda_asset(self) -> Path:
        return synth.lambda_asset_dir(self.outdir, self.stack_name, self.template)


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    """The cloud assembly of the default context, synthesized with bundling (cached by its inputs)."""
    cached = synth.CACHE / f"assembly-{_assembly_key()}"
    meta = cached / "rehearsal.json"
    if not meta.exists():
        staging = tmp_path_factory.mktemp("cdk-out")
        stack_name, _ = synth.synthesize(staging)
        (staging / "rehearsal.json").write_text(json.dumps({"stack_name": stack_name}))
        # An entry without its meta is an old unfinished one (one with it, a parallel worker's: kept).
        if not meta.exists():
            shutil.rmtree(cached, ignore_errors=True)
        cached.parent.mkdir(parents=True, exist_ok=True)
        entry = synth.staging_dir(cached)
        shutil.copytree(staging, entry, symlinks=True)
        synth.publish(entry, cached)
    stack_name = json.loads(meta.read_text())["stack_name"]
    template = json.loads((cached / f"{stack_name}.template.json").read_text())
    return Assembly(cached, stack_name, template)


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloud_.MotoCloud]:
    moto = cloud_.MotoCloud.start(tmp_path_factory.mktemp("moto"))
    try:
        yield moto
    finally:
        moto.stop()


@dataclass
class Stack:
    name: str
    template: dict[str, Any]
    deployed_template: dict[str, Any]
    bridged: dict[str, Any]
    bridge_failures: dict[str, str]
    status: str
    physical: dict[str, str]
    asset_dir: Path
    uploaded_keys: list[str]

    def bridged_name(self, cfn_type: str) -> str:
        """The name the bridge gave the one resource of ``cfn_type`` (e.g. the CodeBuild project)."""
        (name,) = (
            deploy.bridged_literals(self.name, k, v)[0]
            for k, v in self.bridged.items()
            if v["Type"] == cfn_type
        )
        return name


@pytest.fixture(scope="session")
def stack(cloud: cloud_.MotoCloud, assembly: Assembly) -> Stack:
    """The template deployed into moto's CloudFormation, as ``cdk deploy`` would (see deploy.py)."""
    cloud_.bootstrap(cloud)
    keys = cloud_.upload_assets(cloud, assembly.outdir, assembly.stack_name)
    deployable, bridged = deploy.split_template(assembly.template, assembly.stack_name)
    status = deploy.create_stack(cloud, assembly.stack_name, deployable)["StackStatus"]
    resolver = deploy.Resolver(cloud, assembly.template, assembly.stack_name)
    failures = deploy.create_bridged(cloud, bridged, resolver)
    return Stack(
        name=assembly.stack_name,
        template=assembly.template,
        deployed_template=deployable,
        bridged=bridged,
        bridge_failures=failures,
        status=status,
        physical=resolver.physical,
        asset_dir=assembly.lambda_asset,
        uploaded_keys=keys,
    )


@dataclass
class Lambdas:
    api: DeployedLambda
    scaler: DeployedLambda
    build_events: DeployedLambda
    batch_events: DeployedLambda


@pytest.fixture(scope="session")
def lambdas(cloud: cloud_.MotoCloud, stack: Stack) -> Iterator[Lambdas]:
    """The stack's four Python Lambdas, found by their handler as deployed (each warm after its first
    invocation, as Lambda keeps an execution environment)."""
    by_handler: dict[str, DeployedLambda] = {}
    for name in function_names(cloud, stack.name).values():
        function = DeployedLambda(cloud, name, stack.asset_dir)
        by_handler[function.config["Handler"]] = function
    yield Lambdas(
        api=by_handler["geobatch_api.app.handler"],
        scaler=by_handler["geobatch_ops.scaler.handler"],
        build_events=by_handler["geobatch_ops.build_events.handler"],
        batch_events=by_handler["geobatch_ops.batch_events.handler"],
    )
    for function in by_handler.values():
        function.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing rehearsal test shows the requests IAM denied during the session (the usual cause)."""
    outcome = yield
    report = outcome.get_result()
    moto = item.funcargs.get("cloud") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(moto, cloud_.MotoCloud):
        denied = [d for d in moto.decisions() if not d["allowed"]]
        lines = [f"{d['principal']} {d['action']} {d['resource']}: {d['reason']}" for d in denied[-20:]]
        report.sections.append(("IAM denials (last 20)", "\n".join(lines) or "none"))
