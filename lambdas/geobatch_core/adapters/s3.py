"""S3 adapter: bundles, large arguments, results, logs and build logs in one bucket."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import ClientError

from geobatch.wire import errors
from geobatch_core.adapters.aws_errors import THROTTLING, ErrorMap
from geobatch_core.adapters.reachable import reachable

if TYPE_CHECKING:
    from boto3.session import Session
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

ERRORS = ErrorMap(
    "S3",
    throttled=THROTTLING | {"SlowDown", "503"},
    not_found=frozenset({"NoSuchKey", "404", "NotFound"}),
    missing="no such object",
)


def make_client(session: Session, endpoint_url: str | None = None) -> S3Client:
    """An S3 client whose presigned URLs are SigV4 (short-lived, X-Amz-Expires), never legacy SigV2."""
    return session.client("s3", endpoint_url=endpoint_url, config=Config(signature_version="s3v4"))


class S3BlobStore:
    def __init__(self, client: S3Client, bucket: str):
        self._s3 = reachable(client, "S3")
        self.bucket = bucket

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except ClientError as exc:
            raise ERRORS.error(exc, f"store {key}") from None

    def get(self, key: str) -> bytes:
        try:
            return bytes(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            raise ERRORS.error(exc, f"read {key}") from None

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if isinstance(ERRORS.error(exc, key), errors.NotFoundError):
                return False
            raise ERRORS.error(exc, f"check {key}") from None

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):
            objects: list[ObjectIdentifierTypeDef] = [{"Key": k} for k in keys[start : start + 1000]]
            if not objects:
                continue
            try:
                self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
            except ClientError as exc:
                raise ERRORS.error(exc, "delete objects") from None

    def delete_prefix(self, prefix: str) -> None:
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                self.delete([o["Key"] for o in page.get("Contents", [])])
        except ClientError as exc:
            raise ERRORS.error(exc, f"delete {prefix}") from None

    def presign_put(self, key: str, *, seconds: int, max_bytes: int) -> str:
        # A presigned PUT cannot cap the size; the API checks the bundle's size before building.
        return str(
            self._s3.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": key, "ContentType": "application/zip"},
                ExpiresIn=seconds,
            )
        )

    def presign_get(self, key: str, *, seconds: int) -> str:
        return str(
            self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds
            )
        )

    def size(self, key: str) -> int:
        try:
            return int(self._s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            raise ERRORS.error(exc, f"check {key}") from None
