"""The dependency direction between deployables, checked on what each one actually imports.

Each check runs in a fresh interpreter, so what an earlier test imported cannot hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_after(statement: str, prefixes: tuple[str, ...]) -> set[str]:
    """The modules starting with one of ``prefixes`` that ``statement`` loads."""
    code = (
        f"import json, sys; {statement}; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))"
    )
    paths = [str(ROOT), str(ROOT / "lambdas"), str(ROOT / "sdk"), str(ROOT / "batch_image")]
    env = {"PYTHONPATH": ":".join(paths), "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.infra
def test_stacks_import_only_pure_name_modules() -> None:
    loaded = imported_after("import stacks.geobatch_stack", ("geobatch", "botocore", "boto3"))
    assert not {m for m in loaded if m.startswith(("botocore", "boto3", "geobatch_core.adapters"))}
    assert not {m for m in loaded if m.startswith(("geobatch_core.services", "geobatch_api", "geobatch_ops"))}


@pytest.mark.unit
def test_ops_lambdas_take_their_ports_from_the_composition_root_not_the_api() -> None:
    statement = "import geobatch_ops.scaler, geobatch_ops.build_events, geobatch_ops.batch_events"
    loaded = imported_after(statement, ("geobatch_api", "geobatch_core.wiring"))
    assert loaded == {"geobatch_core.wiring"}


@pytest.mark.unit
def test_the_worker_builds_its_four_stores_without_the_control_planes_adapters() -> None:
    statement = "import geobatch_worker.loop; from geobatch_core.adapters.environment import stores_from_env"
    loaded = imported_after(statement, ("geobatch_core", "geobatch_api", "geobatch_ops"))
    control_plane = {
        "geobatch_core.wiring",
        "geobatch_core.adapters.batch",
        "geobatch_core.adapters.codebuild",
        "geobatch_core.adapters.worker_roles",
        "geobatch_core.adapters.events",
    }
    assert not loaded & control_plane
    assert not {m for m in loaded if m.startswith(("geobatch_api", "geobatch_ops"))}
