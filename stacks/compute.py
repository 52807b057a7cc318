"""The workers' network and AWS Batch compute: VPC (or an existing one), security group, compute
environment and job queue, all children of the ``Execution`` construct (their logical IDs stay its own).

Network: by default a new VPC with public subnets only and no NAT gateway (a NAT costs more per
month than many small batch runs); Fargate tasks get a public IP and reach S3/DynamoDB through
free gateway endpoints. ``-c vpc_id=vpc-...`` uses an existing VPC instead (its private subnets
with egress if it has any, otherwise its public subnets).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks import worker_iam
from stacks.config import GeoBatchConfig
from stacks.lambda_factory import retention
from stacks.nag import suppress


def network(scope: Construct, config: GeoBatchConfig) -> tuple[ec2.IVpc, ec2.SubnetSelection]:
    """The workers' VPC and the subnets they run in."""
    if config.vpc_id:
        vpc = ec2.Vpc.from_lookup(scope, "Vpc", vpc_id=config.vpc_id)
        if vpc.private_subnets:
            return vpc, ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        return vpc, ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
    vpc = ec2.Vpc(
        scope,
        "Vpc",
        max_azs=3,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=20)
        ],
        gateway_endpoints={
            "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
            "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
        },
    )
    flow_logs = logs.LogGroup(
        scope,
        "FlowLogs",
        retention=retention(config.log_retention_days),
        removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
    )
    vpc.add_flow_log(
        "FlowLog",
        destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
        traffic_type=ec2.FlowLogTrafficType.REJECT,
    )
    return vpc, ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)


def security_group(scope: Construct, vpc: ec2.IVpc) -> ec2.SecurityGroup:
    """The workers' security group: nothing comes in."""
    return ec2.SecurityGroup(
        scope,
        "Workers",
        vpc=vpc,
        description="GeoBatch workers: no inbound traffic, outbound to AWS APIs and data sources",
        allow_all_outbound=True,
    )


def job_queue(scope: Construct, environment: batch.IManagedComputeEnvironment) -> batch.JobQueue:
    """The one job queue every worker runs in."""
    return batch.JobQueue(
        scope,
        "JobQueue",
        priority=1,
        compute_environments=[batch.OrderedComputeEnvironment(compute_environment=environment, order=1)],
    )


def compute_environment(
    scope: Construct,
    config: GeoBatchConfig,
    vpc: ec2.IVpc,
    subnets: ec2.SubnetSelection,
    workers: ec2.ISecurityGroup,
) -> batch.IManagedComputeEnvironment:
    """Fargate (the default) or EC2 compute, on demand or Spot (context ``compute_type``)."""
    spot = config.compute_type in ("FARGATE_SPOT", "SPOT")
    if config.is_fargate:
        return batch.FargateComputeEnvironment(
            scope,
            "Compute",
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[workers],
            spot=spot,
            maxv_cpus=config.max_vcpus,
        )
    environment = batch.ManagedEc2EcsComputeEnvironment(
        scope,
        "Compute",
        vpc=vpc,
        vpc_subnets=subnets,
        security_groups=[workers],
        launch_template=worker_iam.instance_template(scope),
        spot=spot,
        minv_cpus=0,
        maxv_cpus=config.max_vcpus,
        use_optimal_instance_classes=True,
        allocation_strategy=(
            batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
            if spot
            else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE
        ),
    )
    suppress(
        environment,
        [
            {
                "id": "AwsSolutions-IAM4",
                "reason": "AmazonEC2ContainerServiceforEC2Role is the documented "
                "instance role policy of ECS container instances in a Batch EC2 compute environment.",
                "findings": [
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
                ],
            },
        ],
    )
    return environment
