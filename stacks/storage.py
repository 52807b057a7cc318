"""S3: the data bucket (bundles, build logs, job arguments, results, job logs) and its access-log bucket.

Key prefixes come from ``geobatch_core.layout`` so lifecycle rules and IAM grants match what the
code writes. Objects are SSE-S3 encrypted: the SDK uploads bundles and downloads results with
plain HTTPS presigned URLs, and SSE-S3 needs no KMS grants for every role and URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import GeoBatchConfig
from stacks.nag import suppress

# Top-level prefixes of geobatch_core.layout (bundle_key, build_log_key, args_key, result_key, log_key).
BUNDLES, BUILDS, ARGS, RESULTS, LOGS = "bundles/", "builds/", "args/", "results/", "logs/"
ACCESS_LOG_DAYS = 90


class Storage(Construct):
    """The data bucket with lifecycle rules, and helpers that grant prefix-scoped object access."""

    def __init__(self, scope: Construct, construct_id: str, *, config: GeoBatchConfig) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY
        common = dict(
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal,
            auto_delete_objects=not config.is_prod,
        )
        self.access_logs = self._access_log_bucket(common)
        self.bucket = s3.Bucket(
            self,
            "Data",
            **common,
            versioned=config.versioned_bucket,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data/",
            lifecycle_rules=self._data_rules(config),
        )

    def _access_log_bucket(self, common: dict[str, Any]) -> s3.Bucket:
        """The data bucket's server access logs, kept ACCESS_LOG_DAYS days."""
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            **common,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(ACCESS_LOG_DAYS))
            ],
        )
        suppress(
            bucket,
            [
                {
                    "id": "AwsSolutions-S1",
                    "reason": "This is the server access log bucket; it cannot log to itself.",
                }
            ],
        )
        return bucket

    @staticmethod
    def _data_rules(config: GeoBatchConfig) -> list[s3.LifecycleRule]:
        """How long each prefix of the data bucket keeps its objects."""
        rules = [
            s3.LifecycleRule(
                id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
            ),
            # Job logs and image build logs are for debugging; they follow the log retention setting.
            s3.LifecycleRule(
                id="expire-job-logs", prefix=LOGS, expiration=Duration.days(config.log_retention_days)
            ),
            s3.LifecycleRule(
                id="expire-build-logs", prefix=BUILDS, expiration=Duration.days(config.log_retention_days)
            ),
            # A re-saved Function overwrites its bundle; with versioning on, old bundles go after a week.
            s3.LifecycleRule(
                id="expire-old-bundles", prefix=BUNDLES, noncurrent_version_expiration=Duration.days(7)
            ),
        ]
        if config.result_retention_days > 0:
            # Arguments are kept as long as results: a job can be re-run while its result is kept.
            days = Duration.days(config.result_retention_days)
            rules += [
                s3.LifecycleRule(id="expire-results", prefix=RESULTS, expiration=days),
                s3.LifecycleRule(id="expire-args", prefix=ARGS, expiration=days),
            ]
        return rules

    def grant_objects(
        self,
        grantee: iam.IGrantable,
        *,
        read: Sequence[str] = (),
        write: Sequence[str] = (),
        delete: Sequence[str] = (),
        list_: Sequence[str] = (),
    ) -> None:
        """Grant object actions on key prefixes only (e.g. ``read=["bundles/"]``), never ``s3:*``."""
        for actions, prefixes in (
            (["s3:GetObject"], read),
            (["s3:PutObject"], write),
            (["s3:DeleteObject"], delete),
        ):
            if prefixes:
                grantee.grant_principal.add_to_principal_policy(
                    iam.PolicyStatement(
                        actions=actions, resources=[self.bucket.arn_for_objects(f"{p}*") for p in prefixes]
                    )
                )
        if list_:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[self.bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in list_]}},
                )
            )
