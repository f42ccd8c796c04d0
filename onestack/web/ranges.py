"""Byte range requests (RFC 9110 section 14) and multipart/byteranges bodies."""

from __future__ import annotations

import secrets

# A request with more ranges than this gets the whole file, which RFC 9110
# section 14.2 allows. The bound limits the work one request can cause.
MAX_RANGES = 32


class Unsatisfiable(Exception):
    """No range of the request overlaps the representation (416)."""


def parse_range(value: bytes, size: int) -> list[tuple[int, int]] | None:
    """Parse a Range header into (first, last) byte pairs, both inclusive.

    Returns None when the header must be ignored (not bytes, malformed, too
    many ranges): the full representation is then sent. Raises Unsatisfiable
    when the header is valid but no range overlaps the file.
    """
    unit, _, spec = value.partition(b"=")
    if unit.strip().lower() != b"bytes" or not spec:
        return None
    parts = spec.split(b",")
    if len(parts) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        first_text, dash, last_text = part.partition(b"-")
        if not dash:
            return None
        first_text = first_text.strip()
        last_text = last_text.strip()
        if first_text and not first_text.isdigit():
            return None
        if last_text and not last_text.isdigit():
            return None
        if not first_text:
            # A suffix range: the last N bytes (section 14.1.2).
            if not last_text:
                return None
            length = int(last_text)
            if length == 0 or size == 0:
                continue
            ranges.append((max(0, size - length), size - 1))
            continue
        first = int(first_text)
        if last_text and int(last_text) < first:
            return None
        if first >= size:
            continue
        last = min(int(last_text), size - 1) if last_text else size - 1
        ranges.append((first, last))
    if not ranges:
        raise Unsatisfiable
    return ranges


def content_range(first: int, last: int, size: int) -> bytes:
    return b"bytes %d-%d/%d" % (first, last, size)


def multipart_boundary() -> bytes:
    return secrets.token_hex(12).encode("ascii")


def multipart_parts(
    ranges: list[tuple[int, int]], size: int, content_type: bytes, boundary: bytes
) -> tuple[list[bytes], int]:
    """Return the part headers (one per range, then the closing delimiter).

    The body is ``headers[0] + range 0 + headers[1] + range 1 ... + headers[-1]``;
    the second value is its total length.
    """
    headers = []
    total = 0
    for index, (first, last) in enumerate(ranges):
        lead = b"\r\n" if index else b""
        header = b"%s--%s\r\nContent-Type: %s\r\nContent-Range: %s\r\n\r\n" % (
            lead,
            boundary,
            content_type,
            content_range(first, last, size),
        )
        headers.append(header)
        total += len(header) + last - first + 1
    closing = b"\r\n--%s--\r\n" % boundary
    headers.append(closing)
    total += len(closing)
    return headers, total
