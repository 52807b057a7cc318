"""The container engine the image test builds and runs with: Docker where its daemon answers, else buildah.

buildah runs a container of the image in chroot isolation with the host's network (so the worker
reaches moto's server on 127.0.0.1), like ``docker run --network host``; both honour the image's
own user unless told otherwise, and the test asks for it explicitly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

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


def image_user(image: str) -> str:
    """The USER of the image's config."""
    if docker_answers():
        command = ["docker", "image", "inspect", "--format", "{{.Config.User}}", image]
    else:
        command = _buildah("inspect", "--type", "image", "--format", "{{.OCIv1.Config.User}}", image)
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


class Container:
    """A container of an image to run commands in as a user, host network (``docker run`` per command,
    or one buildah working container for all of them: each new one is a full copy on vfs)."""

    def __init__(self, image: str, user: str) -> None:
        self.image, self.user = image, user
        self._buildah: str | None = None

    def __enter__(self) -> Container:
        if not docker_answers():
            self._buildah = subprocess.run(
                _buildah("from", "--pull=never", self.image), check=True, capture_output=True, text=True
            ).stdout.strip()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._buildah:
            subprocess.run(_buildah("rm", self._buildah), capture_output=True)

    def run(self, command: list[str], environment: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        env_args = [arg for name, value in environment.items() for arg in ("--env", f"{name}={value}")]
        if self._buildah is None:
            argv = ["docker", "run", "--rm", "--network", "host", "--user", self.user, *env_args]
            argv += [self.image, *command]
        else:
            argv = _buildah("run", "--isolation", "chroot", "--network", "host", "--user", self.user)
            argv += [*env_args, self._buildah, "--", *command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=GUARD_SECONDS)
