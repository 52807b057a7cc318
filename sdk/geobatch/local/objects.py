"""Local mode's S3: moto's S3 server in its own process, every object written through to files.

``python -m geobatch.local.objects --root DIR --port N`` serves S3 on 127.0.0.1 (results, logs,
bundles, and the products user code writes with boto3 or GDAL). moto keeps objects in memory;
here each request that creates or deletes an object or bucket is written to ``DIR`` before its
answer leaves, and the next start loads ``DIR`` back. So an object whose PUT was answered
survives ``local down``/``up`` and ``kill -9``.

Files: ``DIR/<bucket>/<sha256 of key>[:2]/<sha256 of key>``, one JSON header line (key name and
metadata) then the bytes; written to a temporary name and renamed, so a crash never leaves half
an object.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REGION = "us-east-1"
_PRCTL: Any = None
if sys.platform.startswith("linux"):  # resolved here, never between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
_touched = threading.local()


def _object_path(root: Path, bucket: str, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return root / bucket / digest[:2] / digest


def _mark(kind: str, backend: Any, bucket: str, key: str = "") -> None:
    pending = getattr(_touched, "pending", None)
    if pending is not None:
        pending.add((kind, id(backend), bucket, key))
        _touched.backends[id(backend)] = backend


def install_hooks() -> None:
    """Note which buckets and objects a request changes (the S3 backend's few mutating methods)."""
    from moto.s3.models import S3Backend

    def hook(name: str, kind: str) -> None:
        original = getattr(S3Backend, name)

        def wrapper(self: Any, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
            result = original(self, bucket_name, *args, **kwargs)
            key = kwargs.get("key_name", args[0] if args and isinstance(args[0], str) else "")
            _mark(kind, self, bucket_name, key)
            return result

        setattr(S3Backend, name, wrapper)

    hook("put_object", "object")
    hook("delete_object", "object")
    hook("create_bucket", "bucket")
    hook("delete_bucket", "bucket")


def _persist(root: Path, backend: Any, kind: str, bucket_name: str, key_name: str) -> None:
    bucket = backend.buckets.get(bucket_name)
    if kind == "bucket":
        if bucket is None:
            with contextlib.suppress(OSError):
                (root / bucket_name).rmdir()  # only an empty bucket can be deleted
        else:
            (root / bucket_name).mkdir(parents=True, exist_ok=True)
        return
    path = _object_path(root, bucket_name, key_name)
    key = bucket.keys.get(key_name) if bucket is not None else None
    if key is None or not hasattr(key, "value"):  # deleted (or a delete marker)
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp")
    header = json.dumps({"key": key_name, "metadata": dict(key.metadata)}).encode()
    with open(tmp, "wb") as out:
        out.write(header + b"\n")
        out.write(key.value)
        out.flush()
        os.fsync(out.fileno())  # on disk before the PUT is answered, even against a power loss
    os.replace(tmp, path)


class WriteThrough:
    """WSGI middleware: after moto handled a request, write what it changed, then answer."""

    def __init__(self, app: Callable[..., Iterable[bytes]], root: Path):
        self._app = app
        self._root = root

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        _touched.pending, _touched.backends = set(), {}
        try:
            result = self._app(environ, start_response)
            for kind, backend_id, bucket, key in sorted(_touched.pending):
                _persist(self._root, _touched.backends[backend_id], kind, bucket, key)
            return result
        finally:
            _touched.pending = None


def restore(root: Path) -> int:
    """Load every stored bucket and object into moto's S3 backend; returns the object count."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    count = 0
    for bucket_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []:
        if bucket_dir.name not in backend.buckets:
            backend.create_bucket(bucket_dir.name, REGION)
        for path in bucket_dir.glob("*/*"):
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a write the crash interrupted: its PUT was never answered
                continue
            with open(path, "rb") as stored:
                header = json.loads(stored.readline())
                data = stored.read()
            key = backend.put_object(bucket_dir.name, header["key"], data, disable_notification=True)
            key.set_metadata(header.get("metadata") or {})
            count += 1
    return count


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Linux: end this process when the daemon that started it dies (even by ``kill -9``), so a
    crashed daemon leaves no S3 server or worker behind holding state a new daemon cannot see.
    Also usable as a ``preexec_fn`` (it then runs in the child between fork and exec)."""
    if _PRCTL is not None:
        _PRCTL(1, sig)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(1)  # the daemon died before the signal was armed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GeoBatch local mode's S3 (moto, written to files)")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args(argv)
    if args.parent_pid:
        die_with_parent(args.parent_pid)
    from geobatch_worker.contain import undumpable

    undumpable()  # every object is in this process's memory: not readable through /proc by jobs
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(args.port))
    args.root.mkdir(parents=True, exist_ok=True)
    install_hooks()
    print(f"restored {restore(args.root)} objects from {args.root}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = WriteThrough(DomainDispatcherApplication(create_backend_app), args.root)
    run_simple("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
