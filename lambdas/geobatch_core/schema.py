"""The two tables' schema: key attributes, the indexes and the TTL attribute, in one place.

The CDK (``stacks/state.py``) creates the deployed tables from it, ``adapters/provision.py`` the
same tables in moto (tests, local mode's moto server), and the DynamoDB adapter builds its keys
from it; local mode's SQLite tables are checked against it (``tests/infra/test_state_contract.py``).
A pure module (no boto3), so stacks can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geobatch_core import layout

__all__ = ["FUNCTIONS", "JOBS", "Index", "TableSchema"]


@dataclass(frozen=True)
class Index:
    """A global secondary index (all attributes projected); its partition attribute is a string,
    its sort attribute a string ("S") or a number ("N")."""

    name: str
    partition: str
    sort: str | None = None
    sort_type: str = "S"


@dataclass(frozen=True)
class TableSchema:
    """A table's string key attributes, its indexes and its TTL attribute."""

    partition: str
    sort: str | None = None
    indexes: tuple[Index, ...] = ()
    ttl: str | None = None

    @property
    def key_attributes(self) -> tuple[str, ...]:
        return (self.partition,) if self.sort is None else (self.partition, self.sort)

    def key(self, *values: str) -> dict[str, Any]:
        """The DynamoDB (low-level) key of the item with these key values."""
        return {name: {"S": value} for name, value in zip(self.key_attributes, values, strict=True)}

    def create_table_args(self, table_name: str) -> dict[str, Any]:
        """The ``CreateTable`` arguments of this table (billing and TTL aside)."""
        types = dict.fromkeys(self.key_attributes, "S")
        for index in self.indexes:
            types.setdefault(index.partition, "S")
            if index.sort is not None:
                types.setdefault(index.sort, index.sort_type)
        args: dict[str, Any] = {
            "TableName": table_name,
            "KeySchema": _key_schema(self.partition, self.sort),
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in types.items()],
        }
        if self.indexes:
            args["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": i.name,
                    "KeySchema": _key_schema(i.partition, i.sort),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for i in self.indexes
            ]
        return args


def _key_schema(partition: str, sort: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition, "KeyType": "HASH"}]
    return schema if sort is None else [*schema, {"AttributeName": sort, "KeyType": "RANGE"}]


# Functions by id; the owner index lists one owner's Functions newest first.
FUNCTIONS = TableSchema(
    partition="id", indexes=(Index(layout.FUNCTIONS_OWNER_INDEX, "owner", "creation_date"),)
)
# Jobs (and submission references, idempotency records, bulk operations) by Function and job key,
# with the indexes sorted listings read (services.listing).
JOBS = TableSchema(
    partition="function_id",
    sort="job_key",
    ttl=layout.JOB_TTL_ATTRIBUTE,
    indexes=tuple(
        Index(name, partition, sort, kind) for name, partition, sort, kind in layout.JOB_INDEXES.values()
    ),
)
