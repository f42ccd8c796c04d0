"""SEARCH keys of RFC 3501 section 6.4.4 (and MODSEQ of RFC 7162).

A search program is parsed into a tree of predicates, then evaluated on each
message of the selected mailbox. Keys that look into the message text load the
raw bytes; flag, size, date and UID keys need only the metadata row.
"""

from __future__ import annotations

import email.header
import email.utils
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from onestack.mail.imap import bodystructure
from onestack.mail.imap.bodystructure import MessageCache
from onestack.mail.imap.parser import CommandReader, SequenceSet
from onestack.mail.imap.responses import BadCommand, CommandFailed

SUPPORTED_CHARSETS = ("US-ASCII", "UTF-8")


@dataclass(slots=True)
class Candidate:
    """One message under test, with lazily computed text."""

    sequence: int
    row: Any
    flags: tuple[str, ...]
    recent: bool
    cache: MessageCache
    largest_sequence: int
    largest_uid: int
    _headers: dict[bytes, str] | None = field(default=None, repr=False)

    def forget_headers(self) -> None:
        self._headers = None

    def header_values(self, name: str) -> str:
        if self._headers is None:
            self._headers = self.cache.headers.get(self.row.id)
        if self._headers is None:
            block = bodystructure.split_message(self.row.raw)[0]
            headers: dict[bytes, str] = {}
            for field_name, text in bodystructure.header_fields(block):
                value = text.split(b":", 1)[1] if b":" in text else b""
                decoded = _decode_header(value.decode("utf-8", "replace"))
                headers[field_name] = headers.get(field_name, "") + " " + decoded
            self.cache.headers.put(self.row.id, headers)
            self._headers = headers
        return self._headers.get(name.lower().encode(), "")

    def has_header(self, name: str) -> bool:
        self.header_values(name)
        return name.lower().encode() in (self._headers or {})

    def body_contains(self, needle: str) -> bool:
        """Tell whether the decoded text of the body contains ``needle`` (casefolded)."""
        header, body = bodystructure.split_message(self.row.raw)
        lowered = header.lower()
        if (
            needle.isascii()
            and b"content-transfer-encoding" not in lowered
            and b"multipart" not in lowered
        ):
            # A plain 7bit or 8bit body: search its bytes without decoding them.
            return needle.encode("ascii") in body.lower()
        text = self.cache.body_text(self.row.id)
        if text is None:
            text = _body_text(self.row.id, self.row.raw, self.cache).casefold()
            self.cache.put_body_text(self.row.id, text)
        return needle in text

    def sent_date(self) -> datetime | None:
        value = self.header_values("Date").strip()
        if not value:
            return None
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        # RFC 3501: SENT* keys compare the date in the header's own zone.
        return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)


Predicate = Callable[[Candidate], bool]


@dataclass
class SearchProgram:
    """A parsed search: its predicate and what of each message it reads."""

    predicate: Predicate
    content: str  # "none", "header" or "full", as MailStore.fetch_rows takes
    needs_metadata: bool  # size or internal date, beyond UID, flags and modseq
    uses_modseq: bool


def _decode_header(value: str) -> str:
    value = " ".join(value.split())
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def _body_text(message_id: int, raw: bytes, cache: MessageCache) -> str:
    header, body = bodystructure.split_message(raw)
    lowered = header.lower()
    if b"content-transfer-encoding" not in lowered and b"multipart" not in lowered:
        return body.decode("utf-8", "replace")
    texts: list[str] = []
    for part in cache.parsed(message_id, raw).walk():
        # Only text is searched: decoding attachments would match at random.
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            texts.append(payload.decode(charset, "replace"))
        except LookupError:
            texts.append(payload.decode("utf-8", "replace"))
    return "\n".join(texts)


def _flag(name: str, present: bool) -> Predicate:
    return lambda c: (name in c.flags) == present


def _internal_day(c: Candidate) -> datetime:
    value = c.row.internal_date
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


class _Parser:
    def __init__(self, reader: CommandReader, charset: str) -> None:
        self.reader = reader
        self.charset = charset
        self.content = "none"
        self.needs_metadata = False
        self.uses_modseq = False

    def text(self) -> str:
        data = self.reader.astring_bytes()
        return data.decode("utf-8", "replace").casefold()

    def program(self) -> Predicate:
        keys = [self.key()]
        while self.reader.try_sp():
            keys.append(self.key())
        return _all(keys)

    def key(self) -> Predicate:
        reader = self.reader
        if reader.peek() == 0x28:
            reader.open_list()
            keys = [self.key()]
            while not reader.close_list():
                reader.sp()
                keys.append(self.key())
            return _all(keys)
        char = reader.peek()
        if char is not None and (0x30 <= char <= 0x39 or char == 0x2A):
            sequence_set = reader.sequence_set()
            return lambda c: sequence_set.contains(c.sequence, c.largest_sequence)
        word = reader.atom().upper()
        handler = getattr(self, "key_" + word.replace(".", "_"), None)
        if handler is None:
            raise BadCommand(f"unknown search key {word}")
        return handler()  # type: ignore[no-any-return]

    def _argument(self) -> None:
        self.reader.sp()

    def _needs(self, content: str) -> None:
        if self.content != "full":
            self.content = content

    # Flag keys.
    def key_ALL(self) -> Predicate:
        return lambda c: True

    def key_ANSWERED(self) -> Predicate:
        return _flag("\\Answered", True)

    def key_UNANSWERED(self) -> Predicate:
        return _flag("\\Answered", False)

    def key_DELETED(self) -> Predicate:
        return _flag("\\Deleted", True)

    def key_UNDELETED(self) -> Predicate:
        return _flag("\\Deleted", False)

    def key_DRAFT(self) -> Predicate:
        return _flag("\\Draft", True)

    def key_UNDRAFT(self) -> Predicate:
        return _flag("\\Draft", False)

    def key_FLAGGED(self) -> Predicate:
        return _flag("\\Flagged", True)

    def key_UNFLAGGED(self) -> Predicate:
        return _flag("\\Flagged", False)

    def key_SEEN(self) -> Predicate:
        return _flag("\\Seen", True)

    def key_UNSEEN(self) -> Predicate:
        return _flag("\\Seen", False)

    def key_RECENT(self) -> Predicate:
        return lambda c: c.recent

    def key_OLD(self) -> Predicate:
        return lambda c: not c.recent

    def key_NEW(self) -> Predicate:
        return lambda c: c.recent and "\\Seen" not in c.flags

    def key_KEYWORD(self) -> Predicate:
        self._argument()
        keyword = self.reader.atom()
        return _flag(keyword, True)

    def key_UNKEYWORD(self) -> Predicate:
        self._argument()
        keyword = self.reader.atom()
        return _flag(keyword, False)

    # Logic.
    def key_NOT(self) -> Predicate:
        self._argument()
        inner = self.key()
        return lambda c: not inner(c)

    def key_OR(self) -> Predicate:
        self._argument()
        first = self.key()
        self._argument()
        second = self.key()
        return lambda c: first(c) or second(c)

    # Numbers and sets.
    def key_LARGER(self) -> Predicate:
        self.needs_metadata = True
        self._argument()
        size = self.reader.number()
        return lambda c: c.row.size > size

    def key_SMALLER(self) -> Predicate:
        self.needs_metadata = True
        self._argument()
        size = self.reader.number()
        return lambda c: c.row.size < size

    def key_UID(self) -> Predicate:
        self._argument()
        uid_set: SequenceSet = self.reader.sequence_set()
        return lambda c: uid_set.contains(c.row.uid, c.largest_uid)

    def key_MODSEQ(self) -> Predicate:
        # RFC 7162 section 3.1.5: MODSEQ [entry-name entry-type] mod-sequence.
        self._argument()
        self.uses_modseq = True
        if self.reader.peek() == 0x22:
            self.reader.quoted()
            self._argument()
            self.reader.atom()
            self._argument()
        modseq = self.reader.number()
        return lambda c: c.row.modseq >= modseq

    # Dates.
    def _date(self) -> datetime:
        self.needs_metadata = True
        self._argument()
        return self.reader.date()

    def key_BEFORE(self) -> Predicate:
        day = self._date()
        return lambda c: _internal_day(c) < day

    def key_ON(self) -> Predicate:
        day = self._date()
        return lambda c: _internal_day(c) == day

    def key_SINCE(self) -> Predicate:
        day = self._date()
        return lambda c: _internal_day(c) >= day

    def _sent(self, test: Callable[[datetime], bool]) -> Predicate:
        self._needs("header")

        def predicate(c: Candidate) -> bool:
            sent = c.sent_date()
            return sent is not None and test(sent)

        return predicate

    def key_SENTBEFORE(self) -> Predicate:
        day = self._date()
        return self._sent(lambda sent: sent < day)

    def key_SENTON(self) -> Predicate:
        day = self._date()
        return self._sent(lambda sent: sent == day)

    def key_SENTSINCE(self) -> Predicate:
        day = self._date()
        return self._sent(lambda sent: sent >= day)

    # Text.
    def _header_key(self, name: str) -> Predicate:
        self._argument()
        needle = self.text()
        self._needs("header")
        return lambda c: needle in c.header_values(name).casefold()

    def key_FROM(self) -> Predicate:
        return self._header_key("From")

    def key_TO(self) -> Predicate:
        return self._header_key("To")

    def key_CC(self) -> Predicate:
        return self._header_key("Cc")

    def key_BCC(self) -> Predicate:
        return self._header_key("Bcc")

    def key_SUBJECT(self) -> Predicate:
        return self._header_key("Subject")

    def key_HEADER(self) -> Predicate:
        self._argument()
        name = self.reader.astring()
        self._argument()
        needle = self.text()
        self._needs("header")
        if not needle:
            return lambda c: c.has_header(name)
        return lambda c: needle in c.header_values(name).casefold()

    def key_BODY(self) -> Predicate:
        self._argument()
        needle = self.text()
        self._needs("full")
        return lambda c: c.body_contains(needle)

    def key_TEXT(self) -> Predicate:
        self._argument()
        needle = self.text()
        self._needs("full")

        def predicate(c: Candidate) -> bool:
            header = bodystructure.split_message(c.row.raw)[0]
            if needle in header.decode("utf-8", "replace").casefold():
                return True
            return c.body_contains(needle)

        return predicate


def _all(keys: list[Predicate]) -> Predicate:
    if len(keys) == 1:
        return keys[0]
    return lambda c: all(key(c) for key in keys)


def parse_search(reader: CommandReader) -> SearchProgram:
    """Parse ``[CHARSET name] search-key *(SP search-key)``."""
    charset = "US-ASCII"
    if reader.buffer[reader.position : reader.position + 8].upper() == b"CHARSET ":
        reader.atom()
        reader.sp()
        charset = reader.astring().upper()
        if charset not in SUPPORTED_CHARSETS:
            raise CommandFailed(
                f"charset {charset} is not supported",
                code="BADCHARSET (" + " ".join(SUPPORTED_CHARSETS) + ")",
            )
        reader.sp()
    parser = _Parser(reader, charset)
    predicate = parser.program()
    reader.end()
    return SearchProgram(
        predicate, parser.content, parser.needs_metadata, parser.uses_modseq
    )
