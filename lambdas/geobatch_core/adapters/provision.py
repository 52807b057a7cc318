"""Creates the tables (from ``geobatch_core.schema``, as the CDK does) and the bucket.

Used by local mode (against moto's server) and by the moto-backed tests, so both run on the same
schema as a deployed stack.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, cast

from botocore.exceptions import ClientError

from geobatch_core import schema

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType


def create_tables(dynamodb: DynamoDBClient, functions_table: str, jobs_table: str) -> None:
    specs = [schema.FUNCTIONS.create_table_args(functions_table), schema.JOBS.create_table_args(jobs_table)]
    for spec in specs:
        try:
            dynamodb.create_table(BillingMode="PAY_PER_REQUEST", **spec)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
    ttl = schema.JOBS.ttl
    assert ttl is not None  # nosec B101: the Jobs schema names its TTL attribute
    with contextlib.suppress(ClientError):  # already enabled
        dynamodb.update_time_to_live(
            TableName=jobs_table, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )


def create_bucket(s3: S3Client, bucket: str) -> None:
    region = s3.meta.region_name
    # us-east-1 is the one region that refuses a location constraint naming itself.
    try:
        if region in (None, "us-east-1"):
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket,
                CreateBucketConfiguration={
                    "LocationConstraint": cast("BucketLocationConstraintType", region)
                },
            )
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
