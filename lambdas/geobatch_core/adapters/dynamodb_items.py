"""DynamoDB items and expressions: the one mapping between GeoBatch's plain values and DynamoDB's
typed attributes, the builder of conditional update expressions, and the one mapping of DynamoDB
errors. Shared by the stores (``adapters.dynamodb``), their counted writes and the counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from geobatch_core.adapters.aws_errors import THROTTLING, ErrorMap
from geobatch_core.ports import Item
from geobatch_core.store import ABSENT, Increment

# A missing table is the stack's fault (not the caller's): a ServiceError, not a 404.
ERRORS = ErrorMap(
    "DynamoDB",
    throttled=THROTTLING
    | {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",  # a write met a counting transaction on the same item
    },
    not_found=frozenset({"ResourceNotFoundException"}),
    missing="its table is missing: is the stack deployed?",
    missing_is_fault=True,
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return [_from_dynamo(v) for v in value]
    if hasattr(value, "value") and type(value).__name__ == "Binary":
        return bytes(value.value)
    return value


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def deserialize(raw: Mapping[str, Any]) -> Item:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in raw.items()}


class Update:
    """Builds an UpdateExpression with a ConditionExpression from plain mappings."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attr: str) -> str:
        token = f"#n{len(self.names)}"
        self.names[token] = attr
        return token

    def value(self, val: Any) -> str:
        token = f":v{len(self.values)}"
        self.values[token] = _serializer.serialize(_to_dynamo(val))
        return token

    def update_expression(
        self,
        changes: Mapping[str, Any],
        append: Mapping[str, Sequence[Any]] | None = None,
        set_list_item: tuple[str, int, Any] | None = None,
    ) -> str:
        sets, removes, adds = [], [], []
        for attr, val in changes.items():
            if val is None:
                removes.append(self.name(attr))
            elif isinstance(val, Increment):
                adds.append(f"{self.name(attr)} {self.value(val.by)}")
            else:
                sets.append(f"{self.name(attr)} = {self.value(val)}")
        for attr, items in (append or {}).items():
            n = self.name(attr)
            sets.append(f"{n} = list_append(if_not_exists({n}, {self.value([])}), {self.value(list(items))})")
        if set_list_item is not None:
            attr, index, val = set_list_item
            sets.append(f"{self.name(attr)}[{int(index)}] = {self.value(val)}")
        parts = []
        if sets:
            parts.append("SET " + ", ".join(sets))
        if adds:
            parts.append("ADD " + ", ".join(adds))
        if removes:
            parts.append("REMOVE " + ", ".join(removes))
        return " ".join(parts)

    def condition(self, expect: Mapping[str, Any], must_exist: str) -> str:
        clauses = [f"attribute_exists({self.name(must_exist)})"]
        for attr, val in expect.items():
            n = self.name(attr)
            options = list(val) if isinstance(val, list | tuple | set | frozenset) else [val]
            parts = []
            if any(o is ABSENT for o in options):
                parts.append(f"attribute_not_exists({n})")
            present = [o for o in options if o is not ABSENT]
            if len(present) == 1:
                parts.append(f"{n} = {self.value(present[0])}")
            elif present:
                parts.append(f"{n} IN ({', '.join(self.value(o) for o in present)})")
            clauses.append("(" + " OR ".join(parts) + ")")
        return " AND ".join(clauses)

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ExpressionAttributeNames": self.names}
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out
