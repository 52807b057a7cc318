"""Every place where the rehearsal stands in for something moto lacks: ONE list, each with its reason.

A bridge either (a) takes a resource moto's CloudFormation cannot create out of the template copy
and creates the same thing through the service's API from the resource's own (resolved) properties,
or (b) replaces a check moto does not make with one the test makes. Nothing else in the template is
touched: every other resource is created by moto's CloudFormation from the synthesized template, and
``test_deploy`` fails when a resource is neither created by moto nor bridged here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bridge:
    what: str
    how: str
    why: str


# Resource types moto 5.2.5's CloudFormation does not implement (no CloudFormationModel): the
# deploy removes them from its copy of the template and ``cloud.create_bridged`` creates each through
# the service's API after the stack is up. References to them are replaced by the name/ARN the
# bridge will give them.
BRIDGED_TYPES = {
    "AWS::S3::BucketPolicy": "s3.put_bucket_policy with the template's resolved PolicyDocument",
    "AWS::CodeBuild::Project": "codebuild.create_project with the template's resolved properties",
    "AWS::ApiGateway::Stage": "apigateway.create_stage on the template's deployment, after API Gateway's "
    "own precondition: access logging needs the account's CloudWatch role (AWS::ApiGateway::Account)",
    "AWS::ApiGateway::Account": "apigateway.update_account with the template's CloudWatchRoleArn",
    "AWS::ApiGateway::RequestValidator": "apigateway.create_request_validator; the methods keep a "
    "placeholder validator id (moto has no UpdateMethod; the rehearsal never goes through API Gateway)",
    "AWS::CloudWatch::Alarm": "cloudwatch.put_metric_alarm with the template's resolved properties",
    "AWS::SNS::TopicPolicy": "sns.set_topic_attributes(Policy) on each topic",
    "AWS::SQS::QueuePolicy": "sqs.set_queue_attributes(Policy) on each queue",
}

BRIDGES: list[Bridge] = [
    *(
        Bridge(f"resource type {cfn_type}", how, "moto's CloudFormation has no model for it")
        for cfn_type, how in BRIDGED_TYPES.items()
    ),
    Bridge(
        "generated physical name of AWS::ECR::Repository",
        "lowercased in moto's server (moto_fixes._lowercase_generated_names)",
        "CloudFormation generates lowercase repository names; moto keeps the stack name's case and its "
        "own ECR then rejects the name",
    ),
    Bridge(
        "AWS::KMS::Key Tags and KeyPolicy",
        "Key/Value translated to TagKey/TagValue, the policy object to its JSON text "
        "(moto_fixes._kms_key_properties)",
        "moto's CloudFormation model passes both to its KMS backend unchanged, which then fails",
    ),
    Bridge(
        "AWS::Batch::ComputeEnvironment without ServiceRole, Type 'managed'",
        "the service-linked role AWSServiceRoleForBatch is created and used; Type upper-cased "
        "(moto_fixes._batch_compute_environment)",
        "AWS uses the service-linked role and accepts the type in any case; moto requires both explicit",
    ),
    Bridge(
        "Fn::GetAtt ComputeEnvironmentArn / JobQueueArn",
        "answered with the resource's ARN (moto_fixes._arn_attribute)",
        "moto's Batch models implement no CloudFormation attributes",
    ),
    Bridge(
        "Custom::S3AutoDeleteObjects (CDK's Node.js provider Lambda)",
        "the test answers SUCCESS on the custom resource's ResponseURL, as the provider does on Create "
        "(it only acts on Delete)",
        "moto invokes custom-resource Lambdas in Docker, which this machine does not have",
    ),
    Bridge(
        "CDK bootstrap (bucket cdk-hnb659fds-assets-*, SSM /cdk-bootstrap/hnb659fds/version)",
        "created by the deploy admin, the file assets zipped and uploaded where *.assets.json says",
        "`cdk bootstrap` + cdk-assets do this in AWS; the CLI cannot target moto's server",
    ),
    Bridge(
        "authorization of every request after the first three (moto server, INITIAL_NO_AUTH_ACTION_COUNT)",
        "moto authenticates (access key known, SigV4 signature valid); tests/rehearsal/policy_eval "
        "then decides with the principal's identity policies, its permissions boundary, the bucket "
        "policy, the request's real resource ARNs and condition keys (dynamodb:LeadingKeys, s3:prefix, "
        "iam:PermissionsBoundary, iam:PassedToService, cloudwatch:namespace)",
        "moto checks only S3/SQS/IAM/STS against a resource (others against '*'), ignores condition "
        "keys and permissions boundaries, and ignores a bucket policy's conditions",
    ),
    Bridge(
        "IAM semantics the authorizer models",
        "SendMessageBatch/DeleteMessageBatch/ChangeMessageVisibilityBatch are checked as their "
        "single-message actions; RegisterJobDefinition also checks iam:PassRole (PassedToService "
        "batch.amazonaws.com) on its job and execution roles; GetRole/PutRolePolicy of a role that does "
        "not exist yet is checked against role/<name> (IAM cannot know its path)",
        "what AWS documents or does; moto checks none of it",
    ),
    Bridge(
        "moto's SigV4 check of GET/HEAD/DELETE requests and its AccessDenied body",
        "the signature is computed over an empty payload when the request has no body; a denial is "
        "answered in the service's protocol (JSON AccessDeniedException for JSON services)",
        "moto signs a GET's query parameters as its payload (SignatureDoesNotMatch on e.g. API "
        "Gateway's GET /account) and answers every denial in XML, which a JSON client cannot parse",
    ),
    Bridge(
        "aws:SecureTransport",
        "always true",
        "the server is plain HTTP on 127.0.0.1; in AWS every SDK call is TLS",
    ),
    Bridge(
        "presigned S3 URLs",
        "the signer's access key and policies are checked; the URL's signature is not",
        "moto's IAM check reads only the Authorization header",
    ),
    Bridge(
        "service principals (lambda.amazonaws.com, ecs-tasks.amazonaws.com) assuming roles",
        "the deploy admin calls sts.assume_role on the function's or worker's role; the role's trust "
        "policy is asserted to name the right service (a role assuming a role, as the worker assumes "
        "its Function's data role, is checked against the target's trust policy)",
        "Lambda and ECS obtain these credentials themselves in AWS",
    ),
    Bridge(
        "API Gateway (SigV4 authorization, proxy integration)",
        "the API Lambda is invoked with an API Gateway REST proxy event carrying the caller's IAM "
        "identity (tests/events/apigw_rest_iam.json)",
        "moto's API Gateway does not invoke Lambda integrations without Docker",
    ),
    Bridge(
        "EventBridge deliveries and Lambda invocations (build events, scaler on submit and schedule)",
        "the test invokes the target Lambda with the event EventBridge/Lambda would deliver",
        "moto neither routes events to Lambda targets nor runs Lambdas without Docker",
    ),
    Bridge(
        "AWS Batch running the worker container",
        "the test runs `python -m geobatch_worker` with the job definition's environment and command "
        "and the job role's credentials (plus AWS_BATCH_JOB_ID, the region Fargate injects, and a 2 s "
        "idle time so the worker stops once the queue is empty)",
        "moto's Batch does not run containers here (no Docker); the image itself is another rehearsal",
    ),
]
