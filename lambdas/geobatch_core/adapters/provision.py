"""Creates the tables (from ``geobatch_core.schema``, as the CDK does) and the bucket.

Used by local mode (against moto's server) and by the moto-backed tests, so both run on the same
schema as a deployed stack.
"""

from __future__ import annotations

import contextlib
from typing import Any

from botocore.exceptions import ClientError

from geobatch_core import schema


def create_tables(dynamodb: Any, functions_table: str, jobs_table: str) -> None:
    specs = [schema.FUNCTIONS.create_table_args(functions_table), schema.JOBS.create_table_args(jobs_table)]
    for spec in specs:
        try:
            dynamodb.create_table(BillingMode="PAY_PER_REQUEST", **spec)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
    with contextlib.suppress(ClientError):  # already enabled
        dynamodb.update_time_to_live(
            TableName=jobs_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": schema.JOBS.ttl},
        )


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
