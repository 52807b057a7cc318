"""S3 locations a Function's jobs may touch: patterns, the operator's bound and the IAM they become.

A location is an ``s3://`` URI pattern with a literal bucket and a literal key that may end with
``*``: ``s3://bucket/*`` (the whole bucket), ``s3://bucket/products/v1/*`` (a prefix) or
``s3://bucket/models/kmeans.json`` (one object). ``s3://bucket`` and a key ending in ``/`` are
prefixes too (canonical spelling: with the ``*``). Keeping wildcards to a trailing ``*`` makes
"is this location inside that one" exact, so the control plane can refuse a request outside the
stack's bound at save time instead of leaving it to an AccessDenied in a job log.

The same statements serve the Function's worker role (its declared locations) and the stack's
permissions boundary (the operator's bound); IAM allows a request only when both do.
Pure functions only: the wire model (``models.S3Access``), the services, the worker role adapter
and the CDK stack all use them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from geobatch.wire import errors

# S3 bucket naming rules (lowercase letters, digits, '.', '-'; 3-63 characters).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_LOCATIONS = 20  # per list (read, write, public): keeps the role policy under IAM's size limit
MAX_URI_CHARS = 512
READ_ACTIONS = ["s3:GetObject"]
LIST_ACTIONS = ["s3:ListBucket"]
WRITE_ACTIONS = ["s3:PutObject", "s3:AbortMultipartUpload"]
KINDS = ("read", "write", "public")


@dataclass(frozen=True)
class Location:
    """One parsed pattern: a bucket and a key, or a key prefix when ``prefix`` is true."""

    bucket: str
    key: str
    prefix: bool

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}{'*' if self.prefix else ''}"

    def covers(self, other: Location) -> bool:
        """Whether every object ``other`` names is one this location names."""
        if self.bucket != other.bucket:
            return False
        if self.prefix:
            return other.key.startswith(self.key)
        return not other.prefix and other.key == self.key

    def matches(self, bucket: str, key: str) -> bool:
        """Whether object ``key`` of ``bucket`` is inside this location."""
        return self.covers(Location(bucket, key, prefix=False))

    def object_arn(self, partition: str) -> str:
        return f"arn:{partition}:s3:::{self.bucket}/{self.key}{'*' if self.prefix else ''}"


def parse(uri: str) -> Location:
    """``s3://bucket[/key[*]]`` → Location; ``ValueError`` saying what is wrong otherwise."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI: write s3://bucket/prefix/* or s3://bucket/key")
    if len(uri) > MAX_URI_CHARS:
        raise ValueError(f"{uri[:40]!r}... is longer than {MAX_URI_CHARS} characters")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not _BUCKET_RE.match(bucket):
        raise ValueError(
            f"{uri!r}: {bucket!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.', '-'; "
            "no wildcards in the bucket)"
        )
    prefix = key == "" or key.endswith(("*", "/"))  # "s3://b/dir/" means everything under dir/
    key = key.removesuffix("*")
    if any(c in key for c in "*?") or "${" in key:
        raise ValueError(
            f"{uri!r}: only a trailing '*' is allowed (no '?', inner '*' or '${{...}}'): "
            "name a prefix as s3://bucket/prefix/*"
        )
    return Location(bucket, key, prefix)


def normalise(uri: str) -> str:
    """The canonical spelling of a pattern (``s3://b`` and ``s3://b/`` become ``s3://b/*``)."""
    return parse(uri).uri


def locations(uris: Iterable[str] | None) -> list[Location]:
    return [parse(u) for u in uris or ()]


def _outside(wanted: Sequence[str], allowed: Sequence[Location]) -> list[tuple[int, str]]:
    return [(i, uri) for i, uri in enumerate(wanted) if not any(a.covers(parse(uri)) for a in allowed)]


@dataclass(frozen=True)
class Bound:
    """What the stack's operator lets any Function declare (``cdk.json`` context ``data_access``).

    ``None`` lists mean "anything" (local mode); the deployed stack always sets both lists.
    Public (unsigned) reads need no IAM permission, so IAM cannot bound them and neither does this.
    """

    read: tuple[Location, ...] | None = None
    write: tuple[Location, ...] | None = None

    @classmethod
    def from_json(cls, text: str | None) -> Bound:
        """The bound from its environment value (``env.DATA_ACCESS``); unset means unbounded."""
        if not text:
            return cls()
        doc = json.loads(text)
        return cls(read=tuple(locations(doc.get("read"))), write=tuple(locations(doc.get("write"))))

    def describe(self, kind: str) -> str:
        allowed = self.read if kind == "read" else self.write
        if not allowed:
            return "nothing"
        return ", ".join(a.uri for a in allowed)

    def check(self, access: Mapping[str, Any] | None) -> None:
        """Refuse (``ValidationError``) any declared location outside the bound, naming each one."""
        problems: list[dict[str, str]] = []
        for kind, allowed in (("read", self.read), ("write", self.write)):
            if allowed is None:
                continue
            for index, uri in _outside(list((access or {}).get(kind) or ()), allowed):
                problems.append(
                    {
                        "loc": f"data_access.{kind}.{index}",
                        "msg": f"{uri} is outside what this stack lets Functions {kind}: "
                        f"{self.describe(kind)}",
                    }
                )
        if problems:
            summary = "; ".join(f"{p['loc']}: {p['msg']}" for p in problems[:5])
            raise errors.ValidationError(
                f"{summary}. The stack's operator sets the allowed locations in cdk.json "
                '(context \'data_access\': {"read": [...], "write": [...]}) and redeploys',
                problems,
            )


def statements(
    access: Mapping[str, Any] | None, partition: str, *, sid: str = "Data"
) -> list[dict[str, Any]]:
    """IAM statements allowing exactly the ``read`` and ``write`` locations of ``access``.

    Reads get ``s3:GetObject`` on the objects and ``s3:ListBucket`` on their bucket, limited by an
    ``s3:prefix`` condition unless the whole bucket is readable (so a missing key is a 404, not a
    403). Writes get ``s3:PutObject`` (which covers multipart uploads) and ``s3:AbortMultipartUpload``.
    """
    access = access or {}
    reads, writes = locations(access.get("read")), locations(access.get("write"))
    result: list[dict[str, Any]] = []
    if reads:
        result.append(_allow(f"{sid}Read", READ_ACTIONS, [r.object_arn(partition) for r in reads]))
        for index, (bucket, prefixes) in enumerate(_prefixes_by_bucket(reads).items()):
            listing = _allow(f"{sid}List{index}", LIST_ACTIONS, [f"arn:{partition}:s3:::{bucket}"])
            if prefixes is not None:
                listing["Condition"] = {"StringLike": {"s3:prefix": prefixes}}
            result.append(listing)
    if writes:
        result.append(_allow(f"{sid}Write", WRITE_ACTIONS, [w.object_arn(partition) for w in writes]))
    return result


# The control plane's prefixes in the stack's bucket (geobatch_core.layout, stacks/storage.py): never
# user code's to touch, whatever a Function declares or the operator's bound allows.
STATE_PREFIXES = ("bundles/", "builds/", "args/", "results/", "logs/")


def denials(state_bucket: str, partition: str) -> list[dict[str, Any]]:
    """What user code's credentials (a Function's data role, and the data boundary) never allow:
    anything that is not S3 (job state, queues, metrics the alarms read, STS, IAM) and the control
    plane's objects. Explicit denials: no allow of a policy or a bound can outweigh them."""
    objects = f"arn:{partition}:s3:::{state_bucket}"
    return [
        {"Sid": "OnlyData", "Effect": "Deny", "NotAction": "s3:*", "Resource": "*"},
        {
            "Sid": "NoControlPlaneObjects",
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": [f"{objects}/{prefix}*" for prefix in STATE_PREFIXES],
        },
    ]


def _allow(sid: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": sorted(set(resources))}


def _prefixes_by_bucket(reads: Iterable[Location]) -> dict[str, list[str] | None]:
    """Listable prefixes per bucket as ``s3:prefix`` patterns; None when the whole bucket is."""
    result: dict[str, list[str] | None] = {}
    for loc in reads:
        whole = loc.prefix and loc.key == ""
        if whole or (loc.bucket in result and result[loc.bucket] is None):
            result[loc.bucket] = None
            continue
        patterns = result.setdefault(loc.bucket, [])
        assert patterns is not None
        pattern = f"{loc.key}*" if loc.prefix else loc.key
        if pattern not in patterns:
            patterns.append(pattern)
    return {bucket: (sorted(p) if p is not None else None) for bucket, p in sorted(result.items())}


def policy_chars(statements_: list[dict[str, Any]]) -> int:
    """Size of statements as IAM counts it (whitespace is not counted)."""
    return len(json.dumps(statements_, separators=(",", ":")))


# --------------------------------------------------------------------------- unsigned (public) reads


def unsigned_value(access: Mapping[str, Any] | None) -> str:
    """The value of ``env.UNSIGNED_S3`` for a Function: its public locations, space-separated."""
    return " ".join(normalise(u) for u in (access or {}).get("public") or ())


def reads_unsigned(uri: str, value: str | None) -> bool:
    """Whether ``uri`` (``s3://bucket/key`` or ``/vsis3/bucket/key``) is under a public location."""
    if not value:
        return False
    path = uri.removeprefix("s3://").removeprefix("/vsis3/")
    bucket, _, key = path.partition("/")
    return any(loc.matches(bucket, key) for loc in locations(value.split()))
