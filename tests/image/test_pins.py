"""The worker image's runtime pins are the project's pins: batch_image/Dockerfile vs constraints.txt."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{line!r} is not pinned with =="
            pins[_normalize(name)] = version.strip()
    return pins


def worker_requirements(dockerfile: str) -> dict[str, str]:
    match = re.search(r"^ARG WORKER_REQUIREMENTS=(.+)$", dockerfile, re.MULTILINE)
    assert match, "batch_image/Dockerfile has no ARG WORKER_REQUIREMENTS line"
    return _pins(" ".join(shlex.split(match.group(1))).split())


def test_dockerfile_worker_pins_match_constraints() -> None:
    constraints = _pins((ROOT / "constraints.txt").read_text().splitlines())
    pins = worker_requirements((ROOT / "batch_image" / "Dockerfile").read_text())
    assert {"boto3", "pydantic", "aws-lambda-powertools"} <= set(pins)
    drift = {name: (version, constraints.get(name)) for name, version in pins.items()}
    assert {n: v for n, v in drift.items() if v[0] != v[1]} == {}, (
        "WORKER_REQUIREMENTS in batch_image/Dockerfile must use constraints.txt's versions "
        "(name: (Dockerfile, constraints.txt))"
    )


def test_the_check_sees_a_drifted_pin() -> None:
    drifted = 'ARG WORKER_REQUIREMENTS="boto3==1.0.0 click==8.5.1"\n'
    assert worker_requirements(drifted) == {"boto3": "1.0.0", "click": "8.5.1"}
    assert _pins(["aws_lambda_powertools==3.37.0"]) == {"aws-lambda-powertools": "3.37.0"}
