"""The binary tensor data of the Open Inference Protocol, for REST and gRPC alike.

A tensor's elements travel as raw bytes, row-major and little-endian: in a REST body after the
JSON header (`Inference-Header-Content-Length` bytes of it; each binary input gives its size in
`parameters.binary_data_size`), and in gRPC's `raw_input_contents` and `raw_output_contents`. A
BYTES element is a 4-byte little-endian length, then that many bytes (text, in UTF-8 here).

Every size is checked against the bytes there are and against the tensor's shape; a mismatch is a
`BinaryError` naming the input, which the endpoints answer as the client's fault.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

# The struct format of one element of each fixed-size datatype (little-endian). struct is several
# times faster than NumPy on the few values of one request, and as fast on a full batch.
FORMATS = {
    "BOOL": "?",
    "INT8": "b",
    "INT16": "h",
    "INT32": "i",
    "INT64": "q",
    "UINT8": "B",
    "UINT16": "H",
    "UINT32": "I",
    "UINT64": "Q",
    "FP16": "e",
    "FP32": "f",
    "FP64": "d",
}
LENGTH = struct.Struct("<I")  # the length before each BYTES element


class BinaryError(ValueError):
    """Binary tensor data that does not fit its sizes or its shape; the message names the input."""


def split_body(body: bytes, header_length: str) -> tuple[bytes, memoryview]:
    """The JSON header and the binary data of a REST body whose header is `header_length` bytes long."""
    if not header_length.strip().isdigit():
        raise BinaryError(f"Inference-Header-Content-Length {header_length!r} is not a number of bytes")
    length = int(header_length)
    if length > len(body):
        raise BinaryError(f"Inference-Header-Content-Length is {length}, past the end of the {len(body)}-byte body")
    return body[:length], memoryview(body)[length:]


def decode(data: bytes | memoryview, datatype: str, count: int, name: str) -> list[Any]:
    """The `count` elements of input `name` in `data`: Python numbers, booleans, or text for BYTES."""
    if datatype == "BYTES":
        return _decode_bytes(data, count, name)
    code = FORMATS.get(datatype)
    if code is None:
        raise BinaryError(f"input `{name}`: datatype {datatype!r} has no binary form")
    size = struct.calcsize(code)
    if len(data) != count * size:
        raise BinaryError(
            f"input `{name}`: {len(data)} bytes of {datatype} data, but its shape holds {count} values"
            f" ({count * size} bytes)"
        )
    return list(struct.unpack(f"<{count}{code}", data))


def _decode_bytes(data: bytes | memoryview, count: int, name: str) -> list[Any]:
    values: list[Any] = []
    view, offset = memoryview(data), 0
    while offset < len(view):
        if offset + LENGTH.size > len(view):
            raise BinaryError(f"input `{name}`: element {len(values)} is cut short in its 4-byte length")
        (size,) = LENGTH.unpack_from(view, offset)
        offset += LENGTH.size
        if offset + size > len(view):
            raise BinaryError(f"input `{name}`: element {len(values)} says {size} bytes, past the end of its data")
        try:
            values.append(str(view[offset : offset + size], "utf-8"))
        except UnicodeDecodeError:
            raise BinaryError(f"input `{name}`: element {len(values)} is not UTF-8 text") from None
        offset += size
    if len(values) != count:
        raise BinaryError(f"input `{name}`: its data holds {len(values)} BYTES elements, its shape {count}")
    return values


def encode(values: Sequence[Any], datatype: str) -> bytes:
    """The bytes of a tensor's elements (flat, row-major) as `datatype`."""
    if datatype != "BYTES":
        return struct.pack(f"<{len(values)}{FORMATS[datatype]}", *values)
    chunks = []
    for value in values:
        text = str(value).encode()
        chunks.append(LENGTH.pack(len(text)) + text)
    return b"".join(chunks)
