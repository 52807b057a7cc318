"""The k-means tile job's data access, decided by IAM on the role and boundary the stack really makes.

The tile job runs for real (model, STAC items and COGs in the user's bucket as ``geobatch demo
--cloud`` lays them out, and once more with the imagery in the public Sentinel-2 archive) against a
moto S3 server that records every request, boto3's and GDAL's. Then, on moto's in-process AWS, the
Function is created through the API Lambda with the demo's own ``data_access`` declaration, under the
worker boundary synthesized from the CDK app with a ``data_access`` context; its build event
creates the worker role. The role's inline policy and its boundary are read back from moto's IAM,
and each recorded request is decided by moto's policy evaluator (tests/infra/iam_eval.py lists
what it bridges): allowed only when both allow.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from geobatch.demo import demo_data_access
from geobatch.landcover.product import tile_id
from geobatch.wire import data_access, env
from geobatch_api import context as api_context
from geobatch_core import layout
from geobatch_core.adapters import provision
from geobatch_ops import build_events
from tests.conftest import FakeLambdaContext
from tests.infra import moto_resources
from tests.infra.iam_eval import PermissionResult, Request, decide, evaluate
from tests.infra.s3_requests import S3Call, recording_s3_server
from tests.infra.test_ops_lambdas import build_event, call_api

pytestmark = pytest.mark.infra
REGION = "us-west-2"
ACCOUNT = "123456789012"  # moto's default account
USER_BUCKET = "my-landcover"  # the --bucket B of the demo
STATE_BUCKET = "geobatch-data"  # the stack's own bucket
PUBLIC = "sentinel-cogs"
PRODUCT = "landcover-v1"
# The operator's bound (cdk.json context "data_access"): the user's bucket, products only to write.
BOUND = {"read": [f"s3://{PUBLIC}/*", f"s3://{USER_BUCKET}/*"], "write": [f"s3://{USER_BUCKET}/products/*"]}


# --------------------------------------------------------------------------- the tile job, recorded

# The archive's bucket policy: anyone may read (as the Registry of Open Data's sentinel-cogs does).
PUBLIC_READ = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{PUBLIC}", f"arn:aws:s3:::{PUBLIC}/*"],
        }
    ],
}


@dataclass(frozen=True)
class TileRuns:
    plan: Any
    demo_layout: list[S3Call]  # everything in the user's bucket, read signed
    archive_layout: list[S3Call]  # imagery in the public archive, read unsigned


def _archive_copy(s3: Any, plan: Any) -> str:
    """The scene's COGs copied into the public archive's bucket, and an ItemCollection in the user's
    bucket pointing there (as a STAC search of earth-search answers); returns the collection's URI."""
    from geobatch.landcover.archive import ARCHIVE_PREFIX

    root = plan.archive_uri.split("/", 3)[3].rsplit("/", 1)[0]  # synthetic/{digest}
    items = s3.get_object(Bucket=USER_BUCKET, Key=f"{root}/search.json")["Body"].read().decode()
    prefix = f"{root}/{ARCHIVE_PREFIX}/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=USER_BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".tif"):
                s3.copy_object(
                    Bucket=PUBLIC, Key=obj["Key"], CopySource={"Bucket": USER_BUCKET, "Key": obj["Key"]}
                )
    key = f"{root}/search/archive.json"
    s3.put_object(Bucket=USER_BUCKET, Key=key, Body=items.replace(f"s3://{USER_BUCKET}/", f"s3://{PUBLIC}/"))
    return f"s3://{USER_BUCKET}/{key}"


@pytest.fixture(scope="module")
def tile_runs() -> TileRuns:
    """Prepare a small demo in the user's bucket, then run the tile job twice, recording its requests."""
    from geobatch.landcover.job import run_tile
    from geobatch.landcover.pipeline import prepare_demo

    with recording_s3_server() as (endpoint, recorder), pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            mp.setenv(key, value)
        mp.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        for bucket in (USER_BUCKET, PUBLIC):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_policy(Bucket=PUBLIC, Policy=json.dumps(PUBLIC_READ))
        plan = prepare_demo(
            s3,
            USER_BUCKET,
            width_px=240,
            height_px=240,
            tilesize=256,
            product_id=PRODUCT,
        )
        archive_items = _archive_copy(s3, plan)
        tile = plan.tile_keys[0]
        with recorder.recording() as demo_layout:
            run_tile(tile, PRODUCT, plan.model_uri, plan.items_uri, USER_BUCKET)
        # What the worker tells user code for the demo's declaration (public: the Sentinel-2 archive).
        mp.setenv(env.UNSIGNED_S3, data_access.unsigned_value(demo_data_access(plan).model_dump()))
        with recorder.recording() as archive_layout:
            run_tile(tile, PRODUCT, plan.model_uri, archive_items, USER_BUCKET)
    return TileRuns(plan, demo_layout, archive_layout)


# --------------------------------------------------------------------------- the control plane, on moto


def _resolve(value: Any, refs: dict[str, str]) -> Any:
    """CloudFormation intrinsics of the synthesized policy → the values of this moto 'deployment'."""
    if isinstance(value, list):
        return [_resolve(v, refs) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolve(p, refs) for p in parts)
    if "Ref" in value:
        return refs[value["Ref"]]
    if "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", value
        return refs[f"{logical}.Arn"]
    return {k: _resolve(v, refs) for k, v in value.items()}


def _boundary_document(resources: dict[str, Any], logical_prefix: str) -> dict[str, Any]:
    (boundary,) = [
        r["Properties"]["PolicyDocument"]
        for k, r in resources.items()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and k.startswith(logical_prefix)
    ]
    return dict(boundary)


def _template_parts(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str, dict[str, str]]:
    """The worker and data boundaries' documents, the API Lambda's GEOBATCH_DATA_ACCESS and the
    logical ids."""
    resources = template["Resources"]
    boundary = _boundary_document(resources, "ExecutionWorkerBoundary")
    data_boundary = _boundary_document(resources, "ExecutionDataBoundary")
    (api_env,) = [
        r["Properties"]["Environment"]["Variables"]
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith("ApiHandler")
    ]
    logical = {
        prefix: next(k for k in resources if k.startswith(prefix))
        for prefix in ("StateFunctions", "StateJobs", "StorageData")
    }
    return boundary, data_boundary, api_env[env.DATA_ACCESS], logical


@pytest.fixture
def stack(synth: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The stack's control plane on moto, with the boundary and bound of the synthesized template."""
    boundary_doc, data_boundary_doc, bound_json, logical = _template_parts(
        synth(data_access=BOUND).template_json
    )
    assert json.loads(bound_json) == BOUND  # the API Lambda is told the operator's bound
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config={"batch": {"use_docker": False}}):
        session = boto3.session.Session(region_name=REGION)
        dynamodb = session.client("dynamodb")
        provision.create_tables(dynamodb, "functions", "jobs")
        provision.create_bucket(session.client("s3"), STATE_BUCKET)
        tables = {n: dynamodb.describe_table(TableName=n)["Table"]["TableArn"] for n in ("functions", "jobs")}
        refs = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            f"{logical['StateFunctions']}.Arn": tables["functions"],
            f"{logical['StateJobs']}.Arn": tables["jobs"],
            f"{logical['StorageData']}.Arn": f"arn:aws:s3:::{STATE_BUCKET}",
            logical["StorageData"]: STATE_BUCKET,
        }
        iam = session.client("iam")
        boundary = iam.create_policy(
            PolicyName="WorkerBoundary", PolicyDocument=json.dumps(_resolve(boundary_doc, refs))
        )["Policy"]["Arn"]
        data_boundary = iam.create_policy(
            PolicyName="DataBoundary", PolicyDocument=json.dumps(_resolve(data_boundary_doc, refs))
        )["Policy"]["Arn"]
        execution_role = iam.create_role(RoleName="worker-execution", AssumeRolePolicyDocument="{}")["Role"]
        moto_resources.codebuild_project(session, "image-builder")
        for key, value in {
            env.FUNCTIONS_TABLE: "functions",
            env.JOBS_TABLE: "jobs",
            env.BUCKET: STATE_BUCKET,
            env.QUEUE_PREFIX: "geobatch-dev",
            env.BATCH_JOB_QUEUE: moto_resources.batch_job_queue(session, "workers"),
            env.BATCH_JOB_DEFINITION_PREFIX: "geobatch-dev",
            env.WORKER_PERMISSIONS_BOUNDARY: boundary,
            env.WORKER_DATA_BOUNDARY: data_boundary,
            env.FUNCTIONS_TABLE_ARN: tables["functions"],
            env.JOBS_TABLE_ARN: tables["jobs"],
            env.WORKER_EXECUTION_ROLE_ARN: execution_role["Arn"],
            env.CODEBUILD_PROJECT: "image-builder",
            env.ECR_REPOSITORY_URI: session.client("ecr").create_repository(repositoryName="geobatch")[
                "repository"
            ]["repositoryUri"],
            env.DATA_ACCESS: bound_json,
        }.items():
            monkeypatch.setenv(key, value)
        previous = api_context.configure(None)  # the API builds its ports from this environment
        try:
            yield session
        finally:
            api_context.configure(previous)


def ready_function(session: Any, name: str, access: dict[str, Any]) -> dict[str, Any]:
    """Create a Function through the API, upload its bundle and deliver its build event."""
    status, created = call_api("POST", "/functions", body={"name": name, "data_access": access})
    assert status == 201, created
    function = created["function"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("__gbentry__.py", "def main(*a):\n    return a\n")
    session.client("s3").put_object(
        Bucket=STATE_BUCKET, Key=layout.bundle_key(function["id"]), Body=buf.getvalue()
    )
    status, building = call_api("POST", f"/functions/{function['id']}/bundle")
    assert status == 200, building
    build_events.handler(
        build_event(function["id"], building["image_hash"], "SUCCEEDED"), FakeLambdaContext()
    )
    status, ready = call_api("GET", f"/functions/{function['id']}")
    assert status == 200 and ready["status"] == "ready", ready
    return {**ready, "queue_url": function_item(session, function["id"])["queue_url"]}


def function_item(session: Any, function_id: str) -> dict[str, Any]:
    item = session.client("dynamodb").get_item(TableName="functions", Key={"id": {"S": function_id}})["Item"]
    return {k: next(iter(v.values())) for k, v in item.items()}


@dataclass(frozen=True)
class Policies:
    role: dict[str, Any]
    boundary: dict[str, Any]

    def allows(self, request: Request) -> bool:
        return decide(self.role, self.boundary, request)


def worker_policies(session: Any, function_id: str) -> Policies:
    """The worker role's inline policy and its permissions boundary, as moto's IAM holds them."""
    return _role_policies(session, f"geobatch-dev-fn-{function_id}", "function-scope")


def data_policies(session: Any, function_id: str) -> Policies:
    """The data role's (what the job's code runs with): its inline policy and the data boundary."""
    return _role_policies(session, f"geobatch-dev-data-{function_id}", "function-data")


def _role_policies(session: Any, name: str, policy: str) -> Policies:
    iam = session.client("iam")
    role = iam.get_role(RoleName=name)["Role"]
    inline = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
    arn = role["PermissionsBoundary"]["PermissionsBoundaryArn"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    boundary = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    as_dict = lambda d: d if isinstance(d, dict) else json.loads(d)  # noqa: E731
    return Policies(as_dict(inline), as_dict(boundary))


def queue_arn(queue_url: str) -> str:
    account, name = queue_url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{REGION}:{account}:{name}"


def own_state_requests(function: dict[str, Any], tables: dict[str, str]) -> list[Request]:
    """What the worker itself does for one job of this Function (geobatch_worker, layout)."""
    fid, job_key = function["id"], "000001"
    objects = f"arn:aws:s3:::{STATE_BUCKET}"
    own = {"dynamodb:LeadingKeys": [fid]}
    return [
        Request("s3:GetObject", f"{objects}/{layout.bundle_key(fid)}"),
        Request("s3:GetObject", f"{objects}/{layout.args_key(fid, job_key)}"),
        Request("s3:PutObject", f"{objects}/{layout.result_key(fid, job_key)}"),
        Request("s3:PutObject", f"{objects}/{layout.log_key(fid, job_key, 0, 1)}"),
        *(Request(a, queue_arn(function["queue_url"])) for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage")),
        Request("sqs:ChangeMessageVisibility", queue_arn(function["queue_url"])),
        Request("dynamodb:GetItem", tables["functions"], own),
        Request("dynamodb:UpdateItem", tables["jobs"], own),
        Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": layout.WORKER_METRICS_NAMESPACE}),
    ]


def table_arns(session: Any) -> dict[str, str]:
    dynamodb = session.client("dynamodb")
    return {n: dynamodb.describe_table(TableName=n)["Table"]["TableArn"] for n in ("functions", "jobs")}


# --------------------------------------------------------------------------- the tests


def test_every_request_of_the_tile_job_is_allowed(tile_runs: TileRuns, stack: Any) -> None:
    access = demo_data_access(tile_runs.plan).model_dump()
    function = ready_function(stack, "kmeans", access)
    assert function["data_access"] == access  # stored and returned as declared
    policies, data = worker_policies(stack, function["id"]), data_policies(stack, function["id"])
    tile = tile_runs.plan.tile_keys[0]
    signed = [c for c in tile_runs.demo_layout + tile_runs.archive_layout if c.signed]
    wanted = {
        "model": [c for c in signed if c.uri == tile_runs.plan.model_uri and c.method == "GET"],
        # The tile's entry of the per-tile scene index (``items_uri`` is its template).
        "STAC items": [c for c in signed if c.uri == tile_runs.plan.items_uri.format(tile_id=tile_id(tile))],
        "imagery COGs": [
            c for c in signed if c.bucket == USER_BUCKET and c.key.endswith(("B04.tif", "B08.tif"))
        ],
        "product COG": [c for c in signed if c.method == "PUT" and c.key.endswith(".tif")],
        "product STAC item": [c for c in signed if c.method == "PUT" and c.key.endswith(".json")],
    }
    assert all(wanted.values()), {k: len(v) for k, v in wanted.items()}  # the job made each of them
    # The job's code reads and writes with the data role; the worker parent does the rest with its own.
    denied = [str(c.iam()) for c in signed if not data.allows(c.iam())]
    assert denied == []
    assert all(c.key.startswith(f"products/{PRODUCT}/") for c in signed if c.method == "PUT")
    own_state = own_state_requests(function, table_arns(stack))
    assert [str(r) for r in own_state if not policies.allows(r)] == []
    assert [str(r) for r in own_state if data.allows(r)] == []  # none of it is the job code's
    assert [str(c.iam()) for c in signed if policies.allows(c.iam())] == []  # nor the data the parent's


def test_public_archive_reads_go_unsigned(tile_runs: TileRuns) -> None:
    archive = [c for c in tile_runs.archive_layout if c.bucket == PUBLIC]
    assert any(c.key.endswith("B04.tif") for c in archive)  # the imagery came from the archive ...
    assert not [c.uri for c in archive if c.signed]  # ... without the worker's credentials
    assert all(c.signed for c in tile_runs.archive_layout if c.bucket == USER_BUCKET)


def test_other_functions_state_and_undeclared_data_are_denied(tile_runs: TileRuns, stack: Any) -> None:
    access = demo_data_access(tile_runs.plan).model_dump()
    mine = ready_function(stack, "kmeans", access)
    other = ready_function(stack, "other", {"read": [f"s3://{USER_BUCKET}/private/*"]})
    policies, data = worker_policies(stack, mine["id"]), data_policies(stack, mine["id"])
    state = f"arn:aws:s3:::{STATE_BUCKET}"
    refused = [
        Request("s3:GetObject", f"{state}/{layout.bundle_key(other['id'])}"),
        Request("s3:GetObject", f"{state}/{layout.args_key(other['id'], '000001')}"),
        Request("s3:PutObject", f"{state}/{layout.result_key(other['id'], '000001')}"),
        Request("sqs:ReceiveMessage", queue_arn(other["queue_url"])),
        Request("dynamodb:UpdateItem", table_arns(stack)["jobs"], {"dynamodb:LeadingKeys": [other["id"]]}),
        Request("s3:GetObject", "arn:aws:s3:::another-bucket/data.tif"),  # outside any declaration
        Request("s3:GetObject", f"arn:aws:s3:::{USER_BUCKET}/private/secret.json"),  # the other's data
        Request("s3:PutObject", f"arn:aws:s3:::{USER_BUCKET}/models/{PRODUCT}/kmeans.json"),  # read-only
        Request("s3:PutObject", f"arn:aws:s3:::{USER_BUCKET}/products/other-product/x.tif"),
        Request("s3:ListBucket", f"arn:aws:s3:::{USER_BUCKET}"),  # the whole bucket: no prefix
        Request("s3:ListBucket", f"arn:aws:s3:::{USER_BUCKET}", {"s3:prefix": "private/"}),
        Request("s3:DeleteObject", f"arn:aws:s3:::{USER_BUCKET}/products/{PRODUCT}/x.tif"),
    ]
    assert [str(r) for r in refused if policies.allows(r) or data.allows(r)] == []
    listing = Request(
        "s3:ListBucket", f"arn:aws:s3:::{USER_BUCKET}", {"s3:prefix": f"models/{PRODUCT}/kmeans.json"}
    )
    assert data.allows(listing)  # a missing model is a 404, not a 403


def test_both_the_role_and_the_boundary_must_allow(tile_runs: TileRuns, stack: Any, monkeypatch: Any) -> None:
    mine = ready_function(stack, "kmeans", demo_data_access(tile_runs.plan).model_dump())
    policies = data_policies(stack, mine["id"])
    # The boundary allows the whole user bucket; the role only what the Function declared.
    private = Request("s3:GetObject", f"arn:aws:s3:::{USER_BUCKET}/private/secret.json")
    assert evaluate(policies.boundary, private) == PermissionResult.PERMITTED
    assert evaluate(policies.role, private) == PermissionResult.NEUTRAL and not policies.allows(private)
    # A Function saved while the operator allowed more keeps its role; the narrowed boundary wins.
    monkeypatch.setenv(
        env.DATA_ACCESS, json.dumps({**BOUND, "read": [*BOUND["read"], "s3://another-bucket/*"]})
    )
    api_context.configure(None)
    older = ready_function(stack, "older", {"read": ["s3://another-bucket/*"]})
    policies = data_policies(stack, older["id"])
    elsewhere = Request("s3:GetObject", "arn:aws:s3:::another-bucket/data.tif")
    assert evaluate(policies.role, elsewhere) == PermissionResult.PERMITTED
    assert evaluate(policies.boundary, elsewhere) == PermissionResult.NEUTRAL and not policies.allows(
        elsewhere
    )


def test_a_declaration_outside_the_bound_is_refused_when_saved(tile_runs: TileRuns, stack: Any) -> None:
    sqs = stack.client("sqs")
    status, body = call_api(
        "POST",
        "/functions",
        body={"name": "greedy", "data_access": {"write": [f"s3://{USER_BUCKET}/models/*"]}},
    )
    assert status == 422 and body["code"] == "validation_error"
    assert body["errors"][0]["loc"] == "data_access.write.0"
    assert (
        f"s3://{USER_BUCKET}/models/*" in body["message"]
        and f"s3://{USER_BUCKET}/products/*" in body["message"]
    )
    assert "cdk.json" in body["message"]
    assert sqs.list_queues().get("QueueUrls", []) == []  # nothing was created
    # PATCH: outside → 422 and the role unchanged; inside → the role's policy follows.
    function = ready_function(stack, "kmeans", demo_data_access(tile_runs.plan).model_dump())
    before = data_policies(stack, function["id"])
    status, body = call_api(
        "PATCH", f"/functions/{function['id']}", body={"data_access": {"read": ["s3://another-bucket/*"]}}
    )
    assert status == 422 and body["errors"][0]["loc"] == "data_access.read.0", body
    assert data_policies(stack, function["id"]) == before
    v2 = Request("s3:PutObject", f"arn:aws:s3:::{USER_BUCKET}/products/landcover-v2/tile.tif")
    assert not before.allows(v2)
    widened = demo_data_access(tile_runs.plan).model_copy(
        update={"write": [f"s3://{USER_BUCKET}/products/landcover-v2/*"]}
    )
    status, body = call_api(
        "PATCH", f"/functions/{function['id']}", body={"data_access": widened.model_dump()}
    )
    assert status == 200 and body["data_access"]["write"] == [f"s3://{USER_BUCKET}/products/landcover-v2/*"]
    after = data_policies(stack, function["id"])
    assert after.allows(v2)
    assert not after.allows(
        Request("s3:PutObject", f"arn:aws:s3:::{USER_BUCKET}/products/{PRODUCT}/tile.tif")
    )
