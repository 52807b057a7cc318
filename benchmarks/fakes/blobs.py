"""In-memory fake of the blob store port (S3 semantics for the calls the services make)."""

from __future__ import annotations

from collections.abc import Sequence

from geobatch.wire import errors


class FakeBlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.calls = 0

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        self.calls += 1
        self.blobs[key] = bytes(data)

    def get(self, key: str) -> bytes:
        self.calls += 1
        if key not in self.blobs:
            raise errors.NotFoundError(f"{key} does not exist")
        return self.blobs[key]

    def exists(self, key: str) -> bool:
        self.calls += 1
        return key in self.blobs

    def size(self, key: str) -> int:
        return len(self.get(key))

    def delete(self, keys: Sequence[str]) -> None:
        self.calls += 1
        for k in keys:
            self.blobs.pop(k, None)

    def delete_prefix(self, prefix: str) -> None:
        self.calls += 1
        for k in [k for k in self.blobs if k.startswith(prefix)]:
            del self.blobs[k]

    def presign_put(self, key: str, *, seconds: int, max_bytes: int) -> str:
        return f"fake://put/{key}"

    def presign_get(self, key: str, *, seconds: int) -> str:
        return f"fake://get/{key}"
