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


def run(
    image: str, command: list[str], *, environment: Mapping[str, str], user: str
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a fresh container of ``image`` as ``user``, host network, then remove it."""
    env_args = [arg for name, value in environment.items() for arg in ("--env", f"{name}={value}")]
    if docker_answers():
        return subprocess.run(
            ["docker", "run", "--rm", "--network", "host", "--user", user, *env_args, image, *command],
            capture_output=True,
            text=True,
            timeout=GUARD_SECONDS,
        )
    container = subprocess.run(
        _buildah("from", "--pull=never", image), check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        return subprocess.run(
            _buildah(
                "run",
                "--isolation",
                "chroot",
                "--network",
                "host",
                "--user",
                user,
                *env_args,
                container,
                "--",
                *command,
            ),
            capture_output=True,
            text=True,
            timeout=GUARD_SECONDS,
        )
    finally:
        subprocess.run(_buildah("rm", container), capture_output=True)
