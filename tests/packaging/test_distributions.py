"""Each distribution declares what its code imports; each deployable's list covers what it carries.

``pip install geobatch`` once could not be imported (``packaging`` was undeclared; ``scipy``,
``affine`` and ``urllib3`` came only transitively). These checks scan the source statically, so a
new import without its requirement fails here, not on a user's machine.
"""

from __future__ import annotations

import pytest

from stacks.lambda_factory import LAMBDA_REQUIREMENTS, RUNTIME_PROVIDED, SDK_DIR, WIRE_FILES
from stacks.requirements import (
    DISTRIBUTIONS,
    closure,
    constraints,
    declared,
    project,
    split,
    third_party,
    worker_requirements,
)
from tests.packaging.imports import PACKAGES, ROOT, modules, providers, top_level_imports, undeclared

pytestmark = pytest.mark.unit

SDK = ROOT / "sdk" / "geobatch"
# The SDK modules that need an extra (all the others must work with `pip install geobatch`).
SDK_EXTRAS = {
    "local": [SDK / "local"],
    # The map view's renderer (the monitor imports it only when a map is asked for).
    "geo": [
        SDK / "landcover",
        *(SDK / f for f in ("tiles.py", "tile_cover.py", "utm.py")),
        *(SDK / "ui" / f for f in ("tiles.py", "layers.py", "mapservice.py", "png.py")),
    ],
}
# What the worker image runs beside the worker: the core and the SDK (its CLI and extras excluded:
# a Function that uses them brings their requirements).
IMAGE_SDK_EXCLUDED = [SDK / "cli", SDK / "cli.py", SDK / "demo.py", *SDK_EXTRAS["local"], *SDK_EXTRAS["geo"]]


@pytest.fixture(scope="module")
def by_import() -> dict[str, set[str]]:
    return providers()


def _in(path, roots) -> bool:
    return any(path == root or root in path.parents for root in roots)


def test_the_sdk_imports_only_its_lean_dependencies(by_import):
    extra_roots = [root for roots in SDK_EXTRAS.values() for root in roots]
    files = [f for f in modules([SDK]) if not _in(f, extra_roots)]
    assert len(files) > 10
    assert undeclared(files, ["geobatch", *declared("geobatch")], by_import) == {}


@pytest.mark.parametrize("extra", sorted(SDK_EXTRAS))
def test_each_sdk_extra_covers_its_modules(by_import, extra):
    requirements = ["geobatch", *declared("geobatch"), *declared("geobatch", extra)]
    files = modules(SDK_EXTRAS[extra])
    assert files
    assert undeclared(files, requirements, by_import) == {}


@pytest.mark.parametrize("distribution", ["geobatch-server", "geobatch-worker"])
def test_the_server_and_worker_declare_their_imports(by_import, distribution):
    files = modules(PACKAGES[distribution].values())
    assert files
    assert undeclared(files, [distribution, *declared(distribution)], by_import) == {}


def test_the_lambda_asset_requirements_cover_what_the_asset_carries(by_import):
    """The asset: the server's packages and geobatch/wire; pip installs LAMBDA_REQUIREMENTS beside them."""
    files = modules([*PACKAGES["geobatch-server"].values(), *(SDK_DIR / f for f in WIRE_FILES)])
    carried = ["geobatch", "geobatch-server", *LAMBDA_REQUIREMENTS, *RUNTIME_PROVIDED]
    assert undeclared(files, carried, by_import) == {}
    assert {split(r)[0] for r in LAMBDA_REQUIREMENTS} == {
        split(r)[0] for r in declared("geobatch-server") if split(r)[0] not in DISTRIBUTIONS
    }


def _image_modules() -> list:
    """What batch_image/Dockerfile copies and runs: the worker, the core and the SDK (no extras)."""
    return [
        f
        for f in modules([*PACKAGES["geobatch-worker"].values(), *PACKAGES["geobatch-server"].values(), SDK])
        if not _in(f, IMAGE_SDK_EXCLUDED)
        and not _in(f, [ROOT / "lambdas" / "geobatch_api"])
        and not _in(f, [ROOT / "lambdas" / "geobatch_ops"])
    ]


def test_the_worker_image_requirements_cover_what_the_image_runs(by_import):
    image = ["geobatch", "geobatch-server", "geobatch-worker", *third_party("geobatch-worker")]
    assert undeclared(_image_modules(), image, by_import) == {}
    # The image never gets what only the Lambdas or the CLI import, not even transitively.
    names = {split(r)[0] for r in worker_requirements()}
    assert not names & {"aws-lambda-powertools", "aws-xray-sdk", "click"}, names


def test_the_worker_declares_exactly_what_the_image_imports(by_import):
    """No surplus either: each of the worker's requirements is imported by a module the image runs
    (a requirement only the Lambdas or the CLI used would otherwise ride along in every image)."""
    imported: set[str] = set()
    for path in _image_modules():
        for name in top_level_imports(path):
            imported |= by_import.get(name, set())
    declared_names = {split(r)[0] for r in third_party("geobatch-worker")}
    assert declared_names == imported - set(DISTRIBUTIONS)


def test_the_image_installs_the_closure_at_constraints_versions():
    """What the builders pass the Dockerfile (``--no-deps``): the declared requirements and all they
    require (this venv's metadata, the image's markers), each at constraints.txt's version."""
    pins = constraints()
    image = dict(r.split("==") for r in worker_requirements())
    assert {split(r)[0] for r in third_party("geobatch-worker")} < set(image)
    assert {"botocore", "s3transfer", "jmespath", "pydantic-core", "typing-extensions"} <= set(image)
    assert all(pins[name] == version for name, version in image.items())
    # Extras and markers are followed only where they apply (boto3's [crt] is not asked for).
    assert "awscrt" not in image
    with pytest.raises(ValueError, match="email-validator is not installed"):
        closure(["pydantic[email]"])  # an extra asked for is followed (and not installed in the venv)


def test_the_scan_sees_an_undeclared_import(tmp_path, by_import):
    module = ROOT / "sdk" / "geobatch" / "_scan_probe.py"
    module.write_text("def f():\n    import scipy.ndimage\n    from urllib3 import util\n    import json\n")
    try:
        assert undeclared([module], ["geobatch", "urllib3"], by_import) == {
            "scipy": ["sdk/geobatch/_scan_probe.py"]
        }
    finally:
        module.unlink()


def test_first_party_requirements_are_the_same_version():
    versions = {name: project(name)["version"] for name in DISTRIBUTIONS}
    assert len(set(versions.values())) == 1, versions
    for distribution in DISTRIBUTIONS:
        table = project(distribution)
        requirements = [*table.get("dependencies", [])]
        for extra in table.get("optional-dependencies", {}).values():
            requirements += extra
        for requirement in requirements:
            name, _, spec = split(requirement)
            if name in DISTRIBUTIONS and spec:
                assert spec == f"=={versions[name]}", (distribution, requirement)
