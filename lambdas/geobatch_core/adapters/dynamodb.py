"""DynamoDB adapters for the Function and Job stores (the only DynamoDB code in GeoBatch)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from geobatch.wire import errors
from geobatch_core import layout, schema
from geobatch_core.adapters import dynamodb_counted as counted
from geobatch_core.adapters import dynamodb_counts as counts
from geobatch_core.adapters.aws_errors import THROTTLING, ErrorMap
from geobatch_core.adapters.reachable import reachable
from geobatch_core.ports import Item, JobCounts, Key
from geobatch_core.store import ABSENT, Increment, pending_request, resent_reference

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import KeysAndAttributesUnionTypeDef

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
JOB_KEY_CEILING = "g"  # job keys are hex; submission references ("ref#...") sort after them


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


class _Update:
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


class DynamoFunctionStore:
    def __init__(self, client: DynamoDBClient, table: str):
        self._db = reachable(client, "DynamoDB")
        self._table = table

    def put_new(self, item: Item) -> None:
        try:
            self._db.put_item(
                TableName=self._table, Item=serialize(item), ConditionExpression="attribute_not_exists(id)"
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise errors.ConflictError(f"Function {item['id']} already exists") from None
            raise ERRORS.error(exc, "create the Function") from None

    def get(self, function_id: str) -> Item:
        try:
            raw = self._db.get_item(
                TableName=self._table, Key=schema.FUNCTIONS.key(function_id), ConsistentRead=True
            )
        except ClientError as exc:
            raise ERRORS.error(exc, "read the Function") from None
        if "Item" not in raw:
            raise errors.NotFoundError(f"Function {function_id} does not exist")
        return deserialize(raw["Item"])

    def update(
        self, function_id: str, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> Item:
        upd = _Update()
        expression = upd.update_expression(changes)
        condition = upd.condition(expect or {}, "id")
        try:
            raw = self._db.update_item(
                TableName=self._table,
                Key=schema.FUNCTIONS.key(function_id),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ReturnValues="ALL_NEW",
                **upd.kwargs(),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                current = self.get(function_id)  # raises NotFound when it is gone
                raise errors.ConflictError(
                    f"Function {function_id} is {current.get('status')}; "
                    f"the change needs {dict(expect or {})}"
                ) from None
            raise ERRORS.error(exc, "update the Function") from None
        return deserialize(raw["Attributes"])

    def delete(self, function_id: str) -> None:
        try:
            self._db.delete_item(TableName=self._table, Key=schema.FUNCTIONS.key(function_id))
        except ClientError as exc:
            raise ERRORS.error(exc, "delete the Function") from None

    def list_by_owner(
        self, owner: str | None, *, start: Key | None, limit: int
    ) -> tuple[list[Item], Key | None]:
        kwargs: dict[str, Any] = {"TableName": self._table, "Limit": limit}
        if start:
            kwargs["ExclusiveStartKey"] = serialize(start)
        try:
            if owner is None:
                raw = self._db.scan(**kwargs)
            else:
                raw = self._db.query(
                    IndexName=layout.FUNCTIONS_OWNER_INDEX,
                    KeyConditionExpression="#o = :o",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":o": {"S": owner}},
                    ScanIndexForward=False,
                    **kwargs,
                )
        except ClientError as exc:
            raise ERRORS.error(exc, "list Functions") from None
        items = [deserialize(i) for i in raw.get("Items", [])]
        last = raw.get("LastEvaluatedKey")
        return items, (deserialize(last) if last else None)


class DynamoJobStore:
    """Jobs, and their per-status counts moved in the same transaction (``dynamodb_counts``)."""

    def __init__(self, client: DynamoDBClient, table: str):
        self._db = reachable(client, "DynamoDB")
        self._table = table

    @property
    def db(self) -> DynamoDBClient:
        return self._db

    @property
    def table(self) -> str:
        return self._table

    def _key(self, function_id: str, job_key: str) -> dict[str, Any]:
        return schema.JOBS.key(function_id, job_key)

    def reserve_reference(
        self, function_id: str, reference_id: str, now_ms: int, fingerprint: str = ""
    ) -> tuple[int, bool]:
        item = {
            "function_id": function_id,
            "job_key": f"ref#{reference_id}",
            "created_ms": now_ms,
            "fingerprint": fingerprint or None,
            layout.JOB_TTL_ATTRIBUTE: now_ms // 1000 + layout.REFERENCE_TTL_SECONDS,
        }
        try:
            self._db.put_item(
                TableName=self._table,
                Item=serialize(item),
                # A reference past its time to live counts as gone, whether or not TTL removed it yet.
                ConditionExpression="attribute_not_exists(job_key) OR #x < :now",
                ExpressionAttributeNames={"#x": layout.JOB_TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": {"N": str(now_ms // 1000)}},
            )
            return now_ms, True
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise ERRORS.error(exc, "record the submission") from None
        first = self.get(function_id, f"ref#{reference_id}", consistent=True)
        return resent_reference(first, function_id, reference_id, fingerprint), False

    # ------------------------------------------------------------------ idempotent requests
    # Records of write requests that carried an Idempotency-Key live in this table too, under a
    # partition of their own per caller ("req#<scope>"), and expire through the table's TTL.

    def claim_request(
        self, scope: str, key: str, fingerprint: str, *, now_s: int, lease_s: int, ttl_s: int
    ) -> Item | None:
        """Claim ``key`` for one execution: None when claimed (first use, or the lease of an
        execution that died ran out), else the record as it stands (done, or still in progress)."""
        partition = f"{layout.REQUEST_PARTITION_PREFIX}{scope}"
        item = pending_request(scope, key, fingerprint, now_s=now_s, lease_s=lease_s, ttl_s=ttl_s)
        try:
            self._db.put_item(
                TableName=self._table,
                Item=serialize(item),
                # An expired record (TTL lags by up to two days) counts as absent, as in every JobStore.
                ConditionExpression="attribute_not_exists(job_key) OR #x < :now OR "
                "(#s = :pending AND #l < :now AND #f = :fp)",
                ExpressionAttributeNames={
                    "#s": "state",
                    "#l": "lease_until",
                    "#f": "fingerprint",
                    "#x": layout.JOB_TTL_ATTRIBUTE,
                },
                ExpressionAttributeValues={
                    ":pending": {"S": "pending"},
                    ":now": {"N": str(now_s)},
                    ":fp": {"S": fingerprint},
                },
            )
            return None
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise ERRORS.error(exc, "record the request") from None
        try:
            return self.get(partition, key, consistent=True)
        except errors.NotFoundError:  # released in between: the caller's retry will claim it
            return {"state": "pending", "fingerprint": fingerprint}

    def complete_request(self, scope: str, key: str, fingerprint: str, response: Mapping[str, Any]) -> None:
        """Store the response of the execution that claimed ``key`` (replayed to its retries)."""
        upd = _Update()
        changes = {"state": "done", "lease_until": None, **response}
        expression = upd.update_expression(changes)
        condition = upd.condition({"fingerprint": fingerprint}, "job_key")
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(f"{layout.REQUEST_PARTITION_PREFIX}{scope}", key),
                UpdateExpression=expression,
                ConditionExpression=condition,
                **upd.kwargs(),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise ERRORS.error(exc, "record the response") from None

    def release_request(self, scope: str, key: str) -> None:
        """Forget a claimed key whose execution failed transiently, so a retry runs it again."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=self._key(f"{layout.REQUEST_PARTITION_PREFIX}{scope}", key),
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":pending": {"S": "pending"}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise ERRORS.error(exc, "release the request") from None

    def put_new_batch(self, items: Sequence[Item], *, check_existing: bool = True) -> list[str]:
        """On a resent batch the existing keys are read first (one BatchGetItem per 100) and only new
        jobs are written, each on the condition that it does not exist, in the transactions that
        count them: nothing is created or counted twice. A first submission
        (``check_existing=False``) skips the read."""
        existing: set[str] = set()
        keys = [self._key(i["function_id"], i["job_key"]) for i in items] if check_existing else []
        for start in range(0, len(keys), 100):
            request: Mapping[str, KeysAndAttributesUnionTypeDef] = {
                self._table: {"Keys": keys[start : start + 100], "ProjectionExpression": "job_key"}
            }
            while request:
                try:
                    raw = self._db.batch_get_item(RequestItems=request)
                except ClientError as exc:
                    raise ERRORS.error(exc, "check existing jobs") from None
                existing.update(r["job_key"]["S"] for r in raw.get("Responses", {}).get(self._table, []))
                request = raw.get("UnprocessedKeys") or {}
        return counted.put_counted(self, [i for i in items if i["job_key"] not in existing])

    def get(self, function_id: str, job_key: str, *, consistent: bool = False) -> Item:
        try:
            raw = self._db.get_item(
                TableName=self._table, Key=self._key(function_id, job_key), ConsistentRead=consistent
            )
        except ClientError as exc:
            raise ERRORS.error(exc, "read the job") from None
        if "Item" not in raw:
            raise errors.NotFoundError(f"job {function_id}-{job_key} does not exist")
        return deserialize(raw["Item"])

    def transition(
        self,
        function_id: str,
        job_key: str,
        *,
        changes: Mapping[str, Any],
        expect: Mapping[str, Any],
        append_attempt: Mapping[str, Any] | None = None,
        replace_last_attempt: Mapping[str, Any] | None = None,
    ) -> Item | None:
        counted_write = layout.counted_partition(function_id)
        if changes.get("status") is not None and counted_write:  # the counts move in the same write
            return counted.counted_transition(
                self,
                function_id,
                job_key,
                changes=changes,
                expect=expect,
                append_attempt=append_attempt,
                replace_last_attempt=replace_last_attempt,
            )
        return self.update_job(
            self.update_args(function_id, job_key, changes, expect, append_attempt, replace_last_attempt)
        )

    def update_args(
        self,
        function_id: str,
        job_key: str,
        changes: Mapping[str, Any],
        expect: Mapping[str, Any],
        append_attempt: Mapping[str, Any] | None,
        replace_last_attempt: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """The conditional update of one job, as UpdateItem and TransactWriteItems both take it."""
        upd = _Update()
        set_item = None
        if replace_last_attempt is not None:
            set_item = ("attempts", int(replace_last_attempt["number"]) - 1, dict(replace_last_attempt))
        expression = upd.update_expression(
            changes, {"attempts": [dict(append_attempt)]} if append_attempt else None, set_item
        )
        condition = upd.condition(expect, "job_key")
        return {
            "Key": self._key(function_id, job_key),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            **upd.kwargs(),
        }

    def update_job(self, args: Mapping[str, Any]) -> Item | None:
        try:
            raw = self._db.update_item(TableName=self._table, ReturnValues="ALL_NEW", **args)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise ERRORS.error(exc, "change the job's state") from None
        return deserialize(raw["Attributes"])

    def query(
        self,
        function_id: str,
        *,
        start: Key | None,
        limit: int,
        newest_first: bool,
        projection: Sequence[str] | None = None,
        consistent: bool = False,
    ) -> tuple[list[Item], Key | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": consistent,
            "KeyConditionExpression": "#f = :f AND #k < :c",
            "ExpressionAttributeNames": {"#f": "function_id", "#k": "job_key"},
            "ExpressionAttributeValues": {":f": {"S": function_id}, ":c": {"S": JOB_KEY_CEILING}},
            "ScanIndexForward": not newest_first,
            "Limit": limit,
        }
        if projection:
            names = {f"#p{i}": p for i, p in enumerate(projection)}
            kwargs["ExpressionAttributeNames"].update(names)
            kwargs["ProjectionExpression"] = ", ".join(names)
        return self._query_page(kwargs, start)

    def delete_batch(self, keys: Iterable[tuple[str, str]]) -> None:
        counted.delete_counted(self, keys)

    def counts(self, function_id: str) -> JobCounts:
        return counts.read_counts(self._db, self._table, function_id)

    def correct_counts(self, function_id: str, deltas: Mapping[str, int], *, version: str) -> bool:
        return counts.correct_counts(self._db, self._table, function_id, deltas, version)

    def delete_counts(self, function_id: str) -> None:
        counts.delete_counts(self._db, self._table, function_id)

    def query_index(
        self, sort: str, partition: str, *, start: Key | None, limit: int, descending: bool
    ) -> tuple[list[Item], Key | None]:
        name, partition_attr, _, _ = layout.JOB_INDEXES[sort]
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": name,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": partition_attr},
            "ExpressionAttributeValues": {":p": {"S": partition}},
            "ScanIndexForward": not descending,
            "Limit": limit,
        }
        return self._query_page(kwargs, start)

    def _query_page(self, kwargs: dict[str, Any], start: Key | None) -> tuple[list[Item], Key | None]:
        """One page of a job query from ``start``: its items and the key to resume from (or None)."""
        if start:
            kwargs["ExclusiveStartKey"] = serialize(start)
        try:
            raw = self._db.query(**kwargs)
        except ClientError as exc:
            raise ERRORS.error(exc, "list jobs") from None
        last = raw.get("LastEvaluatedKey")
        return [deserialize(i) for i in raw.get("Items", [])], (deserialize(last) if last else None)
