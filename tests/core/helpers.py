"""Test helpers of the core tests: those of ``tests/support.py``, where every suite finds them."""

from __future__ import annotations

from tests.support import ALICE, BOB, bundle, ready_function, wait_status

__all__ = ["ALICE", "BOB", "bundle", "ready_function", "wait_status"]
