"""3. The data a Function declares, under enforced IAM: its tile job reads the user's bucket and writes
a product with the data role the control plane made (the worker assumes it for the job's code);
anything outside the declaration is denied by that role, anything outside the operator's bound by the
stack's data boundary, and a declaration outside the bound is refused at save time."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.rehearsal import flow, jobs
from tests.rehearsal.synth import USER_BUCKET

# The first test of a session synthesizes (with bundling) and deploys: allow for a loaded machine.
pytestmark = [pytest.mark.rehearsal, pytest.mark.timeout(900)]

DENIED = ("AccessDenied", "AccessDeniedException")
DECLARED = {"read": [f"s3://{USER_BUCKET}/inputs/*"], "write": [f"s3://{USER_BUCKET}/products/v1/*"]}


@pytest.fixture(scope="module")
def tile_run(cloud, stack, lambdas):
    admin = cloud.client("s3")
    admin.create_bucket(Bucket=USER_BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    admin.put_object(Bucket=USER_BUCKET, Key="inputs/tile-7.txt", Body=b"red green nir")
    admin.put_object(Bucket=USER_BUCKET, Key="secret/notes.txt", Body=b"not declared")
    one = flow.run_one_job(
        cloud,
        stack,
        lambdas,
        "rehearsal-tiles",
        code=jobs.upper_tile,
        args=["tile-7.txt"],
        data_access=DECLARED,
    )
    return one.function, one.submitted, one.definition, one.run


def test_the_tile_job_reads_the_users_bucket_and_writes_its_product(tile_run, cloud, lambdas):
    function, submitted, definition, run = tile_run
    status, job = flow.api_call(lambdas.api, "GET", f"/jobs/{submitted['id']}")
    assert status == 200 and job["status"] == "success", (job, run.output[-3000:])
    product = cloud.client("s3").get_object(Bucket=USER_BUCKET, Key="products/v1/tile-7.txt")["Body"].read()
    assert product == b"RED GREEN NIR"
    # The job's code reads and writes with its Function's data role, which the worker assumed for it.
    role = flow.data_role(definition)
    data_requests = [d for d in cloud.decisions() if d["principal"] == role and USER_BUCKET in d["resource"]]
    assert {d["action"] for d in data_requests} >= {"s3:GetObject", "s3:PutObject"}
    assert all(d["allowed"] for d in data_requests), data_requests


def test_outside_the_declaration_the_role_denies_and_outside_the_bound_the_boundary(tile_run, cloud):
    _, _, definition, _ = tile_run
    s3 = cloud.client("s3", cloud.assume(flow.data_role(definition), "probe"))
    attempts = {
        "an undeclared key of the bound bucket": lambda: s3.get_object(
            Bucket=USER_BUCKET, Key="secret/notes.txt"
        ),
        "a write outside the declared prefix": lambda: s3.put_object(
            Bucket=USER_BUCKET, Key="products/v2/forged.txt", Body=b"x"
        ),
        "a bucket outside the bound": lambda: s3.get_object(Bucket="sentinel-cogs", Key="x"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(ClientError) as denied:
            attempt()
        assert denied.value.response["Error"]["Code"] in DENIED, what
    reasons = {
        d["resource"].split(":::")[1]: d["reason"]
        for d in cloud.decisions()
        if d["principal"] == flow.data_role(definition) and not d["allowed"]
    }
    assert reasons[f"{USER_BUCKET}/secret/notes.txt"] == "no identity policy allows it"
    assert reasons["sentinel-cogs/x"] == "not allowed by the permissions boundary"


def test_a_declaration_outside_the_operators_bound_is_refused_at_save_time(lambdas):
    status, body = flow.api_call(
        lambdas.api,
        "POST",
        "/functions",
        body={"name": "rehearsal-greedy", "data_access": {"read": ["s3://someone-elses-bucket/*"]}},
    )
    assert 400 <= status < 500, body
    assert "someone-elses-bucket" in body["message"], body
