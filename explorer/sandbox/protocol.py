"""The messages between the server and a sandboxed worker: a JSON header and raw byte blobs.

A frame is a 4-byte length and a JSON object, then, for each blob the header's ``"blobs"``
lists, an 8-byte length and the bytes. The server reads a worker's answer with a cap on its
size, so a worker that went wrong (or was made to) cannot make the server allocate more.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

MAX_HEADER = 1024 * 1024


class FrameError(ValueError):
    """A frame that is not one, or larger than allowed."""


def write_frame(stream: BinaryIO, header: dict[str, Any], blobs: list[bytes]) -> None:
    """Write ``header`` and ``blobs`` as one frame, and flush."""
    body = json.dumps({**header, "blobs": len(blobs)}).encode()
    stream.write(struct.pack(">I", len(body)) + body)
    for blob in blobs:
        stream.write(struct.pack(">Q", len(blob)))
        stream.write(blob)
    stream.flush()


def parse_frame(data: bytes, max_bytes: int) -> tuple[dict[str, Any], list[bytes]]:
    """A whole frame read from ``data`` (at most ``max_bytes`` long).

    Raises:
        FrameError: Truncated, oversized, or a header that is not a JSON object.
    """
    if len(data) > max_bytes:
        raise FrameError("the answer is larger than allowed")
    if len(data) < 4:
        raise FrameError("no answer")
    (size,) = struct.unpack(">I", data[:4])
    if size > MAX_HEADER or 4 + size > len(data):
        raise FrameError("a malformed answer")
    try:
        header = json.loads(data[4 : 4 + size])
    except (ValueError, RecursionError):
        raise FrameError("a malformed answer") from None
    count = header.get("blobs") if isinstance(header, dict) else None
    if not isinstance(count, int) or not 0 <= count <= 8:
        raise FrameError("a malformed answer")
    blobs, offset = [], 4 + size
    for _ in range(count):
        if offset + 8 > len(data):
            raise FrameError("a truncated answer")
        (length,) = struct.unpack(">Q", data[offset : offset + 8])
        offset += 8
        if offset + length > len(data):
            raise FrameError("a truncated answer")
        blobs.append(data[offset : offset + length])
        offset += length
    return header, blobs


def read_frame(stream: BinaryIO, max_bytes: int) -> tuple[dict[str, Any], list[bytes]]:
    """Read one frame from ``stream`` (the worker's side: its request)."""
    head = stream.read(4)
    if len(head) < 4:
        raise FrameError("no request")
    (size,) = struct.unpack(">I", head)
    if size > MAX_HEADER:
        raise FrameError("a malformed request")
    body = stream.read(size)
    header = json.loads(body)
    data = head + body
    for _ in range(int(header.get("blobs", 0))):
        raw = stream.read(8)
        (length,) = struct.unpack(">Q", raw)
        if len(data) + length > max_bytes:
            raise FrameError("the request is larger than allowed")
        data += raw + stream.read(length)
    return parse_frame(data, max_bytes)
