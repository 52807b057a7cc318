"""DynamoDB: the Functions and Jobs tables, with the keys of ``geobatch_core.schema``.

Both tables are on-demand (batch submissions are bursty), have point-in-time recovery and
AWS-managed KMS encryption. The prod stage retains them on stack deletion (and turns on deletion
protection); other stages are disposable and are destroyed with the stack.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from geobatch_core import schema
from stacks.config import GeoBatchConfig


class State(Construct):
    """``functions`` (PK id, GSI owner-created) and ``jobs`` (PK function_id, SK job_key, TTL, and the
    GSIs that sorted listings read: ``layout.JOB_INDEXES``)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: GeoBatchConfig) -> None:
        super().__init__(scope, construct_id)
        common: dict[str, Any] = dict(
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=config.is_prod,
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        self.functions = self._table("Functions", schema.FUNCTIONS, common)
        self.jobs = self._table("Jobs", schema.JOBS, common)

    def _table(self, construct_id: str, table: schema.TableSchema, common: dict[str, Any]) -> dynamodb.Table:
        created = dynamodb.Table(
            self,
            construct_id,
            partition_key=_attribute(table.partition),
            sort_key=_attribute(table.sort) if table.sort else None,
            time_to_live_attribute=table.ttl,
            **common,
        )
        for index in table.indexes:
            created.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.partition),
                sort_key=_attribute(index.sort, index.sort_type) if index.sort else None,
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return created


def _attribute(name: str, kind: str = "S") -> dynamodb.Attribute:
    types = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}
    return dynamodb.Attribute(name=name, type=types[kind])
