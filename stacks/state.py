"""DynamoDB: the Functions and Jobs tables, with the keys ``geobatch_core`` adapters expect.

Both tables are on-demand (batch submissions are bursty), have point-in-time recovery and
AWS-managed KMS encryption. The prod stage retains them on stack deletion (and turns on deletion
protection); other stages are disposable and are destroyed with the stack.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from geobatch_core import layout
from stacks.config import GeoBatchConfig


class State(Construct):
    """``functions`` (PK id, GSI owner-created) and ``jobs`` (PK function_id, SK job_key, TTL, and
    the GSIs of ``layout.JOB_INDEXES`` for sorted listings)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: GeoBatchConfig) -> None:
        super().__init__(scope, construct_id)
        common = dict(
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=config.is_prod,
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        string = dynamodb.AttributeType.STRING
        self.functions = dynamodb.Table(
            self, "Functions", partition_key=dynamodb.Attribute(name="id", type=string), **common
        )
        self.functions.add_global_secondary_index(
            index_name=layout.FUNCTIONS_OWNER_INDEX,
            partition_key=dynamodb.Attribute(name="owner", type=string),
            sort_key=dynamodb.Attribute(name="creation_date", type=string),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.jobs = dynamodb.Table(
            self,
            "Jobs",
            partition_key=dynamodb.Attribute(name="function_id", type=string),
            sort_key=dynamodb.Attribute(name="job_key", type=string),
            time_to_live_attribute=layout.JOB_TTL_ATTRIBUTE,
            **common,
        )
        kinds = {"S": string, "N": dynamodb.AttributeType.NUMBER}
        for name, partition, sort, kind in layout.JOB_INDEXES.values():
            # Sorted listings page through these instead of sorting in memory (services.listing).
            self.jobs.add_global_secondary_index(
                index_name=name,
                partition_key=dynamodb.Attribute(name=partition, type=string),
                sort_key=dynamodb.Attribute(name=sort, type=kinds[kind]),
                projection_type=dynamodb.ProjectionType.ALL,
            )
