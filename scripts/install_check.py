"""The install a user gets: build the three wheels, install them into bare virtualenvs, use them.

    python scripts/install_check.py [--keep DIR]       (make install-check; tests/packaging runs it)

1. ``pip wheel --no-deps`` of geobatch, geobatch-server (lambdas/) and geobatch-worker (batch_image/)
   from a copy of their sources.
2. ``pip install geobatch`` into a bare venv (the wheels as --find-links, constraints.txt as -c):
   ``import geobatch`` (with its py.typed marker), ``geobatch --help``; the server, the worker,
   moto, rasterio and numpy must not be there.
3. ``pip install geobatch[local]`` into another: ``geobatch local up`` (a temporary home, 127.0.0.1),
   a Function saved and mapped over three inputs through the SDK, ``geobatch functions list`` from
   *both* installs (the lean one with ``--api-url``), ``geobatch local down``.

Prints each install's distribution count and size. Exits non-zero, saying why, on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "sdk", "lambdas", "batch_image")
WHEELS = (".", "lambdas", "batch_image")
ABSENT_FROM_LEAN = (
    "geobatch_core",
    "geobatch_api",
    "geobatch_ops",
    "geobatch_worker",
    "moto",
    "rasterio",
    "numpy",
)
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")

JOB = """
import geobatch as gb

def triple(x):
    return 3 * x

fn = gb.Function(triple, name="install-check", cpus=1, memory=2048, timeout=60)
fn.save()
fn.map([[1], [2], [3]])
fn.wait_for_completion(timeout=300)
print(sorted(fn.results()))
"""


class CheckFailed(Exception):
    pass


def run(command: list[str], **kwargs) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise CheckFailed(
            f"{' '.join(map(str, command))} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def build_wheels(work: Path) -> Path:
    """The three wheels, built from a copy of the sources (the worktree stays clean of build/)."""
    source, wheels = work / "src", work / "wheels"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=_IGNORE)
        else:
            shutil.copy2(path, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels)]
    run([*command, *(str(source / d) for d in WHEELS)])
    return wheels


def make_venv(path: Path, requirement: str, wheels: Path) -> Path:
    """A bare venv (no pip of its own: this interpreter's pip installs into it) with ``requirement``."""
    run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    python = path / "bin" / "python"
    run(
        [
            sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile",
            "--disable-pip-version-check", "--find-links", str(wheels), "-c", str(ROOT / "constraints.txt"),
            requirement,
        ]
    )  # fmt: skip
    return python


def census(python: Path) -> tuple[int, float]:
    """(distributions installed, MB of site-packages) of a venv."""
    code = (
        "import importlib.metadata as m, sysconfig, pathlib, json;"
        "p = pathlib.Path(sysconfig.get_paths()['purelib']);"
        "print(json.dumps([len({d.metadata['Name'] for d in m.distributions()}),"
        " sum(f.stat().st_size for f in p.rglob('*') if f.is_file())]))"
    )
    count, size = json.loads(run([str(python), "-c", code]))
    return count, size / 1e6


def check_lean(python: Path, home: Path) -> None:
    bin_dir = python.parent
    run([str(python), "-c", "import geobatch; geobatch.Function, geobatch.Job, geobatch.JobStatus"])
    # PEP 561: without the marker a user's type checker ignores the SDK's inline types.
    typed = "import geobatch, pathlib; print((pathlib.Path(geobatch.__file__).parent / 'py.typed').is_file())"
    if run([str(python), "-c", typed]).strip() != "True":
        raise CheckFailed("the geobatch wheel has no py.typed: add it to [tool.setuptools.package-data]")
    if "functions" not in run([str(bin_dir / "geobatch"), "--help"]):
        raise CheckFailed("geobatch --help does not list the functions commands")
    code = f"import importlib.util as u; print([m for m in {ABSENT_FROM_LEAN!r} if u.find_spec(m)])"
    present = json.loads(run([str(python), "-c", code]).replace("'", '"'))
    if present:
        raise CheckFailed(f"pip install geobatch brought {present}: they belong to an extra or a deployable")
    # Without an API URL the SDK would start local mode: the lean install says how to get it instead.
    home.mkdir(parents=True, exist_ok=True)
    environment = {**_clean_env(), "HOME": str(home), "GEOBATCH_HOME": str(home / ".geobatch")}
    for command in (["local", "up"], ["functions", "list"]):
        result = subprocess.run(
            [str(bin_dir / "geobatch"), *command], env=environment, capture_output=True, text=True
        )
        if (
            result.returncode == 0
            or "pip install 'geobatch[local]'" not in result.stderr
            or "Traceback" in result.stderr
        ):
            raise CheckFailed(
                f"geobatch {' '.join(command)} without local mode: {result.stdout}{result.stderr}"
            )


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GEOBATCH_"))}


def check_local(python: Path, lean: Path, home: Path) -> None:
    bin_dir = python.parent
    environment = {
        **_clean_env(),
        "HOME": str(home),
        "GEOBATCH_HOME": str(home / ".geobatch"),
    }
    home.mkdir(parents=True, exist_ok=True)
    run([str(bin_dir / "geobatch"), "local", "up"], env=environment)
    try:
        status = json.loads(run([str(bin_dir / "geobatch"), "local", "status", "--json"], env=environment))
        script = home / "install_check_job.py"  # a file: the SDK bundles the Function's source
        script.write_text(JOB)
        results = run([str(python), str(script)], env=environment).strip().splitlines()[-1]
        if results != "[3, 6, 9]":
            raise CheckFailed(f"the local job's results are {results}, not [3, 6, 9]")
        for geobatch in (bin_dir / "geobatch", lean.parent / "geobatch"):
            listed = json.loads(
                run(
                    [str(geobatch), "--api-url", status["api_url"], "--json", "functions", "list"],
                    env=environment,
                )
            )
            if "install-check" not in json.dumps(listed):
                raise CheckFailed(f"{geobatch} functions list does not show the Function: {listed}")
    finally:
        run([str(bin_dir / "geobatch"), "local", "down"], env=environment)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, help="work in this directory and keep it (default: a temporary one)"
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="geobatch-install-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        wheels = build_wheels(work)
        names = ", ".join(sorted(p.name for p in wheels.glob("*.whl")))
        print(f"wheels ({time.monotonic() - started:.0f} s): {names}")
        # The two installs are independent: pip runs them side by side (most of their time is I/O).
        with ThreadPoolExecutor(max_workers=2) as pool:
            lean_future = pool.submit(make_venv, work / "lean", "geobatch==0.1.0", wheels)
            local_future = pool.submit(make_venv, work / "local", "geobatch[local]==0.1.0", wheels)
            lean, local = lean_future.result(), local_future.result()
        print(f"venvs installed ({time.monotonic() - started:.0f} s)")
        check_lean(lean, work / "lean-home")
        count, size = census(lean)
        print(f"pip install geobatch:        {count:3d} distributions, {size:6.1f} MB (import, --help: ok)")
        check_local(local, lean, work / "home")
        count, size = census(local)
        print(
            f"pip install geobatch[local]: {count:3d} distributions, {size:6.1f} MB (local up, job, list: ok)"
        )
    except CheckFailed as exc:
        print(f"install check failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"install check passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
