"""Opaque cursors and in-memory sorting shared by the list endpoints."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from geobatch_core import errors


def encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise errors.BadRequestError(
            "page_cursor is not valid: pass the value from the previous page"
        ) from None
    if not isinstance(state, dict):
        raise errors.BadRequestError("page_cursor is not valid: pass the value from the previous page")
    return state


def sort_items(
    items: list[Any], order: list[tuple[str, bool]], key_of: Callable[[Any], dict[str, Any]]
) -> list[Any]:
    """Stable multi-key sort; missing values sort first ascending (last descending)."""
    for name, desc in reversed(order):

        def key(item: Any, name: str = name) -> tuple[int, Any]:
            value = key_of(item).get(name)
            return (0, "") if value is None else (1, value)

        items = sorted(items, key=key, reverse=desc)
    return items
