"""Local image builder: one cached virtualenv per distinct (Python, requirements) recipe.

The local "base image" is the GeoBatch installation itself: each environment sees its packages
through a ``.pth`` line, the way an image layer sees the layers below it, and the Function's
requirements are pip-installed on top. A requirement that cannot be installed fails the build,
as it would in CodeBuild, and identical requirements reuse the environment.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import site
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from geobatch_core.records import FunctionRecord

BuildDone = Callable[[str, bool, str | None, str, str], None]  # function_id, ok, image_uri, log, reason

URI_SCHEME = "local-venv://"


def _base_digest() -> str:
    """What identifies the 'base image': the interpreter and the site-packages the .pth links."""
    base = [sys.executable, *(p for p in site.getsitepackages() if os.path.isdir(p))]
    return hashlib.sha256("\n".join(base).encode()).hexdigest()[:12]


BASE_DIGEST = _base_digest()


def build_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """A build's environment: the user's, without the daemon's (no GeoBatch or AWS settings)."""
    return {k: v for k, v in environ.items() if not k.startswith(("GEOBATCH_", "AWS_"))}


def python_of(image_uri: str) -> str:
    """The interpreter of a local image (a virtualenv); ``sys.executable`` when there is none."""
    if image_uri and image_uri.startswith(URI_SCHEME):
        return str(Path(image_uri[len(URI_SCHEME) :]) / "bin" / "python")
    return sys.executable


class LocalImageBuilder:
    def __init__(self, home: Path, on_done: BuildDone | None = None, *, pip_args: str = ""):
        self._root = home / "envs"
        self._root.mkdir(parents=True, exist_ok=True)
        self.on_done = on_done
        self._pip_args = shlex.split(pip_args)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _env_dir(self, image_hash: str) -> Path:
        # The base layer (this GeoBatch installation) is part of an environment's identity: an
        # environment linked to another installation (another checkout, another venv) would run
        # that installation's worker against this one's control plane.
        return self._root / f"{image_hash}-{BASE_DIGEST}"

    def image_uri(self, image_hash: str) -> str:
        return f"{URI_SCHEME}{self._env_dir(image_hash)}"

    def existing_image(self, image_hash: str) -> str | None:
        env_dir = self._env_dir(image_hash)
        return self.image_uri(image_hash) if (env_dir / ".complete").exists() else None

    def start_build(self, function: FunctionRecord, *, bundle_key: str, image_hash: str) -> Mapping[str, Any]:
        build_id = f"local-{image_hash[:12]}-{int(time.time())}"
        thread = threading.Thread(
            target=self._build_and_report,
            args=(function, image_hash),
            name=f"build-{build_id}",
            daemon=True,
        )
        thread.start()
        return {"build_id": build_id}

    def _build_and_report(self, function: FunctionRecord, image_hash: str) -> None:
        ok, log, reason = False, "", ""
        try:
            ok, log, reason = self.build(function, image_hash)
        except Exception as exc:  # a build must always end in ready or build_failed
            log, reason = f"{log}\nbuild crashed: {exc!r}", f"the build crashed: {exc}"
        if self.on_done is not None:
            uri = self.image_uri(image_hash) if ok else None
            self.on_done(function.id, ok, uri, log, reason)

    def build(self, function: FunctionRecord, image_hash: str) -> tuple[bool, str, str]:
        """Build (or wait for a concurrent build of) the environment; returns (ok, log, reason)."""
        with self._guard:
            lock = self._locks.setdefault(image_hash, threading.Lock())
        with lock:
            if self.existing_image(image_hash):
                return True, "image reused: identical requirements were built before\n", ""
            wanted = function.image if function.image is not None else "python3.11"
            here = f"python{sys.version_info.major}.{sys.version_info.minor}"
            if wanted != here:
                reason = f"local mode runs {here}; the Function asks for {wanted}"
                return False, reason + "\n", reason
            env_dir = self._env_dir(image_hash)
            log = [f"$ {sys.executable} -m venv --without-pip {env_dir}"]
            result = subprocess.run(
                [sys.executable, "-m", "venv", "--clear", "--without-pip", str(env_dir)],
                capture_output=True,
                text=True,
            )
            log.append(result.stdout + result.stderr)
            if result.returncode:
                return False, "\n".join(log), "could not create the virtualenv"
            self._link_base(env_dir)
            requirements = [r for r in function.requirements or [] if r.strip()]
            if requirements:
                failure = self._pip_install(env_dir, requirements, log)
                if failure:
                    return False, "\n".join(log), failure
            (env_dir / ".complete").write_text(image_hash)
            log.append("build complete")
            return True, "\n".join(log), ""

    def _pip_install(self, env_dir: Path, requirements: list[str], log: list[str]) -> str:
        """Install ``requirements`` into ``env_dir`` (sealed, see :meth:`_contained`), appending the
        command and its output to ``log``; the reason it failed, or "" if it did not."""
        req_file = env_dir / "requirements.txt"
        req_file.write_text("\n".join(requirements) + "\n")
        command = [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_dir / "bin" / "python"),
            "install",
            "--disable-pip-version-check",
            "--no-input",
            *self._pip_args,
            "-r",
            str(req_file),
        ]
        log.append("$ " + " ".join(command))
        result = subprocess.run(
            self._contained(command, env_dir),
            capture_output=True,
            text=True,
            timeout=1800,
            env=build_environ(os.environ),
            cwd=env_dir,
            start_new_session=True,
        )
        log.append(result.stdout + result.stderr)
        if result.returncode:
            last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
            return f"pip could not install the requirements: {last}"
        return ""

    def _contained(self, command: list[str], env_dir: Path) -> list[str]:
        """``command`` sealed (geobatch_worker.contain): a requirement's setup.py runs with the
        installation and every other environment read-only and the daemon's state out of sight."""
        from geobatch_worker import contain

        others = [str(p) for p in self._root.iterdir() if p.is_dir() and p != env_dir]
        flags: list[str] = []
        for path in [*contain.code_paths(), *others]:
            flags += ["--ro", path]
        for path in contain.hidden_paths(self._root.parent):
            flags += ["--hide", path]
        return [sys.executable, "-m", "geobatch_worker.contain", *flags, "--", *command]

    def _link_base(self, env_dir: Path) -> None:
        """Let the environment see GeoBatch's own packages (the 'base image' layer)."""
        lib = env_dir / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
        lib.mkdir(parents=True, exist_ok=True)
        base_dirs = [p for p in site.getsitepackages() if os.path.isdir(p)]
        lines = [f"import site; site.addsitedir({d!r})" for d in base_dirs]
        (lib / "geobatch-base.pth").write_text("\n".join(lines) + "\n")
