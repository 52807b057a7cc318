"""The install a user gets (scripts/install_check.py): wheels built, bare venvs, the CLI and a job.

Slow for a test (two venvs from pip's cache, local mode started once): marked ``install``, run by
``make test`` and alone by ``make install-check``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.install

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_check.py"


# Two venvs from pip's cache: 2-4 min on 2 shared cores, more under load than the suite's 300 s default.
@pytest.mark.timeout(900)
def test_pip_install_geobatch_and_geobatch_local_work_from_bare_venvs():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pip install geobatch: " in result.stdout and "pip install geobatch[local]:" in result.stdout
