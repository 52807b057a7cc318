"""Code bundling: entry point source, checks, included modules and data, requirements, determinism."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import pytest

from geobatch import BoundGlobalError, ValidationError
from geobatch.bundle import bound_globals, entrypoint_source, make_bundle, read_requirements
from geobatch.wire import errors, limits

pytestmark = pytest.mark.unit


def plain(x, y=2):
    import math

    def inner(v):
        return math.sqrt(v)

    return [inner(x) * y for _ in range(1)]


def uses_globals(x):
    return json.dumps(x) + str(Path(x)) + str(len(x))


def recursive(n):
    return 1 if n <= 1 else n * recursive(n - 1)


class Holder:
    def method(self):
        return 1


def names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def read(data: bytes, name: str) -> str:
    return zipfile.ZipFile(io.BytesIO(data)).read(name).decode()


def test_entrypoint_is_dedented_source_plus_main() -> None:
    source = entrypoint_source(plain)
    assert source.startswith("def plain(x, y=2):")
    assert source.endswith("\n\n\nmain = plain\n")
    namespace: dict = {}
    exec(compile(source, "__gbentry__.py", "exec"), namespace)
    assert namespace["main"](4) == [4.0]


def test_nested_def_source_is_dedented() -> None:
    def nested(a):
        return a + 1

    source = entrypoint_source(nested)
    assert source.startswith("def nested(a):")


def test_bound_globals_are_named() -> None:
    assert bound_globals(uses_globals) == ["Path", "json"]
    with pytest.raises(BoundGlobalError) as caught:
        entrypoint_source(uses_globals)
    message = str(caught.value)
    assert "Path, json" in message and "import inside the function body or pass it as an argument" in message
    assert isinstance(caught.value, NameError) and isinstance(caught.value, errors.GeoBatchError)


def test_recursion_and_builtins_are_not_globals() -> None:
    assert bound_globals(recursive) == []
    assert bound_globals(plain) == []


def test_lambdas_methods_and_closures_are_refused() -> None:
    with pytest.raises(ValidationError, match="lambda"):
        entrypoint_source(lambda x: x)
    with pytest.raises(ValidationError, match="plain def at module level"):
        entrypoint_source(Holder().method)
    with pytest.raises(ValidationError, match="plain def at module level"):
        entrypoint_source(Holder.method)
    factor = 3

    def closure(x):
        return x * factor

    with pytest.raises(ValidationError, match="factor"):
        entrypoint_source(closure)
    with pytest.raises(ValidationError, match="not a plain function"):
        entrypoint_source(len)  # type: ignore[arg-type]


def test_dotted_strings() -> None:
    assert entrypoint_source("pkg.mod:func") == "from pkg.mod import func as main\n"
    assert entrypoint_source("pkg.mod.func") == "from pkg.mod import func as main\n"
    with pytest.raises(ValidationError):
        entrypoint_source("not a path")


def test_zip_is_deterministic() -> None:
    first = make_bundle(plain, requirements=["numpy>=1.26"])
    second = make_bundle(plain, requirements=["numpy>=1.26"])
    assert first.data == second.data
    assert names(first.data) == ["__gbentry__.py", "requirements.txt"]
    info = zipfile.ZipFile(io.BytesIO(first.data)).infolist()[0]
    assert info.date_time == (1980, 1, 1, 0, 0, 0) and info.compress_type == zipfile.ZIP_DEFLATED
    assert read(first.data, "requirements.txt") == "numpy>=1.26\n"


def test_requirements_file_and_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "requirements.txt"
    good.write_text(
        "# comment\nnumpy==2.0  # pinned\n\n--extra-index-url https://x.test/simple\ntorch==2.0.1+cpu\n"
    )
    assert read_requirements(good) == [
        "numpy==2.0",
        "--extra-index-url https://x.test/simple",
        "torch==2.0.1+cpu",
    ]
    assert read_requirements(str(good)) == read_requirements(good)
    bad = tmp_path / "bad.txt"
    bad.write_text("numpy\nscikit-learn>=>1\n")
    with pytest.raises(ValidationError, match=r"bad\.txt line 2: .*scikit-learn>=>1"):
        read_requirements(bad)
    with pytest.raises(ValidationError, match="line 1"):
        read_requirements(["numpy ==="])
    with pytest.raises(ValidationError, match="requirements=\\['numpy'"):
        read_requirements("numpy")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project dir (the CWD, on sys.path) with a package, a module and data files."""
    src = tmp_path / "src"
    (src / "mypkg" / "sub").mkdir(parents=True)
    (src / "mypkg" / "__init__.py").write_text("")
    (src / "mypkg" / "core.py").write_text("VALUE = 1\n")
    (src / "mypkg" / "sub" / "__init__.py").write_text("")
    (src / "mypkg" / "sub" / "leaf.py").write_text("LEAF = 2\n")
    (src / "solo_mod_gb.py").write_text("X = 1\n")
    (tmp_path / "data" / "deep").mkdir(parents=True)
    (tmp_path / "data" / "a.csv").write_text("a\n")
    (tmp_path / "data" / "deep" / "b.csv").write_text("b\n")
    (tmp_path / "data" / "deep" / "__main__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(src))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith(("mypkg", "solo_mod_gb"))]:
        del sys.modules[name]


def test_include_modules(project: Path) -> None:
    built = make_bundle(plain, include_modules=["mypkg", "solo_mod_gb"])
    assert {
        "mypkg/__init__.py",
        "mypkg/core.py",
        "mypkg/sub/__init__.py",
        "mypkg/sub/leaf.py",
        "solo_mod_gb.py",
    } <= set(built.files)
    leaf_only = make_bundle(plain, include_modules=["mypkg.sub.leaf"])
    assert {"mypkg/__init__.py", "mypkg/sub/__init__.py", "mypkg/sub/leaf.py"} <= set(leaf_only.files)
    assert "mypkg/core.py" not in leaf_only.files


def test_system_modules_are_refused(project: Path) -> None:
    with pytest.raises(ValidationError, match="Cannot include system modules"):
        make_bundle(plain, include_modules=["urllib3"])
    with pytest.raises(ValidationError, match="cannot import"):
        make_bundle(plain, include_modules=["no_such_module_gb"])


def test_include_data(project: Path) -> None:
    built = make_bundle(plain, include_data=["data/*.csv", "data/deep/*.csv"])
    assert {"data/a.csv", "data/deep/b.csv"} <= set(built.files)
    assert read(built.data, "data/a.csv") == "a\n"
    single = make_bundle(plain, include_data=["data/a.csv"])
    assert "data/a.csv" in single.files
    with pytest.raises(ValidationError, match=r"use a glob like data/\*\*/\*"):
        make_bundle(plain, include_data=["data"])
    with pytest.raises(ValidationError, match="does not exist"):
        make_bundle(plain, include_data=["data/missing.csv"])
    with pytest.raises(ValidationError, match=r"__main__\.py"):
        make_bundle(plain, include_data=["data/**/*"])
    assert make_bundle(plain, include_data=["data/*.nothing"]).files == ["__gbentry__.py"]


def test_bundle_size_is_capped(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_BUNDLE_BYTES", 100)
    with pytest.raises(errors.PayloadTooLargeError, match="at most 100"):
        make_bundle(plain, include_data=["data/*.csv"])


def test_the_demo_job_entry_point_imports_from_its_bundle_alone():
    # The bundle holds the def's source, not its module: an annotation naming a module-level import
    # (``Any``) would fail at the worker's import of __gbentry__ ("name 'Any' is not defined").
    from geobatch.landcover.job import classify_tile

    namespace: dict[str, object] = {}
    # dont_inherit: not under this test module's `from __future__ import annotations`, as in the worker.
    code = compile(entrypoint_source(classify_tile), "__gbentry__.py", "exec", dont_inherit=True)
    exec(code, namespace)
    assert callable(namespace["main"])
