#!/usr/bin/env python3
"""CDK app entry: ``cdk synth`` (``make synth``) or ``python app.py [-c key=value ...]``.

Settings come from context: ``cdk.json`` defaults, then ``-c key=value`` (see ``stacks/config.py``).
Run directly, ``python app.py`` writes the cloud assembly to ``cdk.out`` like the CLI does;
``python app.py -c aws:cdk:bundling-stacks=[]`` skips the Lambda bundling (no pip run).
cdk-nag's AWS Solutions checks run on every synthesis; an unacknowledged finding fails it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
# The stacks import geobatch_core (env keys, layout names) so infrastructure and code agree.
sys.path.insert(0, str(ROOT / "lambdas"))
sys.path.insert(0, str(ROOT))

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from stacks.config import GeoBatchConfig  # noqa: E402
from stacks.geobatch_stack import GeoBatchStack  # noqa: E402

SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}


def cdk_json_context() -> dict[str, Any]:
    """The ``context`` of cdk.json (the CLI passes it itself; direct runs and tests read it here)."""
    return dict(json.loads((ROOT / "cdk.json").read_text()).get("context", {}))


def build_app(
    context: dict[str, Any] | None = None, *, nag: bool = True, outdir: str | None = None
) -> tuple[cdk.App, GeoBatchStack]:
    """The app and its stack; ``context`` overrides cdk.json (context given by the CLI wins over both)."""
    app = cdk.App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    config = GeoBatchConfig.from_context(app.node)
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    stack = GeoBatchStack(
        app,
        f"GeoBatch-{config.stage}",
        config=config,
        # An environment is needed only to look up an existing VPC; otherwise the template is portable.
        env=cdk.Environment(account=account, region=region) if config.vpc_id else None,
        description=f"GeoBatch serverless batch compute ({config.stage})",
    )
    cdk.Tags.of(stack).add("project", "geobatch")
    cdk.Tags.of(stack).add("geobatch:stage", config.stage)
    if nag:
        # cdk-nag 3 is a policy validation plugin: a finding that is not acknowledged fails synthesis.
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def parse_context_args(argv: list[str]) -> dict[str, Any]:
    """``-c key=value`` / ``--context key=value`` pairs; a value that parses as JSON is used parsed."""
    context: dict[str, Any] = {}
    args = iter(argv)
    for arg in args:
        if arg not in ("-c", "--context"):
            raise SystemExit(f"usage: python app.py [-c key=value ...] (unexpected argument {arg!r})")
        key, sep, value = next(args, "").partition("=")
        if not sep:
            raise SystemExit(f"-c needs key=value, got {key!r}")
        try:
            context[key] = json.loads(value)
        except json.JSONDecodeError:
            context[key] = value
    return context


if __name__ == "__main__":
    under_cli = "CDK_OUTDIR" in os.environ
    build_app(parse_context_args(sys.argv[1:]), outdir=None if under_cli else str(ROOT / "cdk.out"))[
        0
    ].synth()
