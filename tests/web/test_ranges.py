"""Range header parsing, multipart bodies and preconditions."""

from __future__ import annotations

import pytest

from onestack.web.files import Representation
from onestack.web.preconditions import (
    NOT_MODIFIED,
    PRECONDITION_FAILED,
    evaluate,
    range_applies,
)
from onestack.web.ranges import MAX_RANGES, Unsatisfiable, multipart_parts, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"bytes=0-9", [(0, 9)]),
        (b"bytes=10-", [(10, 99)]),
        (b"bytes=-10", [(90, 99)]),
        (b"bytes=-1000", [(0, 99)]),
        (b"bytes=90-1000", [(90, 99)]),
        (b"bytes=0-0, 5-9", [(0, 0), (5, 9)]),
        (b"bytes=0-1,200-300", [(0, 1)]),
        (b"BYTES = 0-4", [(0, 4)]),
    ],
)
def test_satisfiable_ranges(header: bytes, expected: list[tuple[int, int]]) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    "header", [b"bytes=100-", b"bytes=200-300", b"bytes=100-200, 300-"]
)
def test_unsatisfiable_ranges(header: bytes) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)


@pytest.mark.parametrize(
    "header",
    [b"items=0-1", b"bytes=5-1", b"bytes=a-b", b"bytes=1", b"bytes=-", b"bytes"],
)
def test_invalid_range_ignored(header: bytes) -> None:
    assert parse_range(header, 100) is None


def test_too_many_ranges_ignored() -> None:
    header = b"bytes=" + b",".join(b"%d-%d" % (i, i) for i in range(MAX_RANGES + 1))
    assert parse_range(header, 1000) is None


def test_multipart_length_matches_parts() -> None:
    ranges = [(0, 4), (10, 19)]
    heads, total = multipart_parts(ranges, 100, b"text/plain", b"BOUNDARY")
    assert len(heads) == 3
    assert heads[0].startswith(b"--BOUNDARY\r\n")
    assert b"Content-Range: bytes 10-19/100" in heads[1]
    assert heads[-1] == b"\r\n--BOUNDARY--\r\n"
    assert total == sum(map(len, heads)) + 5 + 10


def representation() -> Representation:
    # mtime 2021-01-01T00:00:00Z
    return Representation(
        path="/x",
        size=10,
        mtime_ns=1_609_459_200 * 10**9,
        inode=1,
        etag=b'"abc"',
        last_modified=b"Fri, 01 Jan 2021 00:00:00 GMT",
        content_type=b"text/plain",
        encoding=None,
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({b"if-none-match": b'"abc"'}, NOT_MODIFIED),
        ({b"if-none-match": b'W/"abc"'}, NOT_MODIFIED),
        ({b"if-none-match": b'"x", "abc"'}, NOT_MODIFIED),
        ({b"if-none-match": b"*"}, NOT_MODIFIED),
        ({b"if-none-match": b'"other"'}, None),
        ({b"if-modified-since": b"Fri, 01 Jan 2021 00:00:00 GMT"}, NOT_MODIFIED),
        ({b"if-modified-since": b"Sat, 02 Jan 2021 00:00:00 GMT"}, NOT_MODIFIED),
        ({b"if-modified-since": b"Thu, 31 Dec 2020 00:00:00 GMT"}, None),
        ({b"if-modified-since": b"not a date"}, None),
        # If-None-Match wins over If-Modified-Since (RFC 9110 section 13.1.3).
        (
            {
                b"if-none-match": b'"other"',
                b"if-modified-since": b"Sat, 02 Jan 2021 00:00:00 GMT",
            },
            None,
        ),
        ({b"if-match": b'"other"'}, PRECONDITION_FAILED),
        ({b"if-match": b'W/"abc"'}, PRECONDITION_FAILED),
        ({b"if-match": b'"abc"'}, None),
        (
            {b"if-unmodified-since": b"Thu, 31 Dec 2020 00:00:00 GMT"},
            PRECONDITION_FAILED,
        ),
    ],
)
def test_preconditions(headers: dict[bytes, bytes], expected: int | None) -> None:
    assert evaluate(headers, representation()) == expected


@pytest.mark.parametrize(
    ("if_range", "expected"),
    [
        (b'"abc"', True),
        (b'W/"abc"', False),
        (b'"other"', False),
        (b"Fri, 01 Jan 2021 00:00:00 GMT", True),
        (b"Sat, 02 Jan 2021 00:00:00 GMT", False),
    ],
)
def test_if_range(if_range: bytes, expected: bool) -> None:
    assert range_applies({b"if-range": if_range}, representation()) is expected
