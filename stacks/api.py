"""The REST API: API Gateway (IAM/SigV4 auth on every method) → the API Lambda (Powertools resolver).

Every route is one proxy integration (``/`` and ``/{proxy+}``, method ANY); the Lambda routes and
validates requests with pydantic; API Gateway's request validator (on, for cdk-nag) has no body model
to check, only parameters.
API Gateway caps REST payloads at 10 MB; the Lambda enforces ``limits.MAX_REQUEST_BYTES``
(5.5 MB, under Lambda's 6 MB synchronous limit) and answers 413 with a message.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import GeoBatchConfig
from stacks.lambda_factory import LambdaFactory, retention
from stacks.nag import suppress

THROTTLE_RATE = 100  # requests per second, steady state, for the whole stage
THROTTLE_BURST = 200
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "time": "$context.requestTime",
    "caller": "$context.identity.caller",
    "userArn": "$context.identity.userArn",
    "sourceIp": "$context.identity.sourceIp",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integration.status",
    "error": "$context.error.message",
    "authError": "$context.authorize.error",
}


class Api(Construct):
    """REST API + API Lambda; ``url`` is the SDK's ``GEOBATCH_API_URL``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: GeoBatchConfig, factory: LambdaFactory
    ) -> None:
        super().__init__(scope, construct_id)
        self.function: lambda_.Function = factory.create(
            self,
            "Handler",
            handler="geobatch_api.app.handler",
            service="geobatch-api",
            description="GeoBatch REST API",
            memory_mb=1024,  # bulk submissions parse and validate up to 1000 jobs per request
            timeout=Duration.seconds(29),  # API Gateway's integration timeout
        )
        self.access_logs, self.rest_api = self._rest_api(config)
        if config.api_gateway_account:
            self._account_logging_role(config)
        self._routes()
        self.url = self.rest_api.url
        self._acknowledge_findings()

    def _rest_api(self, config: GeoBatchConfig) -> tuple[logs.LogGroup, apigw.RestApi]:
        """The regional REST API (IAM authorization, throttled stage, access logs, tracing)."""
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"geobatch-{config.stage}",
            description="GeoBatch: Functions and Jobs (SigV4-signed requests only)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=False,  # made below, retained on destroy (see _account_logging_role)
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                throttling_rate_limit=THROTTLE_RATE,
                throttling_burst_limit=THROTTLE_BURST,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
                tracing_enabled=True,
                metrics_enabled=True,
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )
        return access_logs, rest_api

    def _routes(self) -> None:
        """Every path and method to the API Lambda (one proxy integration: the Lambda routes)."""
        validator = self.rest_api.add_request_validator(
            "Requests", validate_request_parameters=True, validate_request_body=True
        )
        integration = apigw.LambdaIntegration(self.function, proxy=True)
        proxy = self.rest_api.root.add_resource("{proxy+}")
        for resource in (self.rest_api.root, proxy):
            resource.add_method(
                "ANY",
                integration,
                authorization_type=apigw.AuthorizationType.IAM,
                request_validator=validator,
            )

    def _acknowledge_findings(self) -> None:
        """The cdk-nag findings this API accepts, each with why."""
        suppress(
            self.rest_api,
            [
                {
                    "id": "AwsSolutions-APIG3",
                    "reason": "Every method requires SigV4 (IAM) and the stage is throttled; "
                    "a WAF web ACL can be attached per deployment and is not part of the default cost.",
                },
                {
                    "id": "AwsSolutions-APIG6",
                    "reason": "Execution logs go to a log group API Gateway creates itself, without "
                    "retention; access logs (stack-owned group with retention) and X-Ray tracing are on.",
                },
                {
                    "id": "AwsSolutions-COG4",
                    "reason": "Callers are IAM principals (SigV4), not Cognito users: "
                    "AWS_IAM authorization is set on every method.",
                },
            ],
        )

    def _account_logging_role(self, config: GeoBatchConfig) -> None:
        """The region's API Gateway CloudWatch role: API Gateway refuses a stage with access logging
        ("CloudWatch Logs role ARN must be set in account settings") until the account has one.

        ``AWS::ApiGateway::Account`` is one setting per account and region: deploying sets it to this
        role, replacing any role set before (same permissions, so other APIs keep logging). The role is
        retained when the stack is destroyed, because the setting outlives the stack and a deleted role
        would break the logging of every API in the region. Where the account's role is managed
        elsewhere, deploy with ``-c api_gateway_account=false``.
        """
        role = iam.Role(
            self,
            "CloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway: push access and execution logs to CloudWatch (account setting)",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                )
            ],
        )
        role.apply_removal_policy(RemovalPolicy.RETAIN)
        account = apigw.CfnAccount(self, "Account", cloud_watch_role_arn=role.role_arn)
        account.apply_removal_policy(RemovalPolicy.RETAIN)
        # The stage's access logging is checked against the account setting when the stage is made.
        self.rest_api.deployment_stage.node.add_dependency(account)
        suppress(
            role,
            [
                {
                    "id": "AwsSolutions-IAM4",
                    "reason": "AmazonAPIGatewayPushToCloudWatchLogs is the documented policy of the "
                    "account-wide API Gateway logging role; it serves every API of the region, so it cannot "
                    "be scoped to this stack's log groups.",
                    "findings": [
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AmazonAPIGatewayPushToCloudWatchLogs"
                    ],
                }
            ],
        )
