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
from typing import NamedTuple

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


class AccessEntry(NamedTuple):
    """One request as the combined log format shows it."""

    remote_addr: str
    timestamp: float
    method: bytes
    target: bytes
    version: bytes
    status: int
    size: int
    referer: bytes | None
    user_agent: bytes | None


def escape(value: bytes) -> str:
    """Escape client bytes as nginx does: quotes, backslash and non-printables as \\xHH."""
    return UNPRINTABLE.sub(lambda m: b"\\x%02X" % m.group()[0], value).decode("ascii")


def format_time(timestamp: float) -> str:
    t = time.gmtime(timestamp)
    month = MONTHS[t.tm_mon - 1]
    return (
        f"{t.tm_mday:02d}/{month}/{t.tm_year:04d}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def format_entry(entry: AccessEntry) -> str:
    """Format one combined-log line, with its newline."""
    request = b"%s %s HTTP/%s" % (entry.method, entry.target, entry.version)
    size = str(entry.size) if entry.size else "-"
    referer = escape(entry.referer) if entry.referer is not None else "-"
    agent = escape(entry.user_agent) if entry.user_agent is not None else "-"
    return (
        f'{entry.remote_addr} - - [{format_time(entry.timestamp)}] "{escape(request)}" '
        f'{entry.status} {size} "{referer}" "{agent}"\n'
    )


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
            data = "".join(map(format_entry, buffer)).encode("ascii")
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
