"""Every benchmark script once at a tiny size (``GEOBATCH_BENCH_SMOKE=1``, ``benchmarks/_common.sized``).

Nothing here measures or asserts on a figure: a script that no longer runs (an import, a renamed
API, a record type) fails here instead of at the next full run. The list is run_all's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run_all import SCRIPTS, SMOKE

ROOT = Path(__file__).resolve().parents[2]
# A hang guard, not a budget: the longest, local_throughput.py (local mode, a Function's venv, two
# runs and a Pool), takes about a minute alone, several times that on 2 cores shared with the suite.
SECONDS = 600

pytestmark = [pytest.mark.bench, pytest.mark.timeout(SECONDS)]
# These build the land-cover demo (a synthetic archive, a trained model) in local mode or its S3:
# about two minutes of the 2 cores together, which `make test` leaves to `make test-bench` (`slow`).
HEAVY = frozenset({"local_throughput.py", "tile_compute.py", "map_tiles.py"})


@pytest.mark.parametrize(
    "script", [pytest.param(s, marks=pytest.mark.slow) if s in HEAVY else s for s in SCRIPTS]
)
def test_benchmark_runs_at_smoke_size_and_prints_a_table(script: str, tmp_path: Path) -> None:
    # TMPDIR: the homes the local-mode scripts make (mkdtemp) land where pytest prunes old runs.
    env = {**os.environ, SMOKE: "1", "TMPDIR": str(tmp_path)}
    try:
        result = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / script)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=SECONDS - 30,  # before pytest-timeout: the script is killed and its output shown
            check=False,
        )
    except subprocess.TimeoutExpired as hung:
        output = hung.output.decode(errors="replace") if isinstance(hung.output, bytes) else hung.output
        pytest.fail(f"{script} still running after {hung.timeout:.0f} s:\n{output or ''}")
    print(result.stdout)
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{result.stdout}"
    assert any(line.startswith("|") for line in result.stdout.splitlines()), result.stdout
