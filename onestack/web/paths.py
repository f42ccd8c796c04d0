"""Mapping a request path to a file under a document root, safely.

Every file the web modules serve goes through ``resolve_path``: it decodes
the path, rejects what could leave the root, resolves symlinks and checks
that the result is still under the root.
"""

from __future__ import annotations

import os
from urllib.parse import unquote_to_bytes

# Hidden files are not served, except the registered well-known URIs
# (RFC 8615), which sites use for security.txt, ACME and similar files.
ALLOWED_DOT_SEGMENTS = frozenset({".well-known"})


class PathError(Exception):
    """A request path that cannot be served; ``status`` is the HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def split_segments(raw_path: bytes) -> list[str]:
    """Decode a request path into its segments, rejecting unsafe ones.

    Raises PathError with 400 for a path that is not absolute, contains NUL
    or is not UTF-8; 403 for ``.`` or ``..`` segments; 404 for an encoded
    slash or backslash (no file name contains one) and for dotfiles.
    """
    if not raw_path.startswith(b"/"):
        raise PathError(400, "path is not absolute")
    segments: list[str] = []
    # Split before decoding, so that %2F cannot create a new segment.
    for raw_segment in raw_path.split(b"/")[1:]:
        if not raw_segment:
            continue
        decoded = unquote_to_bytes(raw_segment)
        if b"\x00" in decoded:
            raise PathError(400, "path contains NUL")
        if b"/" in decoded or b"\\" in decoded:
            raise PathError(404, "path segment contains a slash")
        if decoded in (b".", b".."):
            raise PathError(403, "path contains a dot segment")
        try:
            segment = decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise PathError(400, "path is not UTF-8") from None
        if segment.startswith(".") and segment not in ALLOWED_DOT_SEGMENTS:
            raise PathError(404, "dotfiles are not served")
        segments.append(segment)
    return segments


def is_under(real_root: str, real_path: str) -> bool:
    """Tell whether ``real_path`` is ``real_root`` or inside it (both resolved)."""
    return real_path == real_root or real_path.startswith(real_root.rstrip("/") + "/")


def resolve_path(root: str, raw_path: bytes) -> str:
    """Return the resolved file system path for ``raw_path`` under ``root``.

    ``root`` must already be resolved (``os.path.realpath``). Symlinks are
    followed, and a target outside the root raises PathError 403. The
    returned path may not exist; the caller stats it.
    """
    segments = split_segments(raw_path)
    candidate = os.path.join(root, *segments) if segments else root
    real = os.path.realpath(candidate)
    if not is_under(root, real):
        raise PathError(403, "path resolves outside the document root")
    return real
