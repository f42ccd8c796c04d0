"""Files of a document root as ready-to-send resources, cached per worker.

A request path resolves to a ``Resource``: a file (with its precompressed
``.br`` and ``.gz`` siblings), a redirect adding the trailing slash to a
directory, or an error status. Each file carries the response header bytes
for a full 200 response, and its contents when it is small, so the common
request costs two dictionary look-ups and one write. A cached resource is
revalidated by ``stat`` at most once a second.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from dataclasses import dataclass, field
from email.utils import formatdate

from onestack.web.paths import PathError, is_under, resolve_path

SERVER_HEADER = b"Server: OneStack\r\n"
# Resources are rechecked with stat() when older than this many seconds.
REVALIDATE_SECONDS = 1.0
# Files up to this size are kept in memory; larger ones are streamed.
MAX_MEMORY_FILE = 256 * 1024
# Total bytes of file contents one worker keeps in memory.
MEMORY_BUDGET = 128 * 1024 * 1024
MAX_CACHED_RESOURCES = 20_000
INDEX_FILE = "index.html"

FOUND = 200
REDIRECT = 301

# Types that mimetypes gets wrong or lacks on a minimal system.
EXTRA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".txt": "text/plain",
    ".xml": "application/xml",
    ".md": "text/markdown",
}
TEXT_TYPES = ("text/", "application/json", "application/xml", "image/svg+xml")

# Accept-Encoding tokens in order of preference, with their file suffix.
ENCODINGS = ((b"br", ".br"), (b"gzip", ".gz"))


def content_type_for(path: str) -> bytes:
    """Return the Content-Type for a file name, with charset for text types."""
    _, extension = os.path.splitext(path)
    media_type = EXTRA_TYPES.get(extension.lower())
    if media_type is None:
        media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if media_type.startswith(TEXT_TYPES):
        media_type += "; charset=utf-8"
    return media_type.encode("ascii")


def http_date(timestamp: float) -> bytes:
    """Format a Unix time as an IMF-fixdate (RFC 9110 section 5.6.7)."""
    return formatdate(timestamp, usegmt=True).encode("ascii")


@dataclass(eq=False)
class Representation:
    """One file as sent: the original or a precompressed sibling."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    etag: bytes
    last_modified: bytes
    content_type: bytes
    encoding: bytes | None
    body: bytes | None = None
    # Header lines after the status line and Date, through the blank line,
    # for a full 200 response.
    head: bytes = b""

    def same_file(self, st: os.stat_result) -> bool:
        return (
            st.st_mtime_ns == self.mtime_ns
            and st.st_size == self.size
            and st.st_ino == self.inode
        )


@dataclass(eq=False)
class Resource:
    """The target of a request path (file, redirect or error), as cached."""

    status: int
    representation: Representation | None = None
    # Precompressed siblings by Accept-Encoding token (b"br", b"gzip").
    variants: dict[bytes, Representation] = field(default_factory=dict)
    checked_at: float = 0.0


def _representation(
    path: str, st: os.stat_result, content_type: bytes, encoding: bytes | None
) -> Representation:
    # Strong validator: it changes with every write that changes mtime, size
    # or inode, as nginx's does (RFC 9110 section 8.8.3).
    etag = b'"%x-%x-%x"' % (st.st_mtime_ns, st.st_size, st.st_ino)
    return Representation(
        path=path,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        inode=st.st_ino,
        etag=etag,
        last_modified=http_date(st.st_mtime),
        content_type=content_type,
        encoding=encoding,
    )


def build_head(representation: Representation, vary: bool) -> bytes:
    """Return the header lines of a full 200 response for ``representation``."""
    lines = [
        SERVER_HEADER,
        b"Content-Type: ",
        representation.content_type,
        b"\r\nContent-Length: %d\r\n" % representation.size,
        b"Last-Modified: ",
        representation.last_modified,
        b"\r\nETag: ",
        representation.etag,
        b"\r\nAccept-Ranges: bytes\r\n",
    ]
    if representation.encoding is not None:
        lines += [b"Content-Encoding: ", representation.encoding, b"\r\n"]
    if vary:
        lines.append(b"Vary: Accept-Encoding\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def stat_regular(path: str) -> os.stat_result | None:
    """Return the stat of a regular file, or None (missing, or not a file)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return st


def lookup_file(root: str, raw_path: bytes) -> Resource:
    """Resolve a request path under ``root`` without using the cache.

    Raises PathError for paths that must not be served (400, 403, 404).
    """
    real = resolve_path(root, raw_path)
    try:
        st = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        raise PathError(404, "no such file") from None
    except PermissionError:
        raise PathError(403, "permission denied") from None

    if stat.S_ISDIR(st.st_mode):
        if not raw_path.endswith(b"/"):
            return Resource(status=REDIRECT)
        real = os.path.realpath(os.path.join(real, INDEX_FILE))
        if not is_under(root, real):
            raise PathError(403, "index file resolves outside the document root")
        index_st = stat_regular(real)
        if index_st is None:
            # No directory listings: a directory without index.html is absent.
            raise PathError(404, "directory has no index file")
        st = index_st
    elif not stat.S_ISREG(st.st_mode):
        raise PathError(404, "not a regular file")
    elif raw_path.endswith(b"/"):
        raise PathError(404, "a file has no trailing slash")

    content_type = content_type_for(real)
    resource = Resource(
        status=FOUND, representation=_representation(real, st, content_type, None)
    )
    for token, suffix in ENCODINGS:
        sibling = os.path.realpath(real + suffix)
        if not is_under(root, sibling):
            continue
        sibling_st = stat_regular(sibling)
        if sibling_st is not None:
            resource.variants[token] = _representation(
                sibling, sibling_st, content_type, token
            )
    return resource


class FileCache:
    """Resources by (document root, request path), with contents of small files."""

    def __init__(self) -> None:
        self._resources: dict[tuple[str, bytes], Resource] = {}
        self._memory_used = 0

    def clear(self) -> None:
        self._resources.clear()
        self._memory_used = 0

    def get(self, root: str, raw_path: bytes, now: float) -> Resource:
        """Return the resource for a path, revalidated at most once a second.

        A path that is not served gives a resource whose status is the error
        (400, 403 or 404); it is cached like the others.
        """
        key = (root, raw_path)
        cached = self._resources.get(key)
        if cached is not None and now - cached.checked_at < REVALIDATE_SECONDS:
            return cached
        try:
            resource = lookup_file(root, raw_path)
        except PathError as error:
            resource = Resource(status=error.status)
        resource.checked_at = now
        if cached is not None:
            self._memory_used -= _body_bytes(cached)
            self._reuse_bodies(cached, resource)
        elif len(self._resources) >= MAX_CACHED_RESOURCES:
            self.clear()
        self._load_bodies(resource)
        self._resources[key] = resource
        return resource

    def _reuse_bodies(self, old: Resource, new: Resource) -> None:
        """Keep contents read before when the file has not changed."""
        pairs = [(old.representation, new.representation)]
        pairs += [(old.variants.get(k), v) for k, v in new.variants.items()]
        for before, after in pairs:
            if before is None or after is None or before.body is None:
                continue
            if (before.mtime_ns, before.size, before.inode) == (
                after.mtime_ns,
                after.size,
                after.inode,
            ):
                after.body = before.body

    def _load_bodies(self, resource: Resource) -> None:
        vary = bool(resource.variants)
        representations = [resource.representation, *resource.variants.values()]
        for representation in representations:
            if representation is None:
                continue
            representation.head = build_head(representation, vary)
            if representation.body is None:
                representation.body = self._read_small(representation)
            if representation.body is not None:
                self._memory_used += len(representation.body)

    def _read_small(self, representation: Representation) -> bytes | None:
        if representation.size > MAX_MEMORY_FILE:
            return None
        if self._memory_used + representation.size > MEMORY_BUDGET:
            return None
        try:
            with open(representation.path, "rb") as handle:
                st = os.fstat(handle.fileno())
                if not representation.same_file(st):
                    # Changed between stat and open: stream it this time.
                    return None
                data = handle.read(representation.size + 1)
        except OSError:
            return None
        if len(data) != representation.size:
            return None
        return data


def _body_bytes(resource: Resource) -> int:
    total = 0
    for representation in (resource.representation, *resource.variants.values()):
        if representation is not None and representation.body is not None:
            total += len(representation.body)
    return total
