"""Filter expressions of the API: parse, validate and evaluate.

A filter is a JSON list of terms, ANDed: ``{"op", "name", "val"}`` or ``{"or": [...]}`` /
``{"and": [...]}``. Terms are evaluated on the wire form of a resource, so what a user filters on
is what they see.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from geobatch.wire import errors, limits
from geobatch.wire.codec import json_depth

Predicate = Callable[[dict[str, Any]], bool]

JOB_FIELDS = {
    "id": "str",
    "function_id": "str",
    "status": "str",
    "tags": "tags",
    "creation_date": "date",
    "last_execution_date": "date",
    "last_completion_date": "date",
    "execution_count": "num",
    "exit_code": "num",
    "runtime": "num",
    "reference_id": "str",
    "error_reason": "str",
}
FUNCTION_FIELDS = {
    "id": "str",
    "name": "str",
    "status": "str",
    "owner": "str",
    "cpus": "num",
    "memory": "num",
    "maximum_concurrency": "num",
    "timeout": "num",
    "retry_count": "num",
    "enabled": "bool",
    "auto_start": "bool",
    "creation_date": "date",
    "modified_date": "date",
}
OPS = {"eq", "ne", "lt", "le", "gt", "ge", "prefix", "ilike", "in"}


def _date(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            dt = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise errors.BadRequestError(
                f"filter on {name}: {value!r} is not a unix timestamp of a date in years 1-9999"
            ) from None
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise errors.BadRequestError(f"filter on {name}: {value!r} is not an ISO-8601 date") from None
    else:
        raise errors.BadRequestError(f"filter on {name}: {value!r} is not a date")
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _coerce(kind: str, value: Any, name: str) -> Any:
    if value is None:
        return None
    if kind == "date":
        return _date(value, name)
    if kind == "num":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise errors.BadRequestError(f"filter on {name}: {value!r} is not a number")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise errors.BadRequestError(f"filter on {name}: {value!r} is not true or false")
        return value
    if not isinstance(value, str):
        raise errors.BadRequestError(f"filter on {name}: {value!r} is not a string")
    return value


def _like(pattern: str) -> Callable[[str], bool]:
    """Case-insensitive SQL LIKE (``%`` any run, ``_`` one character) without backtracking: the
    pattern is split at ``%`` into fixed-length pieces; the first must match at the start, the last
    at the end, and each middle one at its leftmost place after the previous (which is optimal), so
    the cost is at most (text length × pattern length), whatever the pattern."""
    pieces = pattern.lower().split("%")
    compiled = [re.compile("".join("." if c == "_" else re.escape(c) for c in p), re.DOTALL) for p in pieces]
    first, last, middle = compiled[0], compiled[-1], compiled[1:-1]

    def match(text: str) -> bool:
        s = text.lower()
        if len(compiled) == 1:
            return first.fullmatch(s) is not None
        end = len(s) - len(pieces[-1])
        if end < len(pieces[0]) or first.match(s) is None or last.fullmatch(s, end) is None:
            return False
        pos = len(pieces[0])
        for piece in middle:
            found = piece.search(s, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True

    return match


def _term(term: Any, fields: dict[str, str], depth: int = 1) -> Predicate:
    if not isinstance(term, dict):
        shown = str(term)[:100]
        raise errors.BadRequestError(f"filter term {shown!r} must be an object with op, name and val")
    if "or" in term or "and" in term:
        return _group(term, fields, depth)
    op, name = term.get("op"), term.get("name")
    if name not in fields:
        raise errors.BadRequestError(f"cannot filter on {name!r}: use one of {', '.join(sorted(fields))}")
    if op not in OPS:
        raise errors.BadRequestError(
            f"filter operator {op!r} is unknown: use one of {', '.join(sorted(OPS))}"
        )
    kind = fields[name]
    raw = term.get("val")
    if op == "in":
        return _member(name, kind, raw)
    if op in ("prefix", "ilike"):
        return _text(op, name, kind, raw)
    if kind == "tags":
        if op not in ("eq", "ne"):
            raise errors.BadRequestError(f"tags support eq, ne, in, prefix and ilike, not {op}")
        tag = _coerce("str", raw, name)
        return (
            (lambda r: tag in (r.get(name) or []))
            if op == "eq"
            else (lambda r: tag not in (r.get(name) or []))
        )
    return _compare(op, name, kind, _coerce(kind, raw, name))


def _group(term: dict[str, Any], fields: dict[str, str], depth: int) -> Predicate:
    key = "or" if "or" in term else "and"
    parts = term[key]
    if not isinstance(parts, list) or not parts:
        raise errors.BadRequestError(f'filter "{key}" needs a non-empty list of terms')
    if depth >= limits.MAX_FILTER_DEPTH:
        raise errors.BadRequestError(
            f"filter nests and/or groups more than {limits.MAX_FILTER_DEPTH} levels deep: flatten it"
        )
    preds = [_term(p, fields, depth + 1) for p in parts]
    return (lambda r: any(p(r) for p in preds)) if key == "or" else (lambda r: all(p(r) for p in preds))


def _member(name: str, kind: str, raw: Any) -> Predicate:
    if not isinstance(raw, list):
        raise errors.BadRequestError(f"filter 'in' on {name} needs a list value")
    options = [_coerce("str" if kind == "tags" else kind, v, name) for v in raw]
    if kind == "tags":
        return lambda r: bool(set(r.get(name) or []) & set(options))
    return lambda r: _norm(r.get(name), kind) in options


def _text(op: str, name: str, kind: str, raw: Any) -> Predicate:
    if kind not in ("str", "tags") or not isinstance(raw, str):
        raise errors.BadRequestError(f"filter '{op}' works on text fields only, not {name}")
    match: Callable[[str], bool] = (lambda s: s.startswith(raw)) if op == "prefix" else _like(raw)
    if kind == "tags":
        return lambda r: any(match(t) for t in r.get(name) or [])
    return lambda r: isinstance(r.get(name), str) and match(r[name])


def _compare(op: str, name: str, kind: str, val: Any) -> Predicate:
    if op == "eq":
        return lambda r: _norm(r.get(name), kind) == val
    if op == "ne":
        return lambda r: _norm(r.get(name), kind) != val
    if val is None:
        raise errors.BadRequestError(f"filter '{op}' on {name} needs a value")
    compare: Callable[[Any, Any], bool] = {
        "lt": operator.lt,
        "le": operator.le,
        "gt": operator.gt,
        "ge": operator.ge,
    }[op]
    return lambda r: (v := _norm(r.get(name), kind)) is not None and compare(v, val)


def _norm(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "date":
        return _date(value, "")
    if hasattr(value, "value") and not isinstance(value, str | int | float | bool):
        return value.value  # enums
    return value


def parse(raw: str | list[Any] | None, fields: dict[str, str]) -> tuple[Predicate, list[Any]]:
    """The predicate of a filter given as JSON text or a list, and the normalised term list."""
    if raw in (None, "", []):
        return (lambda r: True), []
    if isinstance(raw, str):
        if json_depth(raw) > 2 * limits.MAX_FILTER_DEPTH + 2:  # before parsing: no RecursionError
            raise errors.BadRequestError(
                f"filter nests and/or groups more than {limits.MAX_FILTER_DEPTH} levels deep: flatten it"
            )
        try:
            raw = json.loads(raw)
        except ValueError:
            raise errors.BadRequestError("filter must be a JSON list of {op, name, val} terms") from None
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise errors.BadRequestError("filter must be a JSON list of {op, name, val} terms")
    preds = [_term(t, fields) for t in raw]
    return (lambda r: all(p(r) for p in preds)), raw


def equality_value(terms: list[Any], name: str) -> Any:
    """The value a top-level ``eq`` term pins ``name`` to (lets the store narrow its query)."""
    for t in terms:
        if isinstance(t, dict) and t.get("op") == "eq" and t.get("name") == name:
            return t.get("val")
    return None


def parse_sort(raw: str | None, fields: dict[str, str]) -> list[tuple[str, bool]]:
    """``"-creation_date,id"`` → [("creation_date", True), ("id", False)] (True = descending)."""
    if not raw:
        return []
    out = []
    for part in str(raw).split(","):
        part = part.strip()
        if not part:
            continue
        desc = part.startswith("-")
        name = part.lstrip("-+")
        if name not in fields or fields[name] == "tags":
            raise errors.BadRequestError(f"cannot sort by {name!r}: use one of {', '.join(sorted(fields))}")
        out.append((name, desc))
    return out
