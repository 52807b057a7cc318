"""The AWS request meter of ``requests_per_job.py``: counts every request by phase, service and
operation (botocore hooks on the session all stores share), and prices DynamoDB writes and reads
from item sizes (``dynamo_size.py``, AWS's rules) on a shadow copy, since moto reports no consumed
capacity."""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Any

from dynamo_size import item_size, read_units, write_units

KEYS = {"jobs": ("function_id", "job_key"), "functions": ("id",)}


class Meter:
    """Counts requests by (phase, service, operation) and computes DynamoDB units and SQS chunks."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.wru: Counter[str] = Counter()
        self.rru: Counter[str] = Counter()
        self.sqs_units: Counter[str] = Counter()
        self.sizes: dict[tuple[str, tuple[str, ...]], int] = {}
        # Transactional updates of job items: charged when the store reads the job back (a
        # transaction returns no item, so its size after the write is known only then).
        self.unpriced: dict[tuple[str, tuple[str, ...]], tuple[str, int]] = {}
        self.lock = threading.Lock()
        self.api_calls: Counter[str] = Counter()
        self.api_aws_calls: list[int] = []

    def register(self, session: Any) -> None:
        session.events.register("before-parameter-build", self._params)
        session.events.register("before-call", self._before)
        session.events.register("after-call.dynamodb", self._after_dynamo)

    def _params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = params

    def _key(self, table: str, typed: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        names = KEYS.get(table, ())
        return table, tuple(str(next(iter(typed[n].values()))) for n in names if n in typed)

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        op = model.name
        params = context.get("bench_params", {})
        with self.lock:
            self.requests[(self.phase, service, op)] += 1
            if service == "sqs":
                if op == "SendMessageBatch":
                    payload = sum(len(e["MessageBody"].encode()) for e in params.get("Entries", []))
                    self.sqs_units[self.phase] += max(1, math.ceil(payload / 65536))
                else:
                    self.sqs_units[self.phase] += 1

    def _after_dynamo(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        op = model.name
        params = context.get("bench_params", {})
        with self.lock:
            if op in ("GetItem", "Query", "BatchGetItem", "Scan"):
                self._dynamo_read(self.phase, op, params, parsed)
            else:
                self._dynamo_write(self.phase, op, params, parsed, failed="Error" in parsed)

    def _dynamo_write(
        self, phase: str, op: str, params: dict[str, Any], parsed: dict[str, Any], failed: bool
    ) -> None:
        if op == "PutItem":
            key = self._key(params["TableName"], params["Item"])
            before = self.sizes.get(key, 0)
            size = item_size(params["Item"])
            self.wru[phase] += write_units(before, 0 if failed else size)
            if not failed:
                self.sizes[key] = size
        elif op == "UpdateItem":
            key = self._key(params["TableName"], params["Key"])
            before = self.sizes.get(key, 0)
            after = item_size(parsed["Attributes"]) if "Attributes" in parsed else 0
            self.wru[phase] += write_units(before, after)
            if after:
                self.sizes[key] = after
        elif op == "DeleteItem":
            key = self._key(params["TableName"], params["Key"])
            self.wru[phase] += write_units(self.sizes.pop(key, 0))
        elif op == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for r in requests:
                    if "PutRequest" in r:
                        key = self._key(table, r["PutRequest"]["Item"])
                        size = item_size(r["PutRequest"]["Item"])
                        self.wru[phase] += write_units(self.sizes.get(key, 0), size)
                        self.sizes[key] = size
                    else:
                        key = self._key(table, r["DeleteRequest"]["Key"])
                        self.wru[phase] += write_units(self.sizes.pop(key, 0))
        elif op == "TransactWriteItems":
            self._transaction(phase, params["TransactItems"], failed)

    def _dynamo_read(self, phase: str, op: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        if op == "GetItem":
            key = self._key(params["TableName"], params["Key"])
            if key in self.unpriced and "Item" in parsed:
                written_in, before = self.unpriced.pop(key)
                self.sizes[key] = item_size(parsed["Item"])
                self.wru[written_in] += 2 * write_units(before, self.sizes[key])
            self.rru[phase] += read_units(
                self.sizes.get(key, 0), consistent=bool(params.get("ConsistentRead"))
            )
        elif op == "Query":
            table = params["TableName"]
            total = 0
            for raw in parsed.get("Items", []):
                total += self.sizes.get(self._key(table, raw), item_size(raw))
            self.rru[phase] += read_units(total, consistent=bool(params.get("ConsistentRead")))
        elif op == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                for k in request["Keys"]:
                    self.rru[phase] += read_units(self.sizes.get(self._key(table, k), 0), consistent=False)
        elif op == "Scan":
            total = sum(item_size(raw) for raw in parsed.get("Items", []))
            self.rru[phase] += read_units(total, consistent=False)

    def _transaction(self, phase: str, items: list[dict[str, Any]], failed: bool) -> None:
        """A transactional write costs twice a standard one, per item (2 WRU per started KB)."""
        for entry in items:
            ((kind, body),) = entry.items()
            key = self._key(body["TableName"], body.get("Key") or body["Item"])
            before = self.sizes.get(key, 0)
            if kind == "Put":
                size = item_size(body["Item"])
                self.wru[phase] += 2 * write_units(before, 0 if failed else size)
                if not failed:
                    self.sizes[key] = size
            elif kind == "Delete":
                self.wru[phase] += 2 * write_units(before)
                if not failed:
                    self.sizes.pop(key, None)
            elif kind == "Update" and not failed and not key[1][-1].startswith("~"):
                self.unpriced[key] = (phase, before)
            else:  # a counter item (well under 1 KB), a condition check, or a canceled update
                self.wru[phase] += 2 * write_units(before)

    def api_call(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One API Gateway request + one API Lambda invocation; remembers its AWS calls."""
        before = sum(self.requests.values())
        out = fn(*args, **kwargs)
        self.api_calls[self.phase] += 1
        self.api_aws_calls.append(sum(self.requests.values()) - before)
        return out
