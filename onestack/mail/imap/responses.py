"""Server responses of RFC 3501 section 7: errors and the wire forms of values."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

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


class ImapError(Exception):
    """A command failed; the session turns it into a tagged NO or BAD."""

    status = "NO"

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code

    def line(self, tag: str) -> bytes:
        code = f"[{self.code}] " if self.code else ""
        return f"{tag} {self.status} {code}{self.text}\r\n".encode()


class BadCommand(ImapError):
    """The command is malformed, unknown, or not allowed in this state (BAD)."""

    status = "BAD"


class CommandFailed(ImapError):
    """The command was understood but could not be carried out (NO)."""


def quote(value: str | bytes) -> bytes:
    """Encode a string as a quoted string, or as a literal when it must be one."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if (
        b"\r" in data
        or b"\n" in data
        or b"\x00" in data
        or any(c >= 0x80 for c in data)
    ):
        return literal(data)
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n%s" % (len(data), data)


def nstring(value: str | bytes | None) -> bytes:
    if value is None:
        return b"NIL"
    return quote(value)


def astring(value: str) -> bytes:
    """Send a mailbox name as an atom when it is one, else quoted."""
    if value and all(c.isalnum() or c in "-_./&+,:;!#$'<=>?@^`|~[" for c in value):
        if value.isascii():
            return value.encode("ascii")
    return quote(value)


@functools.lru_cache(maxsize=1024)
def flag_list(flags: tuple[str, ...]) -> bytes:
    """Format a flag list, memoised because few distinct lists occur."""
    return ("(" + " ".join(flags) + ")").encode()


def internal_date(value: datetime) -> bytes:
    """Format an INTERNALDATE as RFC 3501's date-time, in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (
        value.day,
        MONTHS[value.month - 1].encode(),
        value.year,
        value.hour,
        value.minute,
        value.second,
    )
