"""Opaque cursors and in-memory sorting shared by the list endpoints."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from geobatch.wire import errors


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


INVALID_CURSOR = "page_cursor is not valid: pass the value from the previous page unchanged"
# What a cursor may hold, by field: a cursor edited by hand is a 400, never a 5xx further down.
_CURSOR_FIELDS: dict[str, Callable[[Any], bool]] = {
    "fids": lambda v: isinstance(v, list) and all(isinstance(f, str) and 0 < len(f) <= 64 for f in v),
    "filter": lambda v: v is None or isinstance(v, list | str),
    "sort": lambda v: v is None or (isinstance(v, str) and len(v) <= 256),
    "limit": lambda v: v is None or _count(v),
    "offset": lambda v: _count(v),
    "fi": lambda v: _count(v),
    "ix": lambda v: isinstance(v, dict),  # an index position: services.listing.checked checks it all
    "key": lambda v: (
        v is None
        or (
            isinstance(v, dict)
            and set(v) == {"function_id", "job_key"}
            and all(isinstance(x, str) and 0 < len(x) <= 256 for x in v.values())
        )
    ),
}


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**9


def checked(state: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``state`` if it holds only ``fields``, each of the shape this service writes; else a 400."""
    for name, value in state.items():
        if name not in fields or not _CURSOR_FIELDS[name](value):
            raise errors.BadRequestError(INVALID_CURSOR)
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
