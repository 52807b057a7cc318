"""The local builder's cache: an environment is reused only by the installation that built it."""

from __future__ import annotations

from pathlib import Path

import pytest

from geobatch.local.builder import BASE_DIGEST, LocalImageBuilder

pytestmark = pytest.mark.unit


def test_an_environment_of_another_installation_is_not_reused(tmp_path: Path) -> None:
    builder = LocalImageBuilder(tmp_path)
    # An environment another checkout (another GeoBatch installation) built for the same recipe:
    # its .pth links that checkout's worker, which would run against this control plane.
    foreign = tmp_path / "envs" / "recipe123-0123456789ab"
    foreign.mkdir(parents=True)
    (foreign / ".complete").write_text("recipe123")
    assert BASE_DIGEST != "0123456789ab"
    assert builder.existing_image("recipe123") is None
    own = tmp_path / "envs" / f"recipe123-{BASE_DIGEST}"
    own.mkdir()
    (own / ".complete").write_text("recipe123")
    assert builder.existing_image("recipe123") == f"local-venv://{own}"
