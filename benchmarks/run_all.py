"""Runs every benchmark in turn (about 7 minutes): ``.venv/bin/python benchmarks/run_all.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
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
]

if __name__ == "__main__":
    failed = []
    for script in SCRIPTS:
        print(f"\n===== {script} =====\n", flush=True)
        if subprocess.call([sys.executable, str(HERE / script)], cwd=HERE.parent):
            failed.append(script)
    sys.exit(f"failed: {failed}" if failed else 0)
