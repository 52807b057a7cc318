"""User code contained in local mode (issue 15, item 7), through the real daemon and worker.

A job gets no way to the control plane's state: not local S3's address or keys (its S3 is a gate
that allows only the Function's declared locations), not the state file (covered), and it cannot
write into any environment code runs from (its own virtualenv, GeoBatch's installation). A local
build runs pip (and a requirement's setup.py) apart from the daemon, under the same seal.
"""

from __future__ import annotations

import contextlib
import json
import os
import site
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import geobatch as gb
from geobatch.local.builder import LocalImageBuilder
from geobatch_core import layout
from geobatch_core.records import FunctionRecord

pytestmark = [pytest.mark.local, pytest.mark.timeout(600)]
BUCKET = "geobatch-local"


def probe(state_path, other_bundle_key, product_key):
    """A hostile job: looks for the control plane's state, another Function's bundle, and tries to
    plant a .pth where other code would run it."""
    import contextlib
    import os
    import site
    import sys

    import boto3

    seen: dict[str, Any] = {
        "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "GEOBATCH_"))}
    }
    s3 = boto3.client("s3", region_name="us-east-1")
    for name, call in {
        "other_bundle": lambda: s3.get_object(Bucket="geobatch-local", Key=other_bundle_key)["Body"].read(),
        "overwrite_bundle": lambda: s3.put_object(Bucket="geobatch-local", Key=other_bundle_key, Body=b"x"),
        "list_state": lambda: s3.list_objects_v2(Bucket="geobatch-local", Prefix="args/"),
        "declared_write": lambda: s3.put_object(Bucket="geobatch-local", Key=product_key, Body=b"tile"),
        "declared_read": lambda: s3.get_object(Bucket="geobatch-local", Key=product_key)["Body"].read(),
    }.items():
        try:
            call()
            seen[name] = "allowed"
        except Exception as exc:
            seen[name] = getattr(exc, "response", {}).get("Error", {}).get("Code") or repr(exc)
    try:
        with open(state_path, "rb") as state:
            seen["state_bytes"] = len(state.read())
    except OSError as exc:
        seen["state_bytes"] = repr(exc)
    # Ways around the covered state file: the worker's environment, the fds other processes hold.
    try:
        with open(f"/proc/{os.getppid()}/environ", "rb") as environ:
            seen["parent_environ"] = "read" if b"GEOBATCH_LOCAL_STATE" in environ.read() else "no state"
    except OSError as exc:
        seen["parent_environ"] = exc.errno
    seen["state_fds"] = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if "state.sqlite" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                        seen["state_fds"].append(f"/proc/{pid}/fd/{fd}")
    seen["pth"] = {}
    for where in {sys.prefix, *site.getsitepackages(), *sys.path[1:]}:
        if os.path.isdir(where):
            planted = os.path.join(where, "zz-planted.pth")
            try:
                with open(planted, "w") as handle:
                    handle.write("import os\n")
                os.remove(planted)  # a failing run of this test leaves nothing behind
                seen["pth"][where] = "written"
            except OSError as exc:
                seen["pth"][where] = exc.errno
    return seen


def victim():
    return 1


@pytest.fixture
def other(local_api: gb.Client) -> Iterator[gb.Function]:
    """Another principal's Function, whose state the probe goes after."""
    fn = gb.Function(victim, name=f"victim-{uuid.uuid4().hex[:8]}", client=local_api)
    fn.save()
    yield fn
    with contextlib.suppress(gb.GeoBatchError):
        fn.delete(delete_results=True)


def test_a_job_reaches_neither_the_state_nor_an_environment(
    local_stack: Any, local_api: gb.Client, other: gb.Function
) -> None:
    product_key = f"products/contained-{uuid.uuid4().hex[:6]}/tile.tif"
    fn = gb.Function(
        probe,
        name=f"probe-{uuid.uuid4().hex[:8]}",
        data_access=gb.S3Access(
            write=[f"s3://{BUCKET}/products/contained-*"], read=[f"s3://{BUCKET}/products/*"]
        ),
        client=local_api,
    )
    fn.save()
    try:
        job = fn(str(local_stack.state_path), layout.bundle_key(other.id), product_key)
        job.wait_for_completion()
        seen = job.result()
    finally:
        with contextlib.suppress(gb.GeoBatchError):
            fn.delete(delete_results=True)
    # No credentials for the control plane: not local S3's address, not the state file's path.
    assert "GEOBATCH_LOCAL_STATE" not in seen["env"] and "GEOBATCH_BUCKET" not in seen["env"]
    assert seen["env"]["AWS_ENDPOINT_URL"] != local_stack.moto_url
    assert seen["other_bundle"] == "AccessDenied"
    assert seen["overwrite_bundle"] == "AccessDenied"
    assert seen["list_state"] == "AccessDenied"
    # What the Function declared works through the same gate.
    assert seen["declared_write"] == "allowed" and seen["declared_read"] == "allowed"
    assert local_stack.services.blobs.get(product_key) == b"tile"
    assert seen["state_bytes"] == 0  # covered: the job sees an empty file
    assert seen["parent_environ"] == 13  # EACCES: the worker parent is not dumpable
    assert seen["state_fds"] == []  # nor are the daemon and the other workers that hold it open
    # Every place the job's Python loads code from refused the .pth (EROFS), and none exists.
    assert seen["pth"] and set(seen["pth"].values()) == {30}, seen["pth"]
    for where in seen["pth"]:
        assert not os.path.exists(os.path.join(where, "zz-planted.pth"))
    assert local_stack.services.blobs.get(layout.bundle_key(other.id)) != b"x"


SETUP_PY = """
import json, os, site, sys
report = {{"pid": os.getpid(), "env": sorted(k for k in os.environ if k.startswith(("AWS_", "GEOBATCH_")))}}
try:
    report["state"] = len(open({state!r}, "rb").read())
except OSError as exc:
    report["state"] = repr(exc)
report["pth"] = {{}}
for where in {base!r}:
    try:
        open(os.path.join(where, "zz-setup.pth"), "w").write("import os\\n")
        os.remove(os.path.join(where, "zz-setup.pth"))  # a failing run leaves nothing behind
        report["pth"][where] = "written"
    except OSError as exc:
        report["pth"][where] = exc.errno
open({out!r}, "w").write(json.dumps(report))
raise SystemExit("the hostile setup.py stops the build here")  # (no wheel package offline)
"""


def test_a_file_requirement_builds_apart_from_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    state = home / "state.sqlite"
    state.write_bytes(b"SQLite format 3\0 the daemon's state")
    # The daemon's own settings, which a build must not see.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "daemon-secret")
    monkeypatch.setenv("GEOBATCH_LOCAL_STATE", str(state))
    package, out = tmp_path / "pkg", tmp_path / "report.json"
    package.mkdir()
    base = [p for p in site.getsitepackages() if os.path.isdir(p)]
    (package / "setup.py").write_text(
        textwrap.dedent(SETUP_PY.format(state=str(state), base=base, out=str(out)))
    )
    builder = LocalImageBuilder(home, pip_args="--no-index --no-build-isolation")
    ok, log, reason = builder.build(
        FunctionRecord(
            id="fn-1",
            status="building",
            image=f"python{sys.version_info.major}.{sys.version_info.minor}",
            requirements=[f"hostile-build @ file://{package}"],
        ),
        "hostile",
    )
    assert not ok and "pip could not install" in reason, log
    assert "hostile setup.py stops" in log  # it did run, as part of the build
    report = json.loads(out.read_text())
    assert report["pid"] != os.getpid()
    assert report["env"] == []  # no AWS or GeoBatch settings of the daemon
    assert report["state"] == 0  # the daemon's state is covered
    assert set(report["pth"].values()) == {30}, report["pth"]  # the installation is read-only
    for where in base:
        assert not os.path.exists(os.path.join(where, "zz-setup.pth"))
