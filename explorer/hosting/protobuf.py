"""The protobuf wire format, only what a Streamlit client needs: varints and fields.

Written by hand, not with ``google.protobuf``, so that :mod:`explorer` stays free of
Streamlit's generated classes and a client never decodes more of a message than it reads.
"""

from __future__ import annotations

from collections.abc import Iterator


class ProtocolError(Exception):
    """Bytes that are not the protobuf message expected."""


def varint(value: int) -> bytes:
    """``value`` as a protobuf varint (a negative one: ten bytes, two's complement)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def bytes_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field: its tag, its length, its bytes."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def string_field(number: int, text: str) -> bytes:
    """A string field; nothing for ``""`` (proto3 leaves a default value out)."""
    return bytes_field(number, text.encode("utf-8")) if text else b""


def int_field(number: int, value: int) -> bytes:
    """A varint field; nothing for 0 (proto3 leaves a default value out)."""
    return varint(number << 3) + varint(value) if value else b""


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtocolError("a protobuf varint longer than 10 bytes")


def iter_fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """Each field of a protobuf message: (number, an int for a varint or a view of its bytes).

    Raises:
        ProtocolError: the bytes are not a protobuf message.
    """
    pos, end = 0, len(buf)
    try:
        while pos < end:
            key, pos = _read_varint(buf, pos)
            number, wire = key >> 3, key & 7
            value: int | memoryview
            if wire == 0:
                value, pos = _read_varint(buf, pos)
            elif wire == 2:
                size, pos = _read_varint(buf, pos)
                value = buf[pos : pos + size]
                pos += size
            elif wire in (1, 5):
                size = 8 if wire == 1 else 4
                value = buf[pos : pos + size]
                pos += size
            else:
                raise ProtocolError(f"protobuf wire type {wire} is not supported")
            if pos > end:
                raise ProtocolError("a truncated protobuf message")
            yield number, value
    except IndexError:
        raise ProtocolError("a truncated protobuf message") from None


def as_text(value: int | memoryview) -> str:
    """A length-delimited field's bytes as text (``""`` for a number)."""
    return bytes(value).decode("utf-8", "replace") if isinstance(value, memoryview) else ""


def as_message(value: int | memoryview) -> memoryview:
    """A field's bytes, to read as an embedded message.

    Raises:
        ProtocolError: the field holds a number.
    """
    if not isinstance(value, memoryview):
        raise ProtocolError("a protobuf message field holds a number")
    return value
