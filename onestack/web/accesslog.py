"""Access logs per vhost in the combined log format, buffered and rotated.

A request only appends a tuple to a list; the lines are formatted and
written once a second (and at stop), so the event loop does no file I/O per
request. Several worker processes append to the same file (O_APPEND, one
write per flush) and rotate it by size under an advisory lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from pathlib import Path

logger = logging.getLogger(__name__)

MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
# Lines kept per vhost between flushes; past this, lines are counted as lost.
MAX_BUFFERED_LINES = 100_000
SAFE_NAME = re.compile(r"^[a-z0-9.-]+$")
UNPRINTABLE = re.compile(rb'[^\x20-\x7e]|["\\]')
SAFE_BYTES = bytes(byte for byte in range(0x20, 0x7F) if byte not in b'"\\')


# One request as the combined log format shows it: remote address, Unix
# time, method, request target, HTTP version, status, body bytes, Referer
# and User-Agent. A plain tuple, because building it is on every request.
AccessEntry = tuple[
    bytes, float, bytes, bytes, bytes, int, int, bytes | None, bytes | None
]


def escape(value: bytes) -> bytes:
    """Escape client bytes as nginx does: quotes, backslash and non-printables as \\xHH."""
    if not value.translate(None, SAFE_BYTES):
        return value
    return UNPRINTABLE.sub(lambda m: b"\\x%02X" % m.group()[0], value)


def format_time(timestamp: float) -> bytes:
    t = time.gmtime(timestamp)
    month = MONTHS[t.tm_mon - 1]
    return (
        f"{t.tm_mday:02d}/{month}/{t.tm_year:04d}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    ).encode("ascii")


def format_entries(entries: list[AccessEntry]) -> bytes:
    """Format combined-log lines, each ending in a newline."""
    lines = []
    second = -1
    stamp = b""
    for (
        addr,
        timestamp,
        method,
        target,
        version,
        status,
        size,
        referer,
        agent,
    ) in entries:
        if int(timestamp) != second:
            second = int(timestamp)
            stamp = format_time(second)
        lines.append(
            b'%s - - [%s] "%s %s HTTP/%s" %d %s "%s" "%s"\n'
            % (
                addr,
                stamp,
                # httptools accepts only token characters in a method, and
                # the version is rebuilt from numbers: neither needs escaping.
                method,
                escape(target),
                version,
                status,
                b"%d" % size if size else b"-",
                b"-" if referer is None else escape(referer),
                b"-" if agent is None else escape(agent),
            )
        )
    return b"".join(lines)


def log_filename(domain: str) -> str:
    name = domain.lower()
    if not SAFE_NAME.match(name) or name.startswith("."):
        raise ValueError(f"unsafe domain for a log file name: {domain!r}")
    return f"{name}.access.log"


class AccessLog:
    """Buffered access log files under ``log_dir``, one per vhost domain."""

    def __init__(self, log_dir: Path, max_bytes: int, backups: int) -> None:
        self.log_dir = log_dir
        self.max_bytes = max_bytes
        self.backups = backups
        self._buffers: dict[str, list[AccessEntry]] = {}
        self._dropped = 0

    def buffer_for(self, domain: str) -> list[AccessEntry]:
        """Return the list a request appends its AccessEntry to."""
        buffer = self._buffers.get(domain)
        if buffer is None:
            buffer = self._buffers[domain] = []
        return buffer

    def flush(self) -> None:
        """Write every buffered line; errors are logged, never raised."""
        if self._dropped:
            logger.warning("access log dropped %d lines: buffer full", self._dropped)
            self._dropped = 0
        for domain, buffer in self._buffers.items():
            if not buffer:
                continue
            if len(buffer) > MAX_BUFFERED_LINES:
                self._dropped += len(buffer) - MAX_BUFFERED_LINES
                del buffer[MAX_BUFFERED_LINES:]
            data = format_entries(buffer)
            buffer.clear()
            try:
                self._write(domain, data)
            except (OSError, ValueError):
                logger.exception("writing the access log of %s failed", domain)

    def _write(self, domain: str, data: bytes) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / log_filename(domain)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, data)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size >= self.max_bytes:
            self._rotate(path)

    def _rotate(self, path: Path) -> None:
        """Rename log -> log.1 -> log.2 ..., keeping ``backups`` old files."""
        lock_path = self.log_dir / ".rotate.lock"
        with open(lock_path, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                # Another worker may have rotated while this one waited.
                if not path.exists() or path.stat().st_size < self.max_bytes:
                    return
                if self.backups == 0:
                    path.unlink()
                    return
                for index in range(self.backups - 1, 0, -1):
                    older = path.with_name(f"{path.name}.{index}")
                    if older.exists():
                        os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
                os.replace(path, path.with_name(f"{path.name}.1"))
                logger.info("rotated access log %s", path)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
