"""A Function's data_access through the SDK against local mode: declared, stored, returned, changed,
shown by the CLI, refused outside the stack's bound, and told to the job's code."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

import geobatch as gb
from geobatch.cli import main
from geobatch.wire.data_access import Bound

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]

ARCHIVE = "s3://sentinel-cogs/*"
DECLARED = gb.S3Access(
    read=["s3://my-landcover/models/kmeans.json", "s3://my-landcover/stac/"],
    write=["s3://my-landcover/products/landcover-v1/*"],
    public=[ARCHIVE],
)


def how_job_code_reads(uris):
    """What a job sees: the worker's list of unsigned locations and the GDAL options per URI."""
    import os

    from geobatch.data_access import gdal_options

    return {"unsigned": os.environ.get("GEOBATCH_UNSIGNED_S3"), "gdal": {u: gdal_options(u) for u in uris}}


@pytest.fixture
def saved(local_api: gb.Client) -> Iterator[gb.Function]:
    fn = gb.Function(
        how_job_code_reads, name=f"reads-{uuid.uuid4().hex[:8]}", data_access=DECLARED, client=local_api
    )
    fn.save()
    yield fn
    with contextlib.suppress(gb.GeoBatchError):
        fn.delete(delete_results=True)


@contextlib.contextmanager
def stack_bound(local_stack: Any, bound: dict[str, list[str]]) -> Iterator[None]:
    """Local mode configured like a deployed stack whose operator allows ``bound``."""
    services = local_stack.services
    before = services.settings
    services.settings = dataclasses.replace(before, data_bound=Bound.from_json(json.dumps(bound)))
    try:
        yield
    finally:
        services.settings = before


def test_the_declaration_round_trips_and_patch_replaces_it(saved: gb.Function, local_api: gb.Client) -> None:
    got = gb.Function.get(saved.id, client=local_api)
    assert got.data_access == DECLARED
    # In canonical spelling: a folder ("stac/") is everything under it; a key is that one object.
    assert got.data_access.read == ["s3://my-landcover/models/kmeans.json", "s3://my-landcover/stac/*"]
    got.data_access = {"read": ["s3://my-landcover"], "write": []}
    got.save()
    again = gb.Function.get(saved.id, client=local_api)
    assert again.data_access == gb.S3Access(read=["s3://my-landcover/*"])  # replaced as a whole
    shown = CliRunner().invoke(main, ["--api-url", local_api.api_url, "functions", "get", saved.id])
    assert shown.exit_code == 0, shown.output
    assert "data read:             s3://my-landcover/*" in shown.output and "data write" not in shown.output


def test_the_cli_shows_what_a_function_may_touch(saved: gb.Function, local_api: gb.Client) -> None:
    shown = CliRunner().invoke(main, ["--api-url", local_api.api_url, "functions", "get", saved.id])
    assert shown.exit_code == 0, shown.output
    assert "data write:            s3://my-landcover/products/landcover-v1/*" in shown.output
    assert f"data public:           {ARCHIVE} (read unsigned)" in shown.output
    as_json = CliRunner().invoke(
        main, ["--api-url", local_api.api_url, "--json", "functions", "get", saved.id]
    )
    assert json.loads(as_json.output)["data_access"] == DECLARED.model_dump()


def test_job_code_reads_public_locations_unsigned(saved: gb.Function) -> None:
    inside, own = "s3://sentinel-cogs/sentinel-s2-l2a-cogs/18/T/XP/B04.tif", "s3://my-landcover/stac/x.json"
    job = saved(["/vsis3/sentinel-cogs/a/b.tif", inside, own])
    job.wait_for_completion()
    seen = job.result()
    assert seen["unsigned"] == ARCHIVE
    assert seen["gdal"] == {
        "/vsis3/sentinel-cogs/a/b.tif": {"AWS_NO_SIGN_REQUEST": "YES"},
        inside: {"AWS_NO_SIGN_REQUEST": "YES"},
        own: {},  # the job's own bucket is read with the worker's credentials
    }


def test_outside_the_bound_is_a_422_at_save_time(
    saved: gb.Function, local_api: gb.Client, local_stack: Any
) -> None:
    bound = {"read": ["s3://my-landcover/*"], "write": ["s3://my-landcover/products/*"]}
    name = f"greedy-{uuid.uuid4().hex[:8]}"
    with stack_bound(local_stack, bound):
        greedy = gb.Function(
            how_job_code_reads, name=name, data_access={"write": ["s3://someone-else/*"]}, client=local_api
        )
        with pytest.raises(gb.ValidationError) as refused:
            greedy.save()
        assert refused.value.errors == [
            {
                "loc": "data_access.write.0",
                "msg": "s3://someone-else/* is outside what this stack lets Functions write: "
                "s3://my-landcover/products/*",
            }
        ]
        assert "cdk.json" in refused.value.message
        assert not gb.Function.search(local_api).filter(gb.Function.name == name).collect()  # nothing created
        # The saved Function cannot widen itself either, and keeps what it had.
        saved.data_access = gb.S3Access(read=["s3://someone-else/*"])
        with pytest.raises(gb.ValidationError, match=r"data_access.read.0: s3://someone-else/\* is outside"):
            saved.save()
        assert gb.Function.get(saved.id, client=local_api).data_access == DECLARED
    # A malformed location is refused by the SDK before any request.
    with pytest.raises(gb.ValidationError, match="not an s3:// URI"):
        gb.Function(how_job_code_reads, name=name, data_access={"read": ["https://example.com/x"]})
