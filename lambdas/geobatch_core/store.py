"""Markers for conditional store writes, understood by every JobStore/FunctionStore adapter."""

from __future__ import annotations

from dataclasses import dataclass


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
"""In an ``expect`` mapping: the attribute must not exist (may be combined with values in a list)."""


@dataclass(frozen=True)
class Increment:
    """In a ``changes`` mapping: add ``by`` to a numeric attribute atomically."""

    by: int = 1
