"""Deadlines of the SDK's polling loops (``wait_for_completion``, ``as_completed``)."""

from __future__ import annotations

import time

__all__ = ["deadline", "passed", "pause"]


def deadline(timeout: float | None) -> float | None:
    """The ``time.monotonic()`` moment ``timeout`` seconds from now (None: no deadline)."""
    return None if timeout is None else time.monotonic() + timeout


def passed(moment: float | None) -> bool:
    """True once the deadline ``moment`` (from :func:`deadline`) is reached."""
    return moment is not None and time.monotonic() >= moment


def pause(delay: float, moment: float | None) -> None:
    """Sleep ``delay`` seconds, but not past the deadline ``moment``."""
    time.sleep(delay if moment is None else max(0.0, min(delay, moment - time.monotonic())))
