"""Runs every benchmark in turn (about 20 minutes, each one's in benchmarks/README.md):
``.venv/bin/python benchmarks/run_all.py``.

``SCRIPTS`` is the one list of the benchmarks: tests/benchmarks runs each of them at a tiny size
(``GEOBATCH_BENCH_SMOKE=1``). The other modules here are their helpers (``_common``, ``aws_meter``,
``dynamo_size``, ``prices``, ``requests_report``, ``fakes``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Set (to anything but 0): every script runs once at a tiny size (_common.sized), to catch breakage.
SMOKE = "GEOBATCH_BENCH_SMOKE"
SCRIPTS = [
    "requests_per_job.py",
    "submission.py",
    "worker_overhead.py",
    "worker_metrics.py",
    "local_throughput.py",
    "local_submission.py",
    "counts.py",
    "scaling_model.py",
    "listing.py",
    "operations.py",
    "tile_compute.py",
    "job_statistics.py",
    "like_filter.py",
    "map_tiles.py",
    "tiles_cover.py",
]

if __name__ == "__main__":
    failed = []
    for script in SCRIPTS:
        print(f"\n===== {script} =====\n", flush=True)
        if subprocess.call([sys.executable, str(HERE / script)], cwd=HERE.parent):
            failed.append(script)
    sys.exit(f"failed: {failed}" if failed else 0)
