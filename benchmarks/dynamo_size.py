"""DynamoDB item sizes and request units, per AWS's documented rules (for benchmarks).

Item size = Σ over attributes of (UTF-8 bytes of the name + size of the value):
string = UTF-8 bytes; binary = bytes; number ≈ 1 byte per 2 significant digits + 1;
boolean / null = 1; list / map = 3 bytes + 1 byte per element + the elements (map keys count
as names); sets = Σ elements. Writes cost 1 WRU per started KB of the larger of the item before
and after (min 1; a failed conditional write is charged too); reads 1 RRU per started 4 KB
(strongly consistent), half that eventually consistent; a Query sums the sizes of the items it
reads before rounding up once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _number_size(text: str) -> int:
    digits = text.lstrip("+-").lower().split("e")[0].replace(".", "")
    significant = digits.strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def value_size(av: Mapping[str, Any]) -> int:
    """Size of one attribute value in DynamoDB's typed JSON form ({"S": ...}, {"M": {...}}, ...)."""
    ((kind, value),) = av.items()
    if kind == "S":
        return len(value.encode())
    if kind == "N":
        return _number_size(str(value))
    if kind == "B":
        return len(value if isinstance(value, bytes | bytearray) else value.encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in value)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in value.items())
    if kind == "SS":
        return sum(len(v.encode()) for v in value)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in value)
    if kind == "BS":
        return sum(len(v) for v in value)
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    return sum(len(name.encode()) + value_size(av) for name, av in item.items())


def write_units(size_before: int, size_after: int = 0) -> int:
    return max(1, math.ceil(max(size_before, size_after) / 1024))


def read_units(total_bytes: int, *, consistent: bool) -> float:
    units = max(1, math.ceil(total_bytes / 4096))
    return float(units) if consistent else units / 2


if __name__ == "__main__":
    # Self-check against the AWS documentation's examples.
    assert value_size({"N": "123.45"}) == 4  # 5 significant digits -> 3 bytes + 1
    assert value_size({"L": []}) == 3
    assert item_size({"id": {"S": "abc"}}) == 5
    assert value_size({"M": {"a": {"S": "xy"}}}) == 3 + 1 + 1 + 2
    print("ok")
