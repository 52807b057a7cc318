"""Each deployable's requirements, read from its distribution's pyproject.toml (the one list).

- The Lambda asset: ``lambdas/pyproject.toml`` (geobatch-server), bundled by ``lambda_factory``.
- The worker image: ``batch_image/pyproject.toml`` (geobatch-worker), installed by
  ``batch_image/Dockerfile`` from the ``WORKER_REQUIREMENTS`` that ``scripts/build_image.sh`` and
  ``stacks/image_build.py`` take from here: those requirements *and everything they pull in*,
  each at constraints.txt's version, so the image's worker layer is the tested tree, not whatever
  the index holds on the day of the build (the Dockerfile installs exactly that list, ``--no-deps``).

The geobatch distributions themselves are left out: the deployables copy their code, not their
distributions (whose other requirements, click or Powertools, the deployable never imports).

Standard library only, but for the worker's closure, read from the installed distributions'
metadata: ``scripts/build_image.sh`` runs it with the project's virtualenv
(``.venv/bin/python stacks/requirements.py worker`` prints the image's pinned requirements).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO_ROOT / "constraints.txt"
# Distribution name → the directory of its pyproject.toml.
DISTRIBUTIONS = {
    "geobatch": REPO_ROOT,
    "geobatch-server": REPO_ROOT / "lambdas",
    "geobatch-worker": REPO_ROOT / "batch_image",
}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def canonical(name: str) -> str:
    """PEP 503 normalized name (``aws_lambda_powertools`` → ``aws-lambda-powertools``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split(requirement: str) -> tuple[str, str, str]:
    """``name[extras]spec`` → (canonical name, extras, specifier); markers are not used here."""
    match = _NAME.match(requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return canonical(match.group(1)), match.group(2) or "", match.group(3).strip()


def project(distribution: str) -> dict:
    """The ``[project]`` table of a geobatch distribution's pyproject.toml."""
    with (DISTRIBUTIONS[distribution] / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]


def declared(distribution: str, extra: str | None = None) -> list[str]:
    """The requirements a distribution declares (its dependencies, or one extra's)."""
    table = project(distribution)
    if extra is None:
        return list(table.get("dependencies", []))
    return list(table.get("optional-dependencies", {})[extra])


def third_party(distribution: str) -> list[str]:
    """The distribution's own requirements minus the geobatch distributions, as declared."""
    return [r for r in declared(distribution) if split(r)[0] not in DISTRIBUTIONS]


def constraints(path: Path = CONSTRAINTS) -> dict[str, str]:
    """constraints.txt as {canonical name: version}."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise ValueError(f"{path.name}: {line!r} is not pinned with ==")
        pins[canonical(name)] = version.strip()
    return pins


def pinned(requirements: list[str], pins: dict[str, str] | None = None) -> list[str]:
    """``name[extras]==version`` for each requirement, the version taken from constraints.txt."""
    pins = constraints() if pins is None else pins
    out = []
    for requirement in requirements:
        name, extras, _ = split(requirement)
        if name not in pins:
            raise ValueError(f"{name} is required but constraints.txt does not pin it")
        out.append(f"{name}{extras}=={pins[name]}")
    return out


def lambda_requirements() -> tuple[str, ...]:
    """What the Lambda asset pip-installs (the runtime's own boto3 closure is dropped after resolving)."""
    return tuple(pinned(third_party("geobatch-server")))


# The interpreter the worker image runs (python:3.11-slim, linux/amd64, as the job definition's
# runtimePlatform says): requirement markers are read for it, not for the machine that synthesizes.
IMAGE_MARKERS = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
}


def closure(requirements: list[str]) -> list[str]:
    """The requirements and every distribution they require, transitively (canonical names, sorted).

    Read from the metadata of the distributions installed in this interpreter (the virtualenv
    made from constraints.txt), with markers evaluated for the image (``IMAGE_MARKERS``)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    found: dict[str, set[str]] = {}  # name → the extras already followed
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = canonical(requirement.name)
        extras = set(requirement.extras)
        if name in found and extras <= found[name]:
            continue
        found[name] = found.get(name, set()) | extras
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            raise ValueError(
                f"{name} is not installed here: run `make venv` (its metadata says what it needs)"
            ) from None
        for line in requires:
            dependency = Requirement(line)
            wanted = [{**IMAGE_MARKERS, "extra": extra} for extra in ["", *sorted(found[name])]]
            if dependency.marker is None or any(dependency.marker.evaluate(m) for m in wanted):
                todo.append(dependency)
    return sorted(found)


def worker_requirements() -> tuple[str, ...]:
    """What the worker image pip-installs before the Function's requirements: geobatch-worker's
    requirements and their whole closure, each pinned to constraints.txt's version."""
    return tuple(pinned(closure(third_party("geobatch-worker"))))


def main(argv: list[str]) -> int:
    targets = {"worker": worker_requirements, "lambda": lambda_requirements}
    if len(argv) != 1 or argv[0] not in targets:
        print(f"usage: requirements.py {{{'|'.join(targets)}}}", file=sys.stderr)
        return 2
    print(" ".join(targets[argv[0]]()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
