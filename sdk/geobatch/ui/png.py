"""Minimal PNG encoding for map tiles (standard library ``zlib``; no imaging library needed).

Class rasters become palette PNGs (one byte per pixel, a ``tRNS`` chunk makes nodata transparent),
imagery becomes RGBA. Compression level 1: a 256×256 tile is a few kB either way, and encoding
stays around a millisecond.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["decode_palette", "encode_palette", "encode_rgba"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _scanlines(rows: np.ndarray) -> bytes:
    """Each row prefixed with filter type 0 (none), as PNG's IDAT expects."""
    framed = np.zeros((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    framed[:, 1:] = rows
    return zlib.compress(framed.tobytes(), 1)


def encode_palette(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """(H, W) uint8 indices into ``palette`` ((N, 4) uint8 RGBA, N ≤ 256) as an 8-bit palette PNG."""
    if indices.dtype != np.uint8 or indices.ndim != 2:
        raise ValueError("indices must be a 2-D uint8 array")
    height, width = indices.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    plte = palette[:, :3].astype(np.uint8).tobytes()
    trns = palette[:, 3].astype(np.uint8).tobytes()
    return b"".join(
        (
            _SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"PLTE", plte),
            _chunk(b"tRNS", trns),
            _chunk(b"IDAT", _scanlines(indices)),
            _chunk(b"IEND", b""),
        )
    )


def encode_rgba(rgba: np.ndarray) -> bytes:
    """(H, W, 4) uint8 RGBA as a PNG."""
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError("rgba must be an (H, W, 4) uint8 array")
    height, width = rgba.shape[:2]
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    rows = rgba.reshape(height, width * 4)
    return b"".join(
        (_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", _scanlines(rows)), _chunk(b"IEND", b""))
    )


def decode_palette(png: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(indices, palette RGBA) of a PNG written by :func:`encode_palette` (for tests and tools)."""
    pos, chunks = len(_SIGNATURE), {}
    idat = b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IDAT":
            idat += data
        else:
            chunks[kind] = data
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    if depth != 8 or colour != 3:
        raise ValueError("not an 8-bit palette PNG")
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width + 1)
    if raw[:, 0].any():
        raise ValueError("filtered scanlines are not supported")
    rgb = np.frombuffer(chunks[b"PLTE"], dtype=np.uint8).reshape(-1, 3)
    alpha = np.frombuffer(chunks.get(b"tRNS", b""), dtype=np.uint8)
    palette = np.full((len(rgb), 4), 255, dtype=np.uint8)
    palette[:, :3] = rgb
    palette[: len(alpha), 3] = alpha
    return raw[:, 1:].copy(), palette
