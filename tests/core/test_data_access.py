"""S3 location patterns: parsing, "inside the bound", and the environment value of public locations."""

from __future__ import annotations

import pydantic
import pytest

from geobatch.wire import data_access, errors
from geobatch.wire.models import FunctionCreate, S3Access
from geobatch_core.records import FunctionRecord

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("s3://bucket", "s3://bucket/*"),
        ("s3://bucket/", "s3://bucket/*"),
        ("s3://bucket/products/v1/", "s3://bucket/products/v1/*"),
        ("s3://bucket/products/v1*", "s3://bucket/products/v1*"),
        ("s3://bucket/models/kmeans.json", "s3://bucket/models/kmeans.json"),
    ],
)
def test_canonical_spelling(given: str, canonical: str) -> None:
    assert data_access.normalise(given) == canonical


@pytest.mark.parametrize(
    ("inner", "outer", "inside"),
    [
        ("s3://bucket/products/v1/*", "s3://bucket/products/*", True),
        ("s3://bucket/products/v1/a.tif", "s3://bucket/products/*", True),
        ("s3://bucket/products-evil/*", "s3://bucket/products/*", False),  # a prefix is not a word
        ("s3://bucket/*", "s3://bucket/products/*", False),
        ("s3://bucket/models/kmeans.json", "s3://bucket/models/kmeans.json", True),
        ("s3://bucket/models/kmeans.json*", "s3://bucket/models/kmeans.json", False),  # more than one key
        ("s3://bucket2/products/*", "s3://bucket/*", False),
    ],
)
def test_inside_the_bound(inner: str, outer: str, inside: bool) -> None:
    assert data_access.parse(outer).covers(data_access.parse(inner)) is inside
    bound = data_access.Bound(read=(data_access.parse(outer),), write=())
    if inside:
        bound.check({"read": [inner]})
    else:
        with pytest.raises(errors.ValidationError, match=r"data_access.read.0"):
            bound.check({"read": [inner]})


def test_unbounded_unless_configured_and_an_empty_bound_allows_nothing() -> None:
    data_access.Bound.from_json(None).check({"read": ["s3://anything/*"], "write": ["s3://anything/*"]})
    empty = data_access.Bound.from_json('{"read": [], "write": []}')
    empty.check({"public": ["s3://sentinel-cogs/*"]})  # unsigned reads need (and get) no IAM grant
    with pytest.raises(errors.ValidationError, match="lets Functions write: nothing"):
        empty.check({"write": ["s3://bucket/x"]})


def test_public_locations_for_job_code() -> None:
    value = data_access.unsigned_value({"public": ["s3://sentinel-cogs", "s3://other-archive/l2a/"]})
    assert value == "s3://sentinel-cogs/* s3://other-archive/l2a/*"
    assert data_access.reads_unsigned("/vsis3/sentinel-cogs/a/b.tif", value)
    assert data_access.reads_unsigned("s3://other-archive/l2a/x.tif", value)
    assert not data_access.reads_unsigned("s3://other-archive/l1c/x.tif", value)
    assert not data_access.reads_unsigned("s3://sentinel-cogs/a.tif", "")


def test_declarations_that_cannot_become_a_role_policy_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="at most 20"):
        S3Access(read=[f"s3://bucket/{i}/*" for i in range(21)])
    with pytest.raises(pydantic.ValidationError, match="characters of IAM policy"):
        S3Access(read=[f"s3://bucket-{i}/{'k' * 300}/*" for i in range(20)])
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        FunctionCreate.model_validate({"name": "f", "data_access": {"delete": ["s3://bucket/*"]}})


def test_the_largest_declaration_fits_in_a_data_role_policy() -> None:
    """IAM refuses an inline role policy over 10,240 characters (whitespace not counted)."""
    from geobatch_core.adapters.worker_roles import WorkerRoles

    largest: dict[str, list[str]] = {"read": [], "write": []}
    for i in range(data_access.MAX_LOCATIONS):  # long distinct prefixes until the model refuses more
        for kind in ("read", "write"):
            candidate = {**largest, kind: [*largest[kind], f"s3://bucket-{kind}-{i:02d}/{'k' * 120}/*"]}
            try:
                S3Access.model_validate(candidate)
            except pydantic.ValidationError:
                continue
            largest = candidate
    roles = WorkerRoles(
        None,
        name_prefix="geobatch-prod",
        permissions_boundary_arn="arn:aws:iam::123456789012:policy/boundary",
        functions_table_arn="arn:aws:dynamodb:us-west-2:123456789012:table/GeoBatch-prod-StateFunctions-ABCDEFGHIJKL",
        jobs_table_arn="arn:aws:dynamodb:us-west-2:123456789012:table/GeoBatch-prod-StateJobs-ABCDEFGHIJKL",
        bucket="geobatch-prod-storagedata6bb23f4e-abcdefghijkl",
    )
    function = FunctionRecord(
        id="0123456789ab",
        status="ready",
        queue_url="https://sqs.us-west-2.amazonaws.com/123456789012/geobatch-prod-0123456789ab",
        data_access=largest,
    )
    # The declaration is the data role's policy (with its denials); the worker role names none of it.
    size = data_access.policy_chars([roles.data_policy(function)])
    assert len(largest["read"]) + len(largest["write"]) > 10
    assert size <= 10_240, size
    assert data_access.policy_chars([roles.policy(function)]) <= 10_240
