"""What each distribution's modules import, and which distributions provide those imports.

A static scan (``ast``): every ``import`` in every module, at any depth (the imports inside
functions are the ones a bare install meets last), relative imports skipped, and so are the
imports under ``if TYPE_CHECKING:`` (type stubs such as ``mypy_boto3_*``: never imported at run time).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from stacks.requirements import DISTRIBUTIONS, canonical, split

ROOT = Path(__file__).resolve().parents[2]
# The packages each geobatch distribution ships (their pyprojects' packages.find).
PACKAGES = {
    "geobatch": {"geobatch": ROOT / "sdk" / "geobatch"},
    "geobatch-server": {p: ROOT / "lambdas" / p for p in ("geobatch_core", "geobatch_api", "geobatch_ops")},
    "geobatch-worker": {"geobatch_worker": ROOT / "batch_image" / "geobatch_worker"},
}
FIRST_PARTY = {name: dist for dist, packages in PACKAGES.items() for name in packages}


def top_level_imports(path: Path) -> set[str]:
    """The top-level names a module imports (``from a.b import c`` → ``a``)."""
    names: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node.test):
            node.body = []  # the walk below no longer sees them (an else branch still counts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def modules(roots: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        files += [root] if root.is_file() else sorted(root.rglob("*.py"))
    return files


def providers() -> dict[str, set[str]]:
    """Import name → the canonical names of the distributions that provide it (this venv's)."""
    found: dict[str, set[str]] = {}
    for name, dists in metadata.packages_distributions().items():
        found.setdefault(name, set()).update(canonical(d) for d in dists)
    for name, dist in FIRST_PARTY.items():
        found[name] = {dist}
    return found


def undeclared(files: Iterable[Path], requirements: Iterable[str], by_import: dict[str, set[str]]) -> dict:
    """{import name: [modules]} of every import that neither stdlib nor a requirement provides."""
    allowed = {split(r)[0] for r in requirements}
    missing: dict[str, list[str]] = {}
    for path in files:
        for name in sorted(top_level_imports(path)):
            if name in sys.stdlib_module_names or name == "__future__":
                continue
            if not by_import.get(name, set()) & allowed:
                missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return missing


__all__ = ["DISTRIBUTIONS", "FIRST_PARTY", "PACKAGES", "modules", "providers", "undeclared"]
