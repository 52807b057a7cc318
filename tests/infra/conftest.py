"""Shared fixtures of the infrastructure tests: each context variant is synthesized once per session.

Bundling is skipped (``aws:cdk:bundling-stacks: []``) so no pip runs; cdk-nag is not registered as a
plugin here (it would fail synthesis); ``test_nag.py`` runs its checks on the synthesized apps.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "lambdas"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


class Synth:
    """A synthesized variant: the app, the stack and its template (dict)."""

    def __init__(self, context: dict[str, Any], outdir: Path) -> None:
        from aws_cdk.assertions import Template

        from app import SKIP_BUNDLING, build_app

        self.app, self.stack = build_app({**SKIP_BUNDLING, **context}, nag=False, outdir=str(outdir))
        assembly = self.app.synth()
        self.template_json: dict[str, Any] = assembly.get_stack_by_name(self.stack.stack_name).template
        self.template = Template.from_json(self.template_json)

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template_json["Resources"].items() if v["Type"] == cfn_type}


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Synth]:
    """``synth(**context)``: the synthesized variant, made once per distinct context."""
    cache: dict[tuple[tuple[str, str], ...], Synth] = {}

    def get(**context: Any) -> Synth:
        key = tuple(sorted((k, repr(v)) for k, v in context.items()))
        if key not in cache:
            cache[key] = Synth(context, tmp_path_factory.mktemp("cdk"))
        return cache[key]

    return get


@pytest.fixture(scope="session")
def default(synth: Callable[..., Synth]) -> Synth:
    return synth()
