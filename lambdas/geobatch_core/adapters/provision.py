"""Creates the tables and bucket the way the CDK state and storage constructs define them.

Used by local mode (against moto's server) and by the moto-backed tests, so both run on the same
schema as a deployed stack.
"""

from __future__ import annotations

import contextlib
from typing import Any

from botocore.exceptions import ClientError

from geobatch_core import layout


def create_tables(dynamodb: Any, functions_table: str, jobs_table: str) -> None:
    specs = [
        {
            "TableName": functions_table,
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": "id", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
                {"AttributeName": "creation_date", "AttributeType": "S"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": layout.FUNCTIONS_OWNER_INDEX,
                    "KeySchema": [
                        {"AttributeName": "owner", "KeyType": "HASH"},
                        {"AttributeName": "creation_date", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
        {
            "TableName": jobs_table,
            "KeySchema": [
                {"AttributeName": "function_id", "KeyType": "HASH"},
                {"AttributeName": "job_key", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": "function_id", "AttributeType": "S"},
                {"AttributeName": "job_key", "AttributeType": "S"},
                *job_index_attributes(),
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": name,
                    "KeySchema": [
                        {"AttributeName": partition, "KeyType": "HASH"},
                        {"AttributeName": sort, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for name, partition, sort, _ in layout.JOB_INDEXES.values()
            ],
        },
    ]
    for spec in specs:
        try:
            dynamodb.create_table(BillingMode="PAY_PER_REQUEST", **spec)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
    with contextlib.suppress(ClientError):  # already enabled
        dynamodb.update_time_to_live(
            TableName=jobs_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": layout.JOB_TTL_ATTRIBUTE},
        )


def job_index_attributes() -> list[dict[str, str]]:
    """Attribute definitions the Jobs table's indexes add (the table's own keys aside)."""
    types = {"owner": "S"} | {sort: kind for _, _, sort, kind in layout.JOB_INDEXES.values()}
    return [{"AttributeName": name, "AttributeType": kind} for name, kind in types.items()]


def create_bucket(s3: Any, bucket: str) -> None:
    region = s3.meta.region_name
    # us-east-1 is the one region that refuses a location constraint naming itself.
    location = (
        {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    try:
        s3.create_bucket(Bucket=bucket, **location)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
