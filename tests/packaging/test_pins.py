"""Every pin a distribution declares is constraints.txt's (which pins the whole tree)."""

from __future__ import annotations

import pytest

from stacks.requirements import DISTRIBUTIONS, constraints, declared, pinned, project, split

pytestmark = pytest.mark.unit


def _all_requirements(distribution: str) -> list[str]:
    requirements = declared(distribution)
    for extra in project(distribution).get("optional-dependencies", {}):
        requirements += declared(distribution, extra)
    return requirements


def drift(requirements: list[str], pins: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """{name: (declared specifier, constraints.txt's version)} of every pin that disagrees."""
    out: dict[str, tuple[str, str | None]] = {}
    for requirement in requirements:
        name, _, spec = split(requirement)
        if name in DISTRIBUTIONS:
            continue
        if spec != f"=={pins.get(name)}":
            out[name] = (spec, pins.get(name))
    return out


@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
def test_every_declared_pin_is_constraints_txt(distribution):
    assert drift(_all_requirements(distribution), constraints()) == {}, (
        f"{distribution}'s pyproject.toml must pin exactly constraints.txt's versions "
        "(name: (declared, constraints.txt))"
    )


def test_the_check_sees_a_drifted_or_unpinned_requirement():
    pins = {"boto3": "1.44.8", "click": "8.5.1"}
    assert drift(["boto3==1.0.0", "click", "geobatch-server==0.1.0", "moto[server]==5"], pins) == {
        "boto3": ("==1.0.0", "1.44.8"),
        "click": ("", "8.5.1"),
        "moto": ("==5", None),
    }


def test_deployable_requirements_take_constraints_versions():
    pins = {"boto3": "1.44.8", "moto": "5.2.5"}
    assert pinned(["boto3", "moto[server]>=5"], pins) == ["boto3==1.44.8", "moto[server]==5.2.5"]
    with pytest.raises(ValueError, match="does not pin"):
        pinned(["numpy"], pins)
