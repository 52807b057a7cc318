"""Each distribution declares what its code imports; each deployable's list covers what it carries.

``pip install geobatch`` once could not be imported (``packaging`` was undeclared; ``scipy``,
``affine`` and ``urllib3`` came only transitively). These checks scan the source statically, so a
new import without its requirement fails here, not on a user's machine.
"""

from __future__ import annotations

import pytest

from stacks.lambda_factory import LAMBDA_REQUIREMENTS, RUNTIME_PROVIDED, SDK_DIR, WIRE_FILES
from stacks.requirements import DISTRIBUTIONS, declared, project, split, worker_requirements
from tests.packaging.imports import PACKAGES, ROOT, modules, providers, undeclared

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


def test_the_worker_image_requirements_cover_what_the_image_runs(by_import):
    files = [
        f
        for f in modules([*PACKAGES["geobatch-worker"].values(), *PACKAGES["geobatch-server"].values(), SDK])
        if not _in(f, IMAGE_SDK_EXCLUDED)
        and not _in(f, [ROOT / "lambdas" / "geobatch_api"])
        and not _in(f, [ROOT / "lambdas" / "geobatch_ops"])
    ]
    image = ["geobatch", "geobatch-server", "geobatch-worker", *worker_requirements()]
    assert undeclared(files, image, by_import) == {}
    # The image never gets what only the Lambdas or the CLI import.
    names = {split(r)[0] for r in worker_requirements()}
    assert not names & {"aws-lambda-powertools", "aws-xray-sdk", "click"}, names


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
