"""Regenerate docs/img/web-monitor.png: the web monitor during a run in local mode.

It runs the browser test (tests/ui/test_monitor_browser.py), which saves the page mid-run to the
path in GEOBATCH_DOCS_SCREENSHOT. Needs /usr/bin/chromium and Playwright (see that test).

    .venv/bin/python scripts/screenshot_monitor.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "img" / "web-monitor.png"


def main() -> int:
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GEOBATCH_DOCS_SCREENSHOT": str(TARGET)}
    test = "tests/ui/test_monitor_browser.py::test_monitor_through_a_run"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", test], cwd=ROOT, env=env, check=False)
    if done.returncode == 0:
        print(f"wrote {TARGET.relative_to(ROOT)} ({TARGET.stat().st_size // 1024} KB)")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
