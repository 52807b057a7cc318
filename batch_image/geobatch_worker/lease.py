"""A lease deadline the worker parent publishes and the user-code child obeys.

The parent keeps each held message invisible in SQS; the job's lease is good until the last
extension it sent plus the visibility it asked for (SQS counts from when it got the request, so
later). The parent writes that deadline (CLOCK_MONOTONIC, which every process on the host shares)
minus a margin into a shared 8-byte file. A watchdog thread in the child reads it: once the
deadline passes (the parent is stopped, hung, or cut off from SQS) the child ends the job's whole
process tree before another worker can receive the message, so a job never runs twice at once.
"""

from __future__ import annotations

import mmap
import os
import struct
import time

_VALUE = struct.Struct("d")
NO_LEASE = 0.0  # between jobs: nothing to guard


def margin(lease_seconds: float) -> float:
    """How long before the lease ends the child stops: room for clock reads and a kill."""
    return max(0.5, min(10.0, lease_seconds / 10))


class LeaseFile:
    def __init__(self, path: str, *, writable: bool):
        if writable:
            with open(path, "wb") as out:
                out.write(_VALUE.pack(NO_LEASE))
        fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        try:
            access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
            self._map = mmap.mmap(fd, _VALUE.size, access=access)
        finally:
            os.close(fd)
        self.path = path

    def set(self, until: float) -> None:
        self._map[: _VALUE.size] = _VALUE.pack(until)

    def get(self) -> float:
        return float(_VALUE.unpack(self._map[: _VALUE.size])[0])

    def expired(self) -> bool:
        until = self.get()
        return until != NO_LEASE and time.monotonic() > until

    def close(self) -> None:
        self._map.close()
