"""Command syntax of RFC 3501 section 9: a cursor over one assembled command.

The connection reads a command line; when the line ends with a literal
announcement ``{n}`` or ``{n+}`` (RFC 7888), it reads exactly ``n`` more octets
and then the next line, and so on. The pieces are joined, each literal
announcement followed by CRLF and the literal octets, into one buffer that
``CommandReader`` walks. Every length is checked against what is actually in
the buffer, so a client that lies about a literal length gets a BAD, never an
over-read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from onestack.mail.imap.responses import MONTHS, BadCommand

# RFC 3501 section 9: ATOM-CHAR is any CHAR except atom-specials.
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0x00, 0x20)) | {0x7F}
_ASTRING_EXTRA = frozenset(b"]")  # resp-specials are allowed in astring
_LIST_WILDCARDS = frozenset(b"%*")
LITERAL_ANNOUNCEMENT = re.compile(rb"\{(\d{1,20})(\+?)\}$")
_DATE = re.compile(r"^(\d{1,2})-([A-Za-z]{3})-(\d{4})$")
_DATE_TIME = re.compile(
    r"^([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$"
)
_MONTH_NUMBERS = {name.lower(): index + 1 for index, name in enumerate(MONTHS)}

# Nesting of parenthesised lists (search keys, fetch items) is capped so that
# a client cannot drive the recursive parsers into Python's recursion limit.
MAX_NESTING = 32


@dataclass(frozen=True)
class SequenceSet:
    """A sequence-set of RFC 3501: ranges of numbers where None stands for ``*``."""

    ranges: tuple[tuple[int | None, int | None], ...]

    def contains(self, number: int, largest: int) -> bool:
        """Tell whether ``number`` is in the set when ``*`` means ``largest``."""
        for start, end in self.ranges:
            low = largest if start is None else start
            high = largest if end is None else end
            if low > high:
                low, high = high, low
            if low <= number <= high:
                return True
        return False

    def select(self, numbers: list[int]) -> list[int]:
        """Return the members of sorted ``numbers`` that are in the set."""
        if not numbers:
            return []
        largest = numbers[-1]
        spans = []
        for start, end in self.ranges:
            low = largest if start is None else start
            high = largest if end is None else end
            spans.append((min(low, high), max(low, high)))
        return [n for n in numbers if any(low <= n <= high for low, high in spans)]


class CommandReader:
    """A cursor over one command buffer with the RFC 3501 grammar's terms."""

    def __init__(self, buffer: bytes) -> None:
        self.buffer = buffer
        self.position = 0
        self.depth = 0

    # --- low-level -------------------------------------------------------

    def at_end(self) -> bool:
        return self.position >= len(self.buffer)

    def peek(self) -> int | None:
        if self.position < len(self.buffer):
            return self.buffer[self.position]
        return None

    def expect(self, char: bytes, what: str) -> None:
        if self.buffer[self.position : self.position + 1] != char:
            raise BadCommand(f"expected {what}")
        self.position += 1

    def sp(self) -> None:
        self.expect(b" ", "a space")

    def try_sp(self) -> bool:
        if self.peek() == 0x20:
            self.position += 1
            return True
        return False

    def end(self) -> None:
        if not self.at_end():
            raise BadCommand("unexpected characters after the command arguments")

    def open_list(self) -> None:
        self.expect(b"(", "an opening parenthesis")
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise BadCommand("lists are nested too deeply")

    def close_list(self) -> bool:
        """Consume a closing parenthesis if one is next."""
        if self.peek() == 0x29:
            self.position += 1
            self.depth -= 1
            return True
        return False

    # --- atoms and strings ----------------------------------------------

    def atom(
        self, extra: frozenset[int] = frozenset(), stop: frozenset[int] = frozenset()
    ) -> str:
        """Read an atom; ``extra`` are specials allowed in it, ``stop`` ends it."""
        return self._atom_bytes(extra, stop, eight_bit=False).decode("ascii")

    def _atom_bytes(
        self, extra: frozenset[int], stop: frozenset[int], eight_bit: bool
    ) -> bytes:
        start = self.position
        buffer = self.buffer
        while self.position < len(buffer):
            char = buffer[self.position]
            if char in _ATOM_SPECIALS and char not in extra or char in stop:
                break
            if char >= 0x80 and not eight_bit:
                break
            self.position += 1
        if self.position == start:
            raise BadCommand("expected an atom")
        return buffer[start : self.position]

    def tag(self) -> str:
        # RFC 3501: tag is 1*<any ASTRING-CHAR except "+">.
        start = self.position
        while self.position < len(self.buffer):
            char = self.buffer[self.position]
            if char in _ATOM_SPECIALS and char != 0x5D or char >= 0x80 or char == 0x2B:
                break
            self.position += 1
        if self.position == start:
            raise BadCommand("missing command tag")
        return self.buffer[start : self.position].decode("ascii")

    def number(self) -> int:
        start = self.position
        while (
            self.position < len(self.buffer)
            and 0x30 <= self.buffer[self.position] <= 0x39
        ):
            self.position += 1
        if self.position == start or self.position - start > 20:
            raise BadCommand("expected a number")
        return int(self.buffer[start : self.position])

    def nz_number(self) -> int:
        value = self.number()
        if value == 0:
            raise BadCommand("expected a non-zero number")
        return value

    def quoted(self) -> bytes:
        self.expect(b'"', "a quoted string")
        out = bytearray()
        buffer = self.buffer
        while True:
            if self.position >= len(buffer):
                raise BadCommand("unterminated quoted string")
            char = buffer[self.position]
            self.position += 1
            if char == 0x22:
                return bytes(out)
            if char == 0x5C:
                if self.position >= len(buffer) or buffer[self.position] not in b'"\\':
                    raise BadCommand("invalid escape in quoted string")
                char = buffer[self.position]
                self.position += 1
            elif char in (0x0D, 0x0A, 0x00):
                raise BadCommand("invalid character in quoted string")
            out.append(char)

    def literal(self) -> bytes:
        match = LITERAL_ANNOUNCEMENT.match(self.buffer, self.position, self._line_end())
        if match is None:
            raise BadCommand("invalid literal")
        size = int(match.group(1))
        start = match.end() + 2
        if self.buffer[match.end() : start] != b"\r\n" or start + size > len(
            self.buffer
        ):
            raise BadCommand("literal is shorter than announced")
        self.position = start + size
        return self.buffer[start : self.position]

    def _line_end(self) -> int:
        end = self.buffer.find(b"\r\n", self.position)
        return len(self.buffer) if end < 0 else end

    def string(self) -> bytes:
        char = self.peek()
        if char == 0x22:
            return self.quoted()
        if char == 0x7B:
            return self.literal()
        raise BadCommand("expected a string")

    def astring_bytes(self) -> bytes:
        char = self.peek()
        if char in (0x22, 0x7B):
            return self.string()
        # Some clients (imaplib among them) send UTF-8 search strings and
        # mailbox names as bare atoms; they are taken rather than rejected.
        return self._atom_bytes(_ASTRING_EXTRA, frozenset(), eight_bit=True)

    def astring(self) -> str:
        try:
            return self.astring_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadCommand("string is not valid UTF-8") from exc

    def nstring_or_nil(self) -> bytes | None:
        if self.buffer[self.position : self.position + 3].upper() == b"NIL":
            self.position += 3
            return None
        return self.string()

    def mailbox(self) -> str:
        # Mailbox names are UTF-8 (RFC 6855 style) or modified UTF-7; both are
        # kept as the client sent them, so a name round-trips unchanged.
        return self.astring()

    def list_mailbox(self) -> str:
        """A list-mailbox of RFC 3501: an astring that may carry % and *."""
        char = self.peek()
        if char in (0x22, 0x7B):
            return self.string().decode("utf-8", "replace")
        return self.atom(_ASTRING_EXTRA | _LIST_WILDCARDS).strip()

    # --- composite terms ---------------------------------------------------

    def sequence_set(self) -> SequenceSet:
        ranges: list[tuple[int | None, int | None]] = []
        while True:
            start = self._seq_number()
            end = start
            if self.peek() == 0x3A:
                self.position += 1
                end = self._seq_number()
            ranges.append((start, end))
            if self.peek() != 0x2C:
                return SequenceSet(tuple(ranges))
            self.position += 1

    def _seq_number(self) -> int | None:
        if self.peek() == 0x2A:
            self.position += 1
            return None
        return self.nz_number()

    def flag_list(self) -> list[str]:
        self.open_list()
        flags: list[str] = []
        while not self.close_list():
            if flags:
                self.sp()
            flags.append(self.flag())
        return flags

    def flag(self) -> str:
        if self.peek() == 0x5C:
            self.position += 1
            return "\\" + self.atom()
        return self.atom()

    def date(self) -> datetime:
        """A date of RFC 3501 (``1-Feb-1994``, optionally quoted), at 00:00 UTC."""
        text = (
            self.quoted().decode("ascii", "replace")
            if self.peek() == 0x22
            else self.atom()
        )
        match = _DATE.match(text)
        month = _MONTH_NUMBERS.get(match.group(2).lower()) if match else None
        if match is None or month is None:
            raise BadCommand(f"invalid date {text!r}")
        try:
            return datetime(int(match.group(3)), month, int(match.group(1)), tzinfo=UTC)
        except ValueError as exc:
            raise BadCommand(f"invalid date {text!r}") from exc

    def date_time(self) -> datetime:
        """A date-time of RFC 3501: ``"17-Jul-1996 02:44:25 -0700"``."""
        text = self.quoted().decode("ascii", "replace")
        match = _DATE_TIME.match(text)
        month = _MONTH_NUMBERS.get(match.group(2).lower()) if match else None
        if match is None or month is None:
            raise BadCommand(f"invalid date-time {text!r}")
        day, _, year, hour, minute, second, sign, zone_hours, zone_minutes = (
            match.groups()
        )
        offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
        try:
            return datetime(
                int(year),
                month,
                int(day),
                int(hour),
                int(minute),
                int(second),
                tzinfo=timezone(-offset if sign == "-" else offset),
            )
        except ValueError as exc:
            raise BadCommand(f"invalid date-time {text!r}") from exc

    def skip_list(self) -> None:
        """Consume one parenthesised list of anything (for ignored arguments)."""
        self.open_list()
        while not self.close_list():
            char = self.peek()
            if char is None:
                raise BadCommand("unbalanced parentheses")
            if char == 0x28:
                self.skip_list()
            elif char in (0x22, 0x7B):
                self.string()
            elif char == 0x20:
                self.position += 1
            else:
                self.atom(_ASTRING_EXTRA | frozenset(b"\\*%"))
