"""moto's TransactWriteItems at DynamoDB's speed: the same semantics, without copying whole tables.

moto backs every transaction up with ``copy.deepcopy`` of each table it touches, once per item of
the transaction, so a transaction's cost grows with the table (a 2-item counted transition on a
table of a few thousand jobs takes tens of milliseconds, a 100-item submission seconds). DynamoDB's
cost does not. This backs up only the items the transaction names (deep copies of those items, or
their absence) and restores exactly those when moto cancels the transaction, which is all a
rollback needs: a transaction writes nothing else. Applied by ``tests/conftest.py`` and the
benchmarks; ``tests/infra/test_counts_contract.py`` checks the rollback.

It also makes each DynamoDB request atomic, as DynamoDB's are: moto's in-process backend changes
items in place, so a worker thread's UpdateItem could change an item while the test's GetItem
serialized it ("dictionary changed size during iteration", seen on a loaded machine). One lock
around moto's DynamoDB request handler serializes the requests, not the callers' work between them.
"""

from __future__ import annotations

import copy
import threading
import types
from typing import Any

_installed = threading.Lock()
_requests = threading.RLock()  # one DynamoDB request at a time in this process's moto
_done: list[bool] = []


class _NoTableCopies(types.ModuleType):
    """The ``copy`` module as moto's DynamoDB backend sees it: tables are "copied" as themselves
    (the items they hold are backed up by ``transact_write_items`` below); everything else as usual."""

    def __init__(self) -> None:
        super().__init__("copy")

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def install() -> None:
    with _installed:
        if _done:
            return
        from moto.dynamodb import models
        from moto.dynamodb.models.dynamo_type import DynamoType

        original = models.DynamoDBBackend.transact_write_items

        def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
            saved = []
            for entry in transact_items:
                (op,) = entry.values()
                table = self.tables.get(op.get("TableName"))
                if table is None:
                    continue
                key = op.get("Key") or {
                    k: op["Item"][k]
                    for k in (table.hash_key_attr, table.range_key_attr)
                    if k and k in op["Item"]
                }
                hash_key = DynamoType(key[table.hash_key_attr])
                range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
            try:
                original(self, transact_items)
            except Exception:
                for table, hash_key, range_key, item in reversed(saved):
                    _restore(table, hash_key, range_key, item)
                raise

        from moto.dynamodb.responses import DynamoHandler

        handle = DynamoHandler.call_action

        def call_action(self: Any) -> Any:
            with _requests:
                return handle(self)

        DynamoHandler.call_action = call_action  # type: ignore[method-assign]
        models.copy = _NoTableCopies()  # type: ignore[attr-defined]
        models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        _done.append(True)


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        table.items.get(hash_key, {}).pop(range_key, None)
    else:
        table.items[hash_key][range_key] = item
