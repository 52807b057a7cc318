"""CodeBuild's buildspec and ``make image`` build the same Dockerfile, context and arguments.

Both recipes run here for real (bash), with ``docker`` (and ``aws``, for the buildspec's ECR calls)
replaced on PATH by a recorder: what is compared is the ``docker build`` each would run (its
Dockerfile, build arguments and context, file by file), not the recipes' text. The buildspec's
sources are what ``cdk deploy`` uploads (``batch_image/``, ``lambdas/geobatch_core`` and
``sdk/geobatch`` less ``image_build._EXCLUDE``); its scratch directory ``/tmp`` is moved into the
test's own. Only the image's tag differs, by design (the local name vs ``<ECR repository>:<hash>``).
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404
from pathlib import Path

import pytest

from geobatch_core import build_names as cb
from geobatch_core.adapters.codebuild import encode_requirements
from stacks.image_build import _EXCLUDE, _SECONDARY, BUILDSPEC
from stacks.requirements import worker_requirements
from tests.image.containers import ROOT

pytestmark = pytest.mark.unit

REQUIREMENTS = ["numpy==2.4.6", "shapely==2.2.0"]
# Records each call's arguments (one per line) and, for `docker build`, a copy of its context.
RECORDER = """#!/usr/bin/env bash
n=$(ls "$RECORD" | wc -l)
printf '%s\\n' "$(basename "$0")" "$@" > "$RECORD/$n.args"
if [ "$(basename "$0")" = docker ] && [ "$1" = build ]; then cp -R "${!#}" "$RECORD/$n.context"; fi
if [ "$(basename "$0")" = aws ] && [ "$2" = describe-images ]; then exit 1; fi  # no image yet
exit 0
"""


def _recorder(tmp: Path) -> dict[str, str]:
    bin_dir, record = tmp / "bin", tmp / "record"
    bin_dir.mkdir(parents=True)
    record.mkdir()
    for tool in ("docker", "aws"):
        (bin_dir / tool).write_text(RECORDER)
        (bin_dir / tool).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(record)}


def _docker_build(record: Path) -> tuple[list[str], Path]:
    """The one ``docker build`` recorded: its arguments and the copy of its context."""
    calls = sorted(record.glob("*.args"))
    builds = [p for p in calls if p.read_text().split("\n")[:2] == ["docker", "build"]]
    assert len(builds) == 1, [p.read_text() for p in record.glob("*.args")]
    return builds[0].read_text().splitlines()[1:], builds[0].with_suffix(".context")


def _shape(args: list[str], context: Path) -> dict[str, object]:
    """What makes the image: the Dockerfile (relative to the context), build arguments, context files."""
    assert args[0] == "build" and args[1] == "-f"
    build_args = dict(
        a.split("=", 1) for a, flag in zip(args[1:], args, strict=False) if flag == "--build-arg"
    )
    dockerfile = Path(args[2]).relative_to(args[-1])
    files = {str(p.relative_to(context)): p.read_bytes() for p in sorted(context.rglob("*")) if p.is_file()}
    return {"dockerfile": str(dockerfile), "build_args": build_args, "files": files}


def _make_image(tmp: Path) -> dict[str, object]:
    requirements = tmp / "requirements.txt"
    requirements.write_text("\n".join(REQUIREMENTS) + "\n")
    environ = {**_recorder(tmp / "local"), "GEOBATCH_BUILDER": "docker", "IMAGE": "localhost/gb:t"}
    subprocess.run(  # nosec B603 B607
        ["bash", str(ROOT / "scripts" / "build_image.sh"), str(requirements)], env=environ, check=True
    )
    return _shape(*_docker_build(Path(environ["RECORD"])))


def _asset(source: Path, target: Path) -> str:
    """A source directory as ``cdk deploy`` uploads it (the construct's exclude globs applied)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*(g.removeprefix("**/") for g in _EXCLUDE)))
    return str(target)


def _codebuild(tmp: Path) -> dict[str, object]:
    environ = _recorder(tmp / "codebuild")
    sources = tmp / "sources"
    environ["CODEBUILD_SRC_DIR"] = _asset(ROOT / "batch_image", sources / "primary")
    for name, path in _SECONDARY.items():
        environ[f"CODEBUILD_SRC_DIR_{name}"] = _asset(ROOT / path, sources / name)
    scratch = tmp / "scratch"
    scratch.mkdir()
    environ |= {
        "AWS_REGION": "us-east-1",
        "REPOSITORY_URI": "123456789012.dkr.ecr.us-east-1.amazonaws.com/geobatch-images",
        "REPOSITORY_NAME": "geobatch-images",
        "BUCKET": "geobatch-bucket",
        cb.VAR_IMAGE_TAG: "0123abcd",
        cb.VAR_FUNCTION_ID: "fn-1",
        cb.VAR_PYTHON: "python3.11",
        cb.VAR_REQUIREMENTS: encode_requirements(REQUIREMENTS),
    }
    phases = BUILDSPEC["phases"]
    commands = [c for phase in ("pre_build", "build") for c in phases[phase]["commands"]]  # type: ignore[index]
    script = "set -e\n" + "\n".join(commands).replace("/tmp/", f"{scratch}/")
    subprocess.run(["bash", "-c", script], env=environ, check=True)  # nosec B603 B607
    return _shape(*_docker_build(Path(environ["RECORD"])))


def test_codebuild_and_make_image_run_the_same_docker_build(tmp_path: Path) -> None:
    local, codebuild = _make_image(tmp_path), _codebuild(tmp_path)
    assert local["dockerfile"] == codebuild["dockerfile"] == "batch_image/Dockerfile"
    assert local["build_args"] == codebuild["build_args"]
    assert local["build_args"] == {
        "PYTHON_VERSION": "3.11",
        "REQUIREMENTS": "requirements.txt",
        "WORKER_REQUIREMENTS": " ".join(worker_requirements()),
    }
    assert local["files"] == codebuild["files"]
    files = local["files"]
    assert isinstance(files, dict) and files["requirements.txt"] == ("\n".join(REQUIREMENTS) + "\n").encode()
    assert "batch_image/geobatch_worker/__main__.py" in files and "lambdas/geobatch_core/__init__.py" in files
    assert not [name for name in files if "__pycache__" in name or ".egg-info" in name]
