"""Conditional requests (RFC 9110 section 13) against one representation."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from onestack.web.files import Representation

NOT_MODIFIED = 304
PRECONDITION_FAILED = 412


def _entity_tags(value: bytes) -> list[bytes]:
    return [tag.strip() for tag in value.split(b",") if tag.strip()]


def _opaque(tag: bytes) -> bytes:
    return tag[2:] if tag.startswith(b"W/") else tag


def _parse_date(value: bytes) -> float | None:
    try:
        parsed = parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def _modified_seconds(representation: Representation) -> int:
    # HTTP dates have one-second resolution; compare at that resolution.
    return representation.mtime_ns // 1_000_000_000


def evaluate(headers: dict[bytes, bytes], representation: Representation) -> int | None:
    """Return 304 or 412 when a precondition decides the response, else None.

    Follows the order of RFC 9110 section 13.2.2 for GET and HEAD.
    """
    etag = representation.etag
    if_match = headers.get(b"if-match")
    if if_match is not None:
        tags = _entity_tags(if_match)
        # Strong comparison: weak tags never match (section 13.1.1).
        if b"*" not in tags and etag not in tags:
            return PRECONDITION_FAILED
    else:
        if_unmodified = headers.get(b"if-unmodified-since")
        if if_unmodified is not None:
            date = _parse_date(if_unmodified)
            if date is not None and _modified_seconds(representation) > date:
                return PRECONDITION_FAILED

    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None:
        tags = _entity_tags(if_none_match)
        # Weak comparison (section 13.1.2).
        if b"*" in tags or _opaque(etag) in [_opaque(tag) for tag in tags]:
            return NOT_MODIFIED
        return None
    if_modified = headers.get(b"if-modified-since")
    if if_modified is not None:
        date = _parse_date(if_modified)
        if date is not None and _modified_seconds(representation) <= date:
            return NOT_MODIFIED
    return None


def range_applies(headers: dict[bytes, bytes], representation: Representation) -> bool:
    """Tell whether a Range header should be honoured, given If-Range (13.1.5)."""
    if_range = headers.get(b"if-range")
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith(b'"') or if_range.startswith(b"W/"):
        # Strong comparison: a weak tag never matches.
        return if_range == representation.etag
    date = _parse_date(if_range)
    return date is not None and date == _modified_seconds(representation)
