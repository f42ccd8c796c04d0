"""Turning one parsed request into a response: routing, files and errors.

``respond`` is the whole of HTTP semantics for a static site: Host routing,
the ACME HTTP-01 challenge, the redirect to HTTPS, methods, conditional and
range requests, precompressed variants and error pages. It returns a
``Reply``; the connection object only writes it.
"""

from __future__ import annotations

import re
import time
from http import HTTPStatus
from pathlib import Path

from onestack.web import preconditions
from onestack.web.accesslog import AccessEntry
from onestack.web.files import (
    FOUND,
    REDIRECT,
    REVALIDATE_SECONDS,
    SERVER_HEADER,
    FileCache,
    Representation,
    Resource,
    http_date,
)
from onestack.web.ranges import (
    Unsatisfiable,
    content_range,
    multipart_boundary,
    multipart_parts,
    parse_range,
)
from onestack.web.vhost_table import StatsDelta, Vhost, VhostTable, normalize_host

ACME_PREFIX = b"/.well-known/acme-challenge/"
ACME_TOKEN = re.compile(rb"^[A-Za-z0-9_-]+$")
ALLOW = b"Allow: GET, HEAD\r\n"
ERROR_PAGE_PATH = b"/404.html"
# Challenge files are a few hundred bytes; anything bigger is not one.
MAX_CHALLENGE_BYTES = 64 * 1024

# Reason phrases as RFC 9110 section 15 names them, where Python's are older.
PHRASES = {
    **{status.value: status.phrase for status in HTTPStatus},
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
}
STATUS_LINES = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, phrase.encode())
    for code, phrase in PHRASES.items()
}


class Request:
    """One parsed request, as the connection hands it over."""

    __slots__ = (
        "method",
        "target",
        "version",
        "headers",
        "keep_alive",
        "started",
        "host_count",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: dict[bytes, bytes],
        keep_alive: bool,
        started: float,
        host_count: int,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.started = started
        self.host_count = host_count


class FileSegment:
    """A byte range of a file to stream after the head (large files)."""

    __slots__ = ("path", "offset", "length")

    def __init__(self, path: str, offset: int, length: int) -> None:
        self.path = path
        self.offset = offset
        self.length = length


class Reply:
    """A response: status, head bytes (through the blank line) and body parts.

    ``data`` is the whole response when ``segments`` is None; otherwise the
    head and in-memory parts are in ``segments`` in order.
    """

    __slots__ = ("status", "data", "segments", "body_size", "vhost")

    def __init__(
        self,
        status: int,
        data: bytes,
        body_size: int,
        vhost: Vhost | None,
        segments: list[bytes | FileSegment] | None = None,
    ) -> None:
        self.status = status
        self.data = data
        self.segments = segments
        self.body_size = body_size
        self.vhost = vhost


class Clock:
    """The Date header line, formatted once per second.

    ``line_until`` also returns the loop time at which the line goes out of
    date, so that ready responses carrying it can be reused without reading
    the wall clock per request.
    """

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    @property
    def second(self) -> int:
        """The Unix second the current Date line shows."""
        return self._second

    def date_line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"Date: " + http_date(now) + b"\r\n"
        return self._line

    def line_until(self, loop_now: float) -> tuple[bytes, float]:
        """Return the Date line and the loop time at which its second ends."""
        wall = time.time()
        second = int(wall)
        if second != self._second:
            self._second = second
            self._line = b"Date: " + http_date(second) + b"\r\n"
        return self._line, loop_now + (second + 1 - wall)


# Ready responses up to this size are kept joined with their head. Bigger
# bodies go out as two buffers in one writev, so the body is not copied.
JOIN_LIMIT = 16 * 1024


class FastEntry:
    """A ready 200 response for one (Host header, target) pair.

    It skips routing and path resolution for requests that carry no
    conditional, range or connection headers. It is valid until
    ``fresh_until`` (loop time): the end of the second its Date line shows,
    or the resource's next revalidation, whichever comes first. After that
    the next request takes the full path, which rebuilds the entry.
    ``delta`` and ``log`` are the vhost's stats counter and access-log
    buffer, attached by the connection on first use.
    """

    __slots__ = (
        "vhost",
        "response",
        "parts",
        "body_size",
        "fresh_until",
        "delta",
        "log",
    )

    def __init__(
        self,
        vhost: Vhost,
        response: bytes | None,
        parts: tuple[bytes, bytes] | None,
        body_size: int,
        fresh_until: float,
    ) -> None:
        self.vhost = vhost
        # Either the whole response as one object, or (head, body).
        self.response = response
        self.parts = parts
        self.body_size = body_size
        self.fresh_until = fresh_until
        self.delta: StatsDelta | None = None
        self.log: list[AccessEntry] | None = None


# Ready responses kept per worker; the table is cleared when it grows past this.
MAX_FAST_ENTRIES = 10_000


class Router:
    """Everything ``respond`` needs that lives longer than one request."""

    def __init__(
        self,
        vhosts: VhostTable,
        files: FileCache,
        challenge_dir: Path,
        is_tls: bool,
        https_port: int,
    ) -> None:
        self.vhosts = vhosts
        self.files = files
        self.challenge_dir = challenge_dir
        self.is_tls = is_tls
        self.https_port = https_port
        self.clock = Clock()
        self.fast: dict[tuple[bytes | None, bytes], FastEntry] = {}

    def set_vhosts(self, vhosts: VhostTable) -> None:
        """Replace the vhost table and forget everything derived from the old one."""
        self.vhosts = vhosts
        self.files.clear()
        # Connections may still hold entries for repeated requests.
        for entry in self.fast.values():
            entry.fresh_until = -1.0
        self.fast.clear()

    def remember(
        self,
        host: bytes,
        target: bytes,
        vhost: Vhost,
        resource: Resource,
        now: float,
    ) -> None:
        """Keep a full 200 response from memory for the fast path."""
        representation = resource.representation
        if representation is None or representation.body is None or resource.variants:
            return
        if len(self.fast) >= MAX_FAST_ENTRIES:
            self.fast.clear()
        date, date_until = self.clock.line_until(now)
        head = STATUS_LINES[200] + date + representation.head
        body = representation.body
        fresh_until = min(date_until, resource.checked_at + REVALIDATE_SECONDS)
        if len(body) <= JOIN_LIMIT or self.is_tls:
            entry = FastEntry(vhost, head + body, None, len(body), fresh_until)
        else:
            entry = FastEntry(vhost, None, (head, body), len(body), fresh_until)
        self.fast[(host, target)] = entry


def connection_line(request: Request) -> bytes:
    if not request.keep_alive:
        return b"Connection: close\r\n"
    if request.version == b"1.0":
        return b"Connection: keep-alive\r\n"
    return b""


def simple_reply(
    router: Router,
    request: Request,
    status: int,
    vhost: Vhost | None = None,
    extra: bytes = b"",
    body: bytes | None = None,
) -> Reply:
    """Build a small HTML answer for an error or a redirect."""
    if body is None:
        phrase = PHRASES[status].encode()
        body = b"<!DOCTYPE html>\n<title>%d %s</title>\n<h1>%d %s</h1>\n" % (
            status,
            phrase,
            status,
            phrase,
        )
    content_type = b"text/html; charset=utf-8"
    head = b"".join(
        (
            STATUS_LINES[status],
            router.clock.date_line(),
            SERVER_HEADER,
            connection_line(request),
            extra,
            b"Content-Type: %s\r\nContent-Length: %d\r\n\r\n"
            % (content_type, len(body)),
        )
    )
    if request.method == b"HEAD":
        return Reply(status, head, 0, vhost)
    return Reply(status, head + body, len(body), vhost)


def respond(router: Router, request: Request, now: float) -> Reply:
    """Compute the reply to one request; ``now`` is the loop's clock."""
    if request.version != b"1.1" and request.version != b"1.0":
        # RFC 9110 section 15.6.6: a major version this server does not
        # speak (HTTP/2.0 or 0.x sent as text) gets 505, then the close.
        request.keep_alive = False
        return simple_reply(router, request, 505)
    target = request.target
    if target.startswith(b"/"):
        path, _, _ = target.partition(b"?")
        host = request.headers.get(b"host")
    elif target[:7].lower() == b"http://" or target[:8].lower() == b"https://":
        # Absolute form: the target's authority replaces Host (RFC 9112 3.2.2).
        _, _, rest = target.partition(b"://")
        host, slash, rest = rest.partition(b"/")
        target = b"/" + rest if slash else b"/"
        path, _, _ = target.partition(b"?")
    else:
        return simple_reply(router, request, 400)
    if request.host_count > 1 or (request.version != b"1.0" and host is None):
        # RFC 9112 section 3.2: exactly one Host in HTTP/1.1.
        return simple_reply(router, request, 400)

    if path.startswith(ACME_PREFIX):
        return acme_challenge(router, request, path[len(ACME_PREFIX) :])

    vhost = router.vhosts.get(host) if host is not None else None
    if vhost is None:
        return simple_reply(router, request, 404)
    if vhost.redirect_to_https and vhost.ssl and not router.is_tls:
        return https_redirect(router, request, vhost, host, target)  # type: ignore[arg-type]
    if request.method != b"GET" and request.method != b"HEAD":
        return simple_reply(router, request, 405, vhost, ALLOW)

    resource = router.files.get(vhost.document_root, path, now)
    if resource.status == FOUND:
        reply = file_reply(router, request, vhost, resource)
        if (
            reply.status == 200
            and request.method == b"GET"
            and target is request.target
        ):
            router.remember(host, target, vhost, resource, now)  # type: ignore[arg-type]
        return reply
    if resource.status == REDIRECT:
        query = target[len(path) :]
        location = b"Location: %s/%s\r\n" % (path, query)
        return simple_reply(router, request, 301, vhost, location)
    if resource.status == 404:
        return not_found(router, request, vhost, now)
    return simple_reply(router, request, resource.status, vhost)


def not_found(router: Router, request: Request, vhost: Vhost, now: float) -> Reply:
    """Answer 404 with the vhost's own 404.html when it has one."""
    page = router.files.get(vhost.document_root, ERROR_PAGE_PATH, now)
    if page.status != FOUND or page.representation is None:
        return simple_reply(router, request, 404, vhost)
    representation = page.representation
    head = _head(router, request, 404, representation.head)
    return _full_body(request, 404, vhost, head, representation)


def acme_challenge(router: Router, request: Request, token: bytes) -> Reply:
    """Serve an ACME HTTP-01 key authorization (RFC 8555 section 8.3) for any Host."""
    if request.method != b"GET" and request.method != b"HEAD":
        return simple_reply(router, request, 405, None, ALLOW)
    if not ACME_TOKEN.match(token):
        return simple_reply(router, request, 404)
    path = router.challenge_dir / token.decode("ascii")
    try:
        with open(path, "rb") as handle:
            body = handle.read(MAX_CHALLENGE_BYTES)
    except OSError:
        return simple_reply(router, request, 404)
    head = b"".join(
        (
            STATUS_LINES[200],
            router.clock.date_line(),
            SERVER_HEADER,
            connection_line(request),
            b"Content-Type: application/octet-stream\r\n",
            b"Content-Length: %d\r\n\r\n" % len(body),
        )
    )
    if request.method == b"HEAD":
        return Reply(200, head, 0, None)
    return Reply(200, head + body, len(body), None)


def https_redirect(
    router: Router, request: Request, vhost: Vhost, host: bytes, target: bytes
) -> Reply:
    """Answer 301 to the same host, path and query over HTTPS."""
    hostname = normalize_host(host) or vhost.domain
    port = b"" if router.https_port == 443 else b":%d" % router.https_port
    location = b"Location: https://%s%s%s\r\n" % (hostname.encode(), port, target)
    return simple_reply(router, request, 301, vhost, location)


def _head(router: Router, request: Request, status: int, rest: bytes) -> bytes:
    return b"".join(
        (STATUS_LINES[status], router.clock.date_line(), connection_line(request), rest)
    )


def _full_body(
    request: Request,
    status: int,
    vhost: Vhost,
    head: bytes,
    representation: Representation,
) -> Reply:
    if request.method == b"HEAD":
        return Reply(status, head, 0, vhost)
    body = representation.body
    if body is not None:
        return Reply(status, head + body, len(body), vhost)
    segment = FileSegment(representation.path, 0, representation.size)
    return Reply(status, head, representation.size, vhost, [head, segment])


def choose_representation(
    resource: Resource, accept_encoding: bytes | None
) -> Representation:
    """Pick a precompressed variant the client accepts (RFC 9110 12.5.3)."""
    representation = resource.representation
    assert representation is not None
    if accept_encoding is None or not resource.variants:
        return representation
    weights: dict[bytes, float] = {}
    for item in accept_encoding.lower().split(b","):
        coding, _, params = item.partition(b";")
        weight = 1.0
        params = params.strip()
        if params.startswith(b"q="):
            try:
                weight = float(params[2:])
            except ValueError:
                weight = 0.0
        weights[coding.strip()] = weight
    default = weights.get(b"*", 0.0)
    for token, variant in resource.variants.items():
        if weights.get(token, default) > 0:
            return variant
    return representation


def file_reply(
    router: Router, request: Request, vhost: Vhost, resource: Resource
) -> Reply:
    """Answer GET or HEAD for a file: 200, 206, 304, 412 or 416."""
    headers = request.headers
    representation = choose_representation(resource, headers.get(b"accept-encoding"))
    if len(headers) > 1:
        decided = preconditions.evaluate(headers, representation)
        if decided is not None:
            return _not_modified(
                router, request, vhost, resource, representation, decided
            )
        range_header = headers.get(b"range")
        if (
            range_header is not None
            and request.method == b"GET"
            and preconditions.range_applies(headers, representation)
        ):
            try:
                ranges = parse_range(range_header, representation.size)
            except Unsatisfiable:
                extra = b"Content-Range: bytes */%d\r\n" % representation.size
                return simple_reply(router, request, 416, vhost, extra)
            if ranges is not None:
                return _partial(
                    router, request, vhost, resource, representation, ranges
                )
    body = representation.body
    if body is not None and request.method == b"GET":
        # The common case, in one join: status, Date, cached headers, contents.
        data = b"".join(
            (
                STATUS_LINES[200],
                router.clock.date_line(),
                connection_line(request),
                representation.head,
                body,
            )
        )
        return Reply(200, data, len(body), vhost)
    head = _head(router, request, 200, representation.head)
    return _full_body(request, 200, vhost, head, representation)


def _validators(resource: Resource, representation: Representation) -> bytes:
    lines = [
        SERVER_HEADER,
        b"ETag: ",
        representation.etag,
        b"\r\nLast-Modified: ",
        representation.last_modified,
        b"\r\n",
    ]
    if resource.variants:
        lines.append(b"Vary: Accept-Encoding\r\n")
    return b"".join(lines)


def _not_modified(
    router: Router,
    request: Request,
    vhost: Vhost,
    resource: Resource,
    representation: Representation,
    status: int,
) -> Reply:
    if status == preconditions.PRECONDITION_FAILED:
        return simple_reply(router, request, status, vhost)
    # RFC 9110 section 15.4.5: a 304 carries the validators and Vary, no body.
    head = _head(router, request, 304, _validators(resource, representation) + b"\r\n")
    return Reply(304, head, 0, vhost)


def _slice(
    representation: Representation, first: int, last: int
) -> bytes | FileSegment:
    if representation.body is not None:
        return representation.body[first : last + 1]
    return FileSegment(representation.path, first, last - first + 1)


def _partial(
    router: Router,
    request: Request,
    vhost: Vhost,
    resource: Resource,
    representation: Representation,
    ranges: list[tuple[int, int]],
) -> Reply:
    """Answer 206 with one range, or with multipart/byteranges for several."""
    size = representation.size
    common = _validators(resource, representation)
    if representation.encoding is not None:
        common += b"Content-Encoding: %s\r\n" % representation.encoding
    if len(ranges) == 1:
        first, last = ranges[0]
        length = last - first + 1
        head = _head(
            router,
            request,
            206,
            common
            + b"Content-Type: %s\r\nContent-Range: %s\r\nContent-Length: %d\r\n\r\n"
            % (representation.content_type, content_range(first, last, size), length),
        )
        part = _slice(representation, first, last)
        if isinstance(part, bytes):
            return Reply(206, head + part, length, vhost)
        return Reply(206, head, length, vhost, [head, part])

    boundary = multipart_boundary()
    part_heads, total = multipart_parts(
        ranges, size, representation.content_type, boundary
    )
    head = _head(
        router,
        request,
        206,
        common
        + b"Content-Type: multipart/byteranges; boundary=%s\r\nContent-Length: %d\r\n\r\n"
        % (boundary, total),
    )
    segments: list[bytes | FileSegment] = [head]
    for part_head, (first, last) in zip(part_heads, ranges, strict=False):
        segments.append(part_head)
        segments.append(_slice(representation, first, last))
    segments.append(part_heads[-1])
    if all(isinstance(segment, bytes) for segment in segments):
        return Reply(206, b"".join(segments), total, vhost)  # type: ignore[arg-type]
    return Reply(206, head, total, vhost, segments)


def challenge_dir(data_dir: Path) -> Path:
    return data_dir / "acme" / "challenges"
