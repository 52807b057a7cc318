"""Synthesize the real app WITH bundling (the Lambda asset as ``cdk deploy`` uploads it), once.

Bundling runs ``PipLocalBundling`` (pip with Lambda's platform wheels), which costs a minute; its
output is cached under ``.venv/rehearsal-cache/bundle-<hash>`` keyed by what decides it: the files
under ``lambdas/``, ``constraints.txt``, ``stacks/lambda_factory.py`` and the bundling's platform and
requirements. A cache hit copies that directory into CDK's bundling output instead of running pip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".venv" / "rehearsal-cache"
USER_BUCKET = "rehearsal-user-data"
# The stack as an operator deploys it for the flagship (`-c data_access=...`): Functions may read the
# user's bucket and write its products/ prefix, nothing else outside the stack's own bucket.
CONTEXT = {"data_access": {"read": [f"s3://{USER_BUCKET}/*"], "write": [f"s3://{USER_BUCKET}/products/*"]}}


def _tree_hash(digest: Any, root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())


def bundle_key(platform: str, requirements: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    _tree_hash(digest, ROOT / "lambdas")
    for name in ("constraints.txt", "stacks/lambda_factory.py"):
        digest.update((ROOT / name).read_bytes())
    digest.update(f"{platform}|{','.join(requirements)}".encode())
    return digest.hexdigest()[:24]


def staging_dir(cached: Path) -> Path:
    """An empty place beside a cache entry to build it in (this process's own)."""
    staging = cached.with_name(cached.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def publish(staging: Path, cached: Path) -> None:
    """Make a finished ``staging`` directory the cache entry in one rename: a reader never sees half
    of it, and of two workers of a parallel run that built the same inputs, the first one wins."""
    try:
        staging.rename(cached)
    except OSError:  # another worker got there first
        shutil.rmtree(staging, ignore_errors=True)


def install_bundle_cache() -> None:
    """Wrap ``PipLocalBundling.try_bundle`` with the cache (test-side only; the product is unchanged)."""
    from stacks import lambda_factory

    original = lambda_factory.PipLocalBundling.try_bundle
    if getattr(original, "rehearsal_cached", False):
        return

    # The same signature as the original: jsii expands the options struct into keyword arguments.
    def try_bundle(self: Any, output_dir: str, *, image: Any, **kwargs: Any) -> bool:
        cached = CACHE / f"bundle-{bundle_key(self.platform, self.requirements)}"
        if not cached.exists():
            staging = staging_dir(cached)
            staging.mkdir(parents=True)
            original(self, str(staging), image=image, **kwargs)
            publish(staging, cached)
        shutil.copytree(cached, output_dir, dirs_exist_ok=True)
        return True

    try_bundle.rehearsal_cached = True  # type: ignore[attr-defined]
    lambda_factory.PipLocalBundling.try_bundle = try_bundle  # type: ignore[method-assign]


def synthesize(outdir: Path) -> tuple[str, dict[str, Any]]:
    """(stack name, template) of ``CONTEXT`` over cdk.json, written with its assets to ``outdir``."""
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    install_bundle_cache()
    from app import build_app

    app, stack = build_app(CONTEXT, nag=False, outdir=str(outdir))
    assembly = app.synth()
    return stack.stack_name, dict(assembly.get_stack_by_name(stack.stack_name).template)


def lambda_asset_dir(outdir: Path, stack_name: str, template: dict[str, Any]) -> Path:
    """The staged directory of the code asset the stack's Python Lambdas run (found, as cdk-assets
    does, through the object key the template names)."""
    import json

    manifest = json.loads((outdir / f"{stack_name}.assets.json").read_text())
    by_key = {
        destination["objectKey"]: outdir / asset["source"]["path"]
        for asset in manifest["files"].values()
        for destination in asset["destinations"].values()
    }
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function" and str(props.get("Runtime", "")).startswith("python"):
            return by_key[props["Code"]["S3Key"]]
    raise AssertionError("the template has no Python Lambda")
