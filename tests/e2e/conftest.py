"""Fixtures of the end-to-end tests: Functions saved on local mode, deleted afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import geobatch as gb


@pytest.fixture
def saved(local_api: gb.Client) -> Iterator[Any]:
    """``saved(fn, **settings)`` saves a Function with a unique name; all are deleted at the end."""
    made: list[gb.Function] = []

    def save(fn: Any, **settings: Any) -> gb.Function:
        function = gb.Function(fn, name=f"{fn.__name__}-{uuid.uuid4().hex[:6]}", **settings)
        function.save()
        made.append(function)
        return function

    yield save
    for function in made:
        with contextlib.suppress(gb.GeoBatchError):
            function.delete(delete_results=True)
