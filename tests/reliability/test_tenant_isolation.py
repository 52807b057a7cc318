"""Tenant isolation through the real API handler: another principal gets 404 on everything of alice's
(exactly like a missing id, so ids cannot be probed), and its bulk operations change nothing of hers.
Plus the safety of presigned URLs and uploaded bundles."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from geobatch.wire import limits
from geobatch.wire.models import FunctionStatus
from geobatch_core.services.context import Settings

pytestmark = pytest.mark.reliability

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
ADMIN = "arn:aws:iam::123456789012:role/geobatch-admin"


def zip_of(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buf.getvalue()


GOOD = zip_of([("__gbentry__.py", b"def main(x):\n    return x\n")])


def create(api: Any, principal: str = ALICE, name: str = "alices") -> dict[str, Any]:
    status, body = api("POST", "/functions", body={"name": name}, principal=principal)
    assert status == 201, body
    return body


@pytest.fixture
def alice(api: Any) -> dict[str, Any]:
    """Alice's ready Function with three jobs: one pending, one failed, one succeeded."""
    svc = api.services
    created = create(api)
    fid = created["function"]["id"]
    svc.blobs.put(f"bundles/{fid}.zip", GOOD)
    svc.functions.update(fid, {"status": FunctionStatus.READY.value})  # the build is tested elsewhere
    status, page = api(
        "POST",
        "/jobs/bulk",
        body={"function_id": fid, "bulk_args": [[1], [2], [3]], "reference_id": "alice-1"},
        principal=ALICE,
    )
    assert status == 201, page
    ids = [j["id"] for j in page["data"]]
    keys = [i.rpartition("-")[2] for i in ids]
    svc.jobs.transition(fid, keys[1], changes={"status": "failure"}, expect={})
    svc.jobs.transition(fid, keys[2], changes={"status": "success", "result": b"3"}, expect={})
    return {"function_id": fid, "job_ids": ids, "upload_url": created["bundle_upload_url"]}


def snapshot(api: Any, function_id: str) -> list[dict[str, Any]]:
    """Every job item of the Function (whole items: a record's equality leaves its extra out)."""
    items, _ = api.services.jobs.query(function_id, start=None, limit=100, newest_first=False)
    return [i.to_item() for i in sorted(items, key=lambda i: i.job_key)]


def assert_not_found(status: int, body: Any, what: str) -> None:
    assert status == 404, f"{what}: {status} {body}"
    assert body["code"] == "not_found" and body["message"], what


def test_bob_gets_404_on_every_route_of_alices_function_and_jobs(api: Any, alice: dict[str, Any]) -> None:
    fid, jid = alice["function_id"], alice["job_ids"][0]
    before = snapshot(api, fid)
    function_before = api.services.functions.get(fid).to_item()
    routes: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/functions/{fid}", {}),
        ("PATCH", f"/functions/{fid}", {"body": {"maximum_concurrency": 1}}),
        ("PATCH", f"/functions/{fid}", {"body": {"status": "stopped"}}),
        ("DELETE", f"/functions/{fid}", {}),
        ("POST", f"/functions/{fid}/bundle", {}),
        ("GET", f"/functions/{fid}/log", {}),
        ("GET", "/jobs", {"query": {"function_id": fid}}),
        (
            "GET",
            "/jobs",
            {"query": {"filter": json.dumps([{"op": "eq", "name": "function_id", "val": fid}])}},
        ),
        ("POST", "/jobs/bulk", {"body": {"function_id": fid, "bulk_args": [[9]], "reference_id": "bob-1"}}),
        ("POST", "/jobs", {"body": {"function_id": fid, "args": [9]}}),
    ]
    for job_id in alice["job_ids"]:
        routes += [
            ("GET", f"/jobs/{job_id}", {}),
            ("PATCH", f"/jobs/{job_id}", {"body": {"tags": ["bob-was-here"]}}),
            ("DELETE", f"/jobs/{job_id}", {}),
            ("POST", f"/jobs/{job_id}/cancel", {}),
            ("POST", f"/jobs/{job_id}/rerun", {}),
            ("GET", f"/jobs/{job_id}/log", {}),
            ("GET", f"/jobs/{job_id}/result", {}),
        ]
    for method, path, kwargs in routes:
        status, body = api(method, path, principal=BOB, **kwargs)
        assert_not_found(status, body, f"{method} {path} {kwargs}")
        # A missing id answers exactly the same way, so a 404 reveals nothing about alice.
        ghost = path.replace(fid, "0123456789ab")
        status_ghost, _ = api(method, ghost, principal=BOB, **kwargs)
        assert status_ghost in (404, 422), (method, ghost)
    assert snapshot(api, fid) == before
    assert api.services.functions.get(fid).to_item() == function_before
    assert jid  # alice's jobs are still hers
    status, body = api("GET", f"/jobs/{jid}", principal=ALICE)
    assert status == 200 and body["tags"] in (None, [])


@pytest.mark.parametrize("operation", ["cancel", "rerun", "delete"])
def test_bobs_bulk_operations_change_nothing_of_alices(
    api: Any, alice: dict[str, Any], operation: str
) -> None:
    fid = alice["function_id"]
    before = snapshot(api, fid)
    by_filter = {"filter": [{"op": "eq", "name": "function_id", "val": fid}]}
    by_ids = {"job_ids": alice["job_ids"]}
    for query in (by_filter, by_ids, {"function_id": fid}, {**by_ids, "function_id": fid}):
        status, body = api("POST", f"/jobs/{operation}", body=query, principal=BOB)
        # Either "no such thing" or "nothing of yours matched": never a change.
        assert status == 404 or (status == 200 and body["job_ids"] == []), (query, status, body)
    assert snapshot(api, fid) == before


def test_a_cursor_of_alice_is_useless_to_bob(api: Any, alice: dict[str, Any]) -> None:
    status, page = api(
        "GET", "/jobs", query={"function_id": alice["function_id"], "page_size": 1}, principal=ALICE
    )
    assert status == 200 and len(page["data"]) == 1 and page["meta"]["page_cursor"]
    cursor = page["meta"]["page_cursor"]
    status, body = api("GET", "/jobs", query={"page_cursor": cursor}, principal=BOB)
    assert_not_found(status, body, "alice's job cursor")
    status, body = api(
        "POST",
        "/jobs/cancel",
        body={"page_cursor": cursor, "function_id": alice["function_id"]},
        principal=BOB,
    )
    assert status == 404
    # A Function-list cursor carries only the query: reused by bob it lists bob's Functions, not alice's.
    create(api, ALICE, "alices-second")
    status, fpage = api("GET", "/functions", query={"page_size": 1}, principal=ALICE)
    assert status == 200 and fpage["meta"]["page_cursor"]
    status, body = api(
        "GET", "/functions", query={"page_cursor": fpage["meta"]["page_cursor"]}, principal=BOB
    )
    assert status == 200 and body["data"] == [], body


def test_function_lists_are_per_principal_and_admins_see_all(api: Any, alice: dict[str, Any]) -> None:
    create(api, BOB, "bobs")
    status, page = api("GET", "/functions", principal=BOB)
    assert status == 200 and [f["name"] for f in page["data"]] == ["bobs"]
    status, page = api("GET", "/jobs", principal=BOB)
    assert status == 200 and page["data"] == []

    api.services.settings = Settings(**{**api.services.settings.__dict__, "admins": frozenset({ADMIN})})
    status, page = api("GET", "/functions", principal=ADMIN)
    assert status == 200 and {f["name"] for f in page["data"]} == {"alices", "bobs"}
    status, body = api("GET", f"/jobs/{alice['job_ids'][0]}", principal=ADMIN)
    assert status == 200 and body["id"] == alice["job_ids"][0]
    status, body = api("GET", "/jobs", query={"function_id": alice["function_id"]}, principal=ADMIN)
    assert status == 200 and len(body["data"]) == 3


def test_presigned_urls_are_short_lived(api: Any, alice: dict[str, Any]) -> None:
    expires = parse_qs(urlsplit(alice["upload_url"]).query).get("X-Amz-Expires")
    assert expires and int(expires[0]) <= 900, alice["upload_url"]
    svc = api.services
    fid, key = alice["job_ids"][2].rpartition("-")[::2]
    svc.blobs.put(f"results/{fid}/{key}", b"x" * 10)
    svc.jobs.transition(fid, key, changes={"result": None, "result_key": f"results/{fid}/{key}"}, expect={})
    status, body = api("GET", f"/jobs/{alice['job_ids'][2]}/result", principal=ALICE)
    assert status == 200 and body["url"], body
    assert int(parse_qs(urlsplit(body["url"]).query)["X-Amz-Expires"][0]) <= 900


def _symlink_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("link.py")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (zip_of([("__gbentry__.py", b"x=1"), ("../evil.py", b"boom")]), "unsafe path"),
        (zip_of([("__gbentry__.py", b"x=1"), ("/etc/evil.py", b"boom")]), "unsafe path"),
        (zip_of([("__gbentry__.py", b"x=1"), ("a/../../evil.py", b"boom")]), "unsafe path"),
        (zip_of([("__gbentry__.py", b"x=1"), (_symlink_entry(), b"/etc/passwd")]), "symbolic link"),
        (b"this is not a zip file at all", "not a zip"),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink", "not-zip"],
)
def test_unsafe_bundles_are_refused_with_a_400(api: Any, data: bytes, fragment: str) -> None:
    fid = create(api)["function"]["id"]
    api.services.blobs.put(f"bundles/{fid}.zip", data)
    status, body = api("POST", f"/functions/{fid}/bundle", principal=ALICE)
    assert status == 400, body
    assert body["code"] == "bad_request" and fragment in body["message"], body
    assert api.services.functions.get(fid).status == "awaiting_bundle"  # nothing was built


def test_oversize_bundle_is_a_413(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_BUNDLE_BYTES", 1000)
    fid = create(api)["function"]["id"]
    api.services.blobs.put(f"bundles/{fid}.zip", zip_of([("__gbentry__.py", b"#" * 5000)]))
    status, body = api("POST", f"/functions/{fid}/bundle", principal=ALICE)
    assert status == 413 and body["code"] == "payload_too_large", body
    # and a missing upload is a 400 that says what to do
    fid = create(api, name="no-upload")["function"]["id"]
    status, body = api("POST", f"/functions/{fid}/bundle", principal=ALICE)
    assert status == 400 and "PUT the zip" in body["message"]
