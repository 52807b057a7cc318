"""Code bundling: a Function's source, extra modules, data files and requirements in one zip.

The function is shipped as *source code*, never pickled: its source goes into ``__gbentry__.py``
with ``main = <name>`` appended, and the worker calls ``__gbentry__.main(*args, **kwargs)``.
The zip is deterministic (sorted entries, fixed timestamps), so the same code gives the same bytes.
"""

from __future__ import annotations

import builtins
import dis
import glob
import importlib
import inspect
import io
import os
import re
import sys
import textwrap
import types
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geobatch.wire import errors, limits, models

__all__ = [
    "ENTRYPOINT_FILE",
    "BoundGlobalError",
    "Bundle",
    "default_name",
    "make_bundle",
    "read_requirements",
]

ENTRYPOINT_MODULE = "__gbentry__"
ENTRYPOINT_FILE = f"{ENTRYPOINT_MODULE}.py"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date zip can store: fixed, so bytes are reproducible
_GLOB_CHARS = re.compile(r"[*?\[]")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*([.:][A-Za-z_][A-Za-z0-9_]*)$")


class BoundGlobalError(errors.ValidationError, NameError):
    """The function uses module-level names that will not exist where it runs."""


@dataclass
class Bundle:
    """A built code bundle: the zip bytes, the requirements and the archive's file names."""

    data: bytes
    requirements: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- entry point


def default_name(function: Callable[..., Any] | str) -> str:
    """The Function name used when none is given: the function's ``__name__`` or the last dotted part."""
    if isinstance(function, str):
        return re.split(r"[.:]", function)[-1]
    return str(getattr(function, "__name__", "function"))


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def bound_globals(function: types.FunctionType) -> list[str]:
    """Names the function (nested code included) reads from module globals, other than builtins."""
    names: set[str] = set()
    for code in _code_objects(function.__code__):
        for instruction in dis.get_instructions(code):
            if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME") and isinstance(instruction.argval, str):
                names.add(instruction.argval)
    return sorted(n for n in names if not hasattr(builtins, n) and n != function.__name__)


def _check_callable(function: Any) -> types.FunctionType:
    if isinstance(function, types.MethodType) or inspect.ismethod(function):
        raise errors.ValidationError(
            f"{function!r} is a method: define a plain def at module level and pass that function"
        )
    if not isinstance(function, types.FunctionType):
        raise errors.ValidationError(
            f"{function!r} is not a plain function: give a def'd function or a 'package.module:func' string"
        )
    if function.__name__ == "<lambda>":
        raise errors.ValidationError("lambdas cannot be bundled: define a plain def at module level")
    parts = function.__qualname__.split(".")
    if len(parts) > 1 and parts[-2] != "<locals>":
        raise errors.ValidationError(
            f"{function.__qualname__} is defined in a class: define a plain def at module level"
        )
    if function.__code__.co_freevars:
        raise errors.ValidationError(
            f"{function.__name__} uses variables of an enclosing function "
            f"({', '.join(function.__code__.co_freevars)}): define a plain def at module level "
            "and pass them as arguments"
        )
    if inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function):
        raise errors.ValidationError(f"{function.__name__} must be a plain def, not async or a generator")
    return function


def entrypoint_source(function: Callable[..., Any] | str) -> str:
    """The text of ``__gbentry__.py`` for ``function`` (a callable or ``"pkg.mod:func"`` string)."""
    if isinstance(function, str):
        spec = function.strip()
        if not _DOTTED.match(spec):
            raise errors.ValidationError(
                f"function {function!r} is not a 'package.module:func' or 'package.module.func' string"
            )
        module, _, name = spec.rpartition(":") if ":" in spec else spec.rpartition(".")
        return f"from {module} import {name} as main\n"
    fn = _check_callable(function)
    found = bound_globals(fn)
    if found:
        raise BoundGlobalError(
            f"{fn.__name__} uses global names {', '.join(found)}, which do not exist where it runs: "
            "import inside the function body or pass it as an argument"
        )
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError) as exc:
        raise errors.ValidationError(
            f"cannot read the source of {fn.__name__} ({exc}): define it in a .py file or a notebook cell, "
            "or give a 'package.module:function' string"
        ) from None
    source = textwrap.dedent(source)
    if source.lstrip().startswith("@"):
        raise errors.ValidationError(
            f"{fn.__name__} is decorated: bundle the undecorated function (the decorator would be a global)"
        )
    return f"{source.rstrip()}\n\n\nmain = {fn.__name__}\n"


# ----------------------------------------------------------------------------- requirements


def read_requirements(requirements: Iterable[str] | str | os.PathLike[str] | None) -> list[str]:
    """Checked requirement lines from a list of strings or a path to a requirements file.

    Blank lines and comments are dropped; pip options (``-f ...``, ``--extra-index-url ...``) and
    URLs are kept. A line that does not parse raises a ValidationError naming it.
    """
    if requirements is None:
        return []
    source = "requirements"
    if isinstance(requirements, str | os.PathLike):
        path = Path(requirements)
        if not path.is_file():
            raise errors.ValidationError(
                f"requirements file {str(path)!r} not found: give the path of a requirements file, "
                "or a list such as requirements=['numpy', 'scikit-learn>=1.4']"
            )
        source = str(path)
        lines = path.read_text().splitlines()
    else:
        lines = list(requirements)
    checked: list[str] = []
    for number, line in enumerate(lines, 1):
        if not isinstance(line, str):
            raise errors.ValidationError(f"{source} entry {number} is {line!r}, not a string")
        text = re.sub(r"\s+#.*$", "", line).strip()  # an inline comment is not part of the requirement
        if not text or text.startswith("#"):
            continue
        try:
            checked.append(models.check_requirement(text))
        except ValueError as exc:
            raise errors.ValidationError(f"{source} line {number}: {exc}") from None
    if len(checked) > limits.MAX_REQUIREMENTS:
        raise errors.ValidationError(
            f"{len(checked)} requirements; at most {limits.MAX_REQUIREMENTS} are allowed"
        )
    return checked


# ----------------------------------------------------------------------------- files


def _sys_path_roots() -> list[Path]:
    roots = {Path(p or os.getcwd()).resolve() for p in sys.path}
    roots.add(Path.cwd().resolve())
    return sorted((r for r in roots if r.is_dir()), key=lambda r: len(r.parts), reverse=True)


def _archive_name(path: Path, roots: list[Path]) -> str:
    """``path`` relative to the longest sys.path entry (or the CWD) that contains it."""
    resolved = path.resolve()
    for root in roots:
        if resolved.is_relative_to(root):
            return resolved.relative_to(root).as_posix()
    raise errors.ValidationError(
        f"{path} is outside the current directory and sys.path, so it has no place in the bundle"
    )


def _is_system(path: Path) -> bool:
    return any(
        part in ("site-packages", "dist-packages") for part in path.parts
    ) or path.resolve().is_relative_to(Path(sys.base_prefix).resolve() / "lib")


def module_files(name: str) -> dict[str, Path]:
    """The files of module or package ``name`` (with the ``__init__.py`` of its parents), by archive name."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise errors.ValidationError(f"include_modules: cannot import {name!r}: {exc}") from None
    filename = getattr(module, "__file__", None)
    if not filename:
        raise errors.ValidationError(
            f"include_modules: {name!r} has no source file (built-in or namespace package)"
        )
    path = Path(filename)
    if _is_system(path):
        raise errors.ValidationError(
            f"Cannot include system modules: {name!r} is installed in {path.parent}; "
            "add it to requirements instead"
        )
    if path.suffix != ".py":
        raise errors.ValidationError(
            f"include_modules: {name!r} is compiled ({path.name}); only .py source is bundled"
        )
    roots = _sys_path_roots()
    files: list[Path] = []
    if path.name == "__init__.py":
        files.extend(p for p in sorted(path.parent.rglob("*")) if p.suffix in (".py", ".pyx") and p.is_file())
        files = [p for p in files if "__pycache__" not in p.parts]
        package_dir = path.parent.parent
    else:
        files.append(path)
        package_dir = path.parent
    # Parent packages must come along, or `import pkg.sub.mod` fails where it runs.
    for _ in range(name.count(".")):
        init = package_dir / "__init__.py"
        if init.is_file():
            files.append(init)
        package_dir = package_dir.parent
    return {_archive_name(p, roots): p for p in files}


def data_files(patterns: Iterable[str]) -> dict[str, Path]:
    """The files matched by ``include_data`` globs (relative to the CWD), by archive name."""
    if isinstance(patterns, str):
        patterns = [patterns]
    roots = _sys_path_roots()
    found: dict[str, Path] = {}
    for pattern in patterns:
        if not _GLOB_CHARS.search(pattern):
            path = Path(pattern)
            if path.is_dir():
                raise errors.ValidationError(
                    f"include_data: {pattern!r} is a directory: use a glob like {pattern.rstrip('/')}/**/*"
                )
            if not path.is_file():
                raise errors.ValidationError(f"include_data: {pattern!r} does not exist")
            matches = [path]
        else:
            matches = [Path(p) for p in sorted(glob.glob(pattern, recursive=True)) if Path(p).is_file()]
        for path in matches:
            if path.name == "__main__.py":
                raise errors.ValidationError(
                    f"include_data: {path} is a __main__.py, which would take over the worker; rename it"
                )
            if "__pycache__" in path.parts:
                continue
            found[_archive_name(path, roots)] = path
    return found


# ----------------------------------------------------------------------------- zip


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix, whatever builds it: same bytes on every OS
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def make_bundle(
    function: Callable[..., Any] | str,
    *,
    include_modules: Iterable[str] | None = None,
    include_data: Iterable[str] | None = None,
    requirements: Iterable[str] | str | os.PathLike[str] | None = None,
) -> Bundle:
    """Build the zip of a Function: entry point, included modules and data, and requirements.txt."""
    checked = read_requirements(requirements)
    entries: dict[str, bytes] = {ENTRYPOINT_FILE: entrypoint_source(function).encode()}
    if isinstance(include_modules, str):
        include_modules = [include_modules]
    sources: dict[str, Path] = {}
    for name in include_modules or []:
        sources.update(module_files(name))
    sources.update(data_files(include_data or []))
    for archive_name, path in sources.items():
        if archive_name in (ENTRYPOINT_FILE, "requirements.txt"):
            raise errors.ValidationError(f"{path} would overwrite the bundle's own {archive_name}; rename it")
        entries[archive_name] = path.read_bytes()
    if checked:
        entries["requirements.txt"] = ("\n".join(checked) + "\n").encode()
    data = _zip(entries)
    if len(data) > limits.MAX_BUNDLE_BYTES:
        biggest = sorted(entries, key=lambda n: len(entries[n]), reverse=True)[:3]
        raise errors.PayloadTooLargeError(
            f"the code bundle is {len(data):,} bytes compressed; "
            f"at most {limits.MAX_BUNDLE_BYTES:,} are allowed. "
            f"Largest files: {', '.join(biggest)}. Keep big data in S3 and read it in the function."
        )
    return Bundle(data=data, requirements=checked, files=sorted(entries))
