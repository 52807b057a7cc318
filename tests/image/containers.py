"""The container engine the image tests build and run with: Docker where its daemon answers, else buildah.

buildah runs a container of the image in chroot isolation with the host's network (so the worker
reaches moto's server on 127.0.0.1), like ``docker run --network host``; both honour the image's
own user unless told otherwise, and the tests ask for it explicitly. A container's process is
what Docker (and so AWS Batch) would start: the image's entrypoint followed by the command, or by
the image's CMD when no command is given (``container_argv``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_ROOT = os.environ.get("CONTAINERS_ROOT", "/var/lib/containers/storage")
# A hang guard for builds and runs, not a performance assertion.
GUARD_SECONDS = 3600


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def can_build() -> str | None:
    """None when this machine can build and run images, else why not."""
    if docker_answers() or shutil.which("buildah"):
        return None
    if os.geteuid() == 0 and shutil.which("apt-get"):
        return None  # scripts/build_image.sh installs Debian's buildah
    return "neither a Docker daemon nor buildah, and not root to install buildah"


def build(image: str, requirements: Path) -> str:
    """``scripts/build_image.sh`` (what ``make image`` runs); returns its output, the build log."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build_image.sh"), str(requirements)],
        env={**os.environ, "IMAGE": image, "CONTAINERS_ROOT": CONTAINERS_ROOT},
        capture_output=True,
        text=True,
        timeout=GUARD_SECONDS,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"image build failed:\n{log[-6000:]}"
    return log


def _buildah(*args: str) -> list[str]:
    return ["buildah", "--root", CONTAINERS_ROOT, "--storage-driver", "vfs", *args]


def image_config(image: str) -> dict[str, Any]:
    """The image's config (``User``, ``Entrypoint``, ``Cmd``, ``Env``, ``Labels``...)."""
    if docker_answers():
        command = ["docker", "image", "inspect", image]
    else:  # (buildah's --format templates have no json function: the whole document, then its part)
        command = _buildah("inspect", "--type", "image", image)
    found = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return dict(found[0]["Config"] if isinstance(found, list) else found["OCIv1"]["config"])


def image_user(image: str) -> str:
    """The USER of the image's config."""
    return str(image_config(image).get("User") or "")


def image_size(image: str) -> str:
    """The image's size as the engine shows it (``buildah images``: "291 MB")."""
    if docker_answers():
        command = ["docker", "image", "inspect", "--format", "{{.Size}}", image]
        size = int(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        return f"{size / 1e6:.0f} MB"
    listed = subprocess.run(_buildah("images", "--json", image), check=True, capture_output=True, text=True)
    return str(json.loads(listed.stdout)[0]["size"])


def container_argv(config: Mapping[str, Any], command: Sequence[str] | None) -> list[str]:
    """The process a container starts, as Docker composes it: a task's command (AWS Batch's
    ``containerProperties.command``) replaces the image's CMD and is appended to its ENTRYPOINT."""
    return [*(config.get("Entrypoint") or []), *(command or config.get("Cmd") or [])]


class Container:
    """A container of an image to run processes in as a user, host network (``docker run`` per
    process, or one buildah working container for all of them: each new one is a full copy on vfs).

    A process is the image's entrypoint + the command given (``container_argv``), as Batch starts it.
    """

    def __init__(self, image: str, user: str) -> None:
        self.image, self.user = image, user
        self.config = image_config(image)
        self._buildah: str | None = None
        self._started: list[Process] = []

    def __enter__(self) -> Container:
        if not docker_answers():
            self._buildah = subprocess.run(
                _buildah("from", "--pull=never", self.image), check=True, capture_output=True, text=True
            ).stdout.strip()
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._started:  # a failed test leaves no worker running
            process.kill()
        if self._buildah:
            subprocess.run(_buildah("rm", self._buildah), capture_output=True)

    def start(self, command: Sequence[str] | None, environment: Mapping[str, str]) -> Process:
        """Start the container's process (Batch's ``command``; None: the image's CMD)."""
        argv = container_argv(self.config, command)
        env_args = [arg for name, value in environment.items() for arg in ("--env", f"{name}={value}")]
        name = f"geobatch-test-{uuid.uuid4().hex[:12]}"
        if self._buildah is None:
            engine = ["docker", "run", "--rm", "--name", name, "--network", "host", "--user", self.user]
            engine += [*env_args, "--entrypoint", argv[0], self.image, *argv[1:]]
        else:
            engine = _buildah("run", "--isolation", "chroot", "--network", "host", "--user", self.user)
            engine += [*env_args, self._buildah, "--", *argv]
        # Output to a file, not a pipe: nobody reads a pipe while the worker runs, and a full one
        # would block it.
        output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (Process.wait closes it)
        popen = subprocess.Popen(  # its own process group, so that kill() reaches all of it
            engine, stdout=output, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        process = Process(popen, argv, output, docker_name=name if self._buildah is None else None)
        self._started.append(process)
        return process

    def run(
        self, command: Sequence[str] | None, environment: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]:
        process = self.start(command, environment)
        output = process.wait()
        return subprocess.CompletedProcess(process.argv, process.popen.returncode, output, "")


class Process:
    """A container's process: its output, its exit status, and ``terminate`` as ``docker stop`` does it."""

    def __init__(
        self, popen: subprocess.Popen[str], argv: list[str], output: IO[str], *, docker_name: str | None
    ) -> None:
        self.popen, self.argv, self.docker_name = popen, argv, docker_name
        self._output = output

    def wait(self) -> str:
        """Its output (stdout and stderr), once it has exited."""
        self.popen.wait(timeout=GUARD_SECONDS)
        self._output.seek(0)
        text = self._output.read()
        self._output.close()
        return text

    def kill(self) -> None:
        """SIGKILL to everything the engine started for it, if it is still running."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def terminate(self) -> int:
        """SIGTERM to the container's process itself (``docker stop`` signals its PID 1), not to the
        engine's client; returns the host pid signalled (0 for Docker, which signals it itself)."""
        if self.docker_name is not None:
            subprocess.run(["docker", "kill", "--signal", "TERM", self.docker_name], check=True)
            return 0
        pid = process_below(self.popen.pid, self.argv)
        os.kill(pid, signal.SIGTERM)
        return pid


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_below(root: int, argv: Sequence[str]) -> int:
    """The host pid of the first process below ``root`` whose command line is ``argv`` (its first
    word as given or as the path it was found at)."""
    frontier = _children(root)
    while frontier:
        for pid in frontier:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
            except OSError:
                continue
            found = [part.decode() for part in cmdline]
            # buildah's chroot runtime execs argv[0] as the path it resolved on PATH.
            if found[1:] == list(argv[1:]) and found[:1] and Path(found[0]).name == argv[0]:
                return pid
        frontier = [c for p in frontier for c in _children(p)]
    raise LookupError(f"no process {list(argv)} below pid {root}")
