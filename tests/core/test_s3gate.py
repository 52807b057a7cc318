"""The local S3 gate's rules: what a Function's declared data_access lets its jobs do, as its worker
role's policy would in AWS (data_access.statements), and never the control plane's own objects."""

from __future__ import annotations

import pytest

from geobatch_worker.s3gate import Rules, split_path

pytestmark = pytest.mark.unit

ACCESS = {
    "read": ["s3://data/models/kmeans.json", "s3://data/stac/*"],
    "write": ["s3://geobatch-local/products/landcover/*"],
    "public": ["s3://sentinel-cogs/*"],
}


@pytest.fixture
def rules() -> Rules:
    return Rules(ACCESS, "geobatch-local")


def allows(rules: Rules, method: str, path: str) -> bool:
    return rules.allows(method, *split_path(path))


def test_reads_only_the_declared_objects(rules: Rules) -> None:
    assert allows(rules, "GET", "/data/models/kmeans.json")
    assert allows(rules, "HEAD", "/data/stac/items/a.json")
    assert allows(rules, "GET", "/sentinel-cogs/18/T/XP/B04.tif")  # public archives too
    assert not allows(rules, "GET", "/data/models/other.json")
    assert not allows(rules, "GET", "/data/stac%2F..%2Fsecret")  # dot segments are refused outright
    assert not allows(rules, "GET", "/data/models/kmeans.json?acl")  # sub-resources are not reads


def test_lists_only_under_readable_prefixes(rules: Rules) -> None:
    assert allows(rules, "GET", "/data?list-type=2&prefix=stac/items/")
    assert allows(rules, "GET", "/data?list-type=2&prefix=models/kmeans.json")
    assert not allows(rules, "GET", "/data?list-type=2&prefix=")
    assert not allows(rules, "GET", "/data?list-type=2&prefix=models/")
    assert not allows(rules, "GET", "/data?policy")
    assert not allows(rules, "GET", "/")  # ListBuckets


def test_writes_only_the_declared_prefix_with_multipart_uploads(rules: Rules) -> None:
    product = "/geobatch-local/products/landcover/tiles/a.tif"
    assert allows(rules, "PUT", product)
    assert allows(rules, "POST", product + "?uploads")
    assert allows(rules, "PUT", product + "?partNumber=1&uploadId=u")
    assert allows(rules, "POST", product + "?uploadId=u")
    assert allows(rules, "DELETE", product + "?uploadId=u")  # AbortMultipartUpload
    assert not allows(rules, "DELETE", product)  # DeleteObject is not a write action
    assert not allows(rules, "PUT", "/geobatch-local/products/other/a.tif")
    assert not allows(rules, "PUT", "/data/stac/items/a.json")  # readable is not writable


def test_the_control_planes_objects_are_refused_whatever_is_declared() -> None:
    everything = Rules(
        {"read": ["s3://geobatch-local/*"], "write": ["s3://geobatch-local/*"]}, "geobatch-local"
    )
    for key in ("bundles/fn.zip", "args/fn/j.json", "results/fn/j", "logs/fn/j/0.1.log", "builds/fn.log"):
        assert not allows(everything, "GET", f"/geobatch-local/{key}")
        assert not allows(everything, "PUT", f"/geobatch-local/{key}")
    assert allows(everything, "PUT", "/geobatch-local/products/x.tif")
    nothing = Rules(None, "geobatch-local")
    assert not allows(nothing, "GET", "/data/models/kmeans.json")
