"""Encoding of job arguments and results.

Arguments are JSON. A result is stored as bytes: ``bytes`` as they are, an object with
``serialize()`` through it, anything else as JSON. ``None`` with no metadata is not stored. No
pickle anywhere: the control plane never deserialises user objects.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any, Protocol, runtime_checkable

from geobatch.wire import limits


@runtime_checkable
class Serializable(Protocol):
    """A result type with its own byte encoding (``cast_type=`` decodes it)."""

    def serialize(self) -> bytes: ...

    @classmethod
    def deserialize(cls, data: bytes) -> Any: ...


class ComputeResult:
    """A job's return value with optional metadata, stored beside the result.

    ``value`` is encoded like a plain return value; ``description``, ``tags``, ``extra_properties``
    and ``geometry`` (GeoJSON) are kept in the result's metadata.
    """

    def __init__(
        self,
        value: Any = None,
        description: str | None = None,
        tags: list[str] | None = None,
        extra_properties: dict[str, str | int | float] | None = None,
        geometry: dict[str, Any] | None = None,
    ):
        self.value = value
        self.description = description
        self.tags = tags or []
        self.extra_properties = extra_properties or {}
        self.geometry = geometry

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if self.description:
            meta["description"] = self.description
        if self.tags:
            meta["tags"] = list(self.tags)
        if self.extra_properties:
            meta["extra_properties"] = dict(self.extra_properties)
        if self.geometry:
            meta["geometry"] = self.geometry
        return meta


class EncodingError(TypeError):
    """A value cannot be sent or stored: it is not JSON, bytes or Serializable."""


def encode_result(value: Any) -> tuple[bytes | None, dict[str, Any]]:
    """Bytes to store for a job's return value (None: store nothing) and its metadata."""
    metadata: dict[str, Any] = {}
    if isinstance(value, ComputeResult):
        metadata = value.metadata()
        value = value.value
        if value is None and metadata:
            return b"", metadata
    if value is None:
        return None, metadata
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), metadata
    if isinstance(value, Serializable):
        data = value.serialize()
        if not isinstance(data, bytes | bytearray):
            raise EncodingError(
                f"{type(value).__name__}.serialize() must return bytes, not {type(data).__name__}"
            )
        return bytes(data), metadata
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode(), metadata
    except (TypeError, ValueError) as exc:
        raise EncodingError(
            f"the result of type {type(value).__name__} must be JSON encodable, bytes, or implement "
            f"serialize()/deserialize(): {exc}"
        ) from None


def decode_result(data: bytes | None, cast_type: Any = None) -> Any:
    """Inverse of :func:`encode_result`: ``cast_type.deserialize``, else JSON, else the raw bytes."""
    if data is None or data == b"":
        return None
    if cast_type is not None:
        if hasattr(cast_type, "deserialize"):
            return cast_type.deserialize(data)
        return cast_type(data)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return data


def encode_args(args: Any, kwargs: Any) -> str:
    """JSON of a job's arguments, with a clear error naming what is not serialisable."""
    try:
        text = json.dumps({"args": args, "kwargs": kwargs}, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EncodingError(
            f"job arguments must be JSON serialisable (str, int, float, bool, None, list, dict): {exc}"
        ) from None
    depth = json_depth(text) - 2  # inside {"args": [...]}
    if depth > limits.MAX_JSON_DEPTH:
        raise EncodingError(
            f"job arguments nest {depth} levels deep; at most {limits.MAX_JSON_DEPTH} are allowed: "
            "flatten them or pass a reference (e.g. an S3 key)"
        )
    return text


def json_depth(text: str) -> int:
    """How deeply the JSON ``text`` nests arrays and objects, found without parsing it (so without
    recursion, whatever the depth); brackets inside strings do not count. Linear time."""
    if text.count("[") + text.count("{") <= 1:
        return text.count("[") + text.count("{")
    brackets = _BRACKET.findall(_STRING.sub("", text))
    steps = (1 if b in "[{" else -1 for b in brackets)
    return max(itertools.accumulate(steps), default=0)


_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"')  # possessive: no backtracking on long strings
_BRACKET = re.compile(r"[\[\]{}]")
