"""The parent/child channel: frames of length-prefixed JSON plus raw bytes, over a Unix socket pair.

No pickle: the parent never turns what user code sends into objects other than JSON values and
bytes. Each frame is ``!II`` (header length, body length), a JSON header, then the body bytes.

The parent's end has SO_PASSCRED set, so the kernel tells it which process wrote every chunk it
reads (a forked copy of the runner cannot pass itself off as the runner: it has another pid).
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
from typing import Any

_HEAD = struct.Struct("!II")
_UCRED = struct.Struct("iII")  # pid, uid, gid
MAX_HEADER_BYTES = 4 * 1024 * 1024
FRAME_SECONDS = 30.0  # a frame that has begun must finish this soon


class ChannelError(Exception):
    """The peer broke the protocol (garbage, oversized frame, another process writing)."""


class Channel:
    def __init__(self, sock: socket.socket, *, peer_pid: int | None = None, max_body: int):
        self._sock = sock
        self._max_body = max_body
        self._peer_pid = peer_pid
        self.strangers: set[int] = set()  # pids other than the peer seen writing (parent side)

    @classmethod
    def pair(cls, *, max_body: int) -> tuple[Channel, socket.socket]:
        """The parent's channel (checking senders) and the socket to hand to the child."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # Set before the child exists, so every byte it ever writes carries its credentials.
        parent.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        return cls(parent, max_body=max_body), child

    def expect_peer(self, pid: int) -> None:
        self._peer_pid = pid

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        data = json.dumps(header, separators=(",", ":")).encode()
        self._sock.sendall(_HEAD.pack(len(data), len(body)) + data + body)

    def poll(self, seconds: float) -> bool:
        readable, _, _ = select.select([self._sock], [], [], seconds)
        return bool(readable)

    def recv(self) -> tuple[dict[str, Any], bytes]:
        """One frame (blocks until it is whole). EOFError when the peer closed its end."""
        header_len, body_len = _HEAD.unpack(self._exact(_HEAD.size))
        if header_len > MAX_HEADER_BYTES or body_len > self._max_body:
            raise ChannelError(f"frame too large ({header_len} + {body_len} bytes)")
        try:
            header = json.loads(self._exact(header_len))
        except ValueError as exc:
            raise ChannelError(f"not JSON: {exc}") from None
        if not isinstance(header, dict):
            raise ChannelError("the frame's header is not an object")
        return header, self._exact(body_len)

    def _exact(self, n: int) -> bytes:
        chunks: list[bytes] = []
        remaining = n
        first = True
        while remaining:
            if not first and not self.poll(FRAME_SECONDS):
                raise ChannelError("a frame stopped half-way")
            first = False
            data, sender = self._read(min(remaining, 1 << 20))
            if not data:
                raise EOFError("the peer closed the channel")
            if self._peer_pid is not None and sender is not None and sender != self._peer_pid:
                self.strangers.add(sender)
                raise ChannelError(f"process {sender} wrote on the runner's channel")
            chunks.append(data)
            remaining -= len(data)
        return b"".join(chunks)

    def _read(self, n: int) -> tuple[bytes, int | None]:
        if self._peer_pid is None:
            return self._sock.recv(n), None
        data, ancillary, _, _ = self._sock.recvmsg(n, socket.CMSG_SPACE(_UCRED.size))
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                return data, _UCRED.unpack(value[: _UCRED.size])[0]
        return data, None


def child_channel(fd: int, *, max_body: int) -> Channel:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=fd)
    os.set_inheritable(fd, False)  # the user's subprocesses do not get it
    return Channel(sock, max_body=max_body)
