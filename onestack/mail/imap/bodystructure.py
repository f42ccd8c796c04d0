"""ENVELOPE, BODYSTRUCTURE and body sections (RFC 3501 sections 6.4.5, 7.4.2).

Messages are parsed with the standard library's ``email`` package under the
``compat32`` policy, which keeps header values as sent (folding and encoded
words included), as the ENVELOPE of RFC 3501 requires. Parsed messages are
kept in a small LRU cache by message id, since clients fetch the structure and
then the parts of one message in quick succession. The ENVELOPE and
BODYSTRUCTURE responses are kept in a larger one.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from typing import Generic, TypeVar

from onestack.mail.imap.responses import BadCommand, nstring, quote

_parser = email.parser.BytesParser(policy=email.policy.compat32)
_header_parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
K = TypeVar("K")
V = TypeVar("V")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


class LruCache(Generic[K, V]):
    """A mapping that drops its least recently used entries beyond ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def __contains__(self, key: K) -> bool:
        return key in self._items

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Summary:
    size: int
    internal_date: datetime
    header: bytes


# Header blocks up to this size are kept in the summary cache.
MAX_CACHED_HEADER = 4096
# Characters of decoded body text kept for searches, per server.
MAX_CACHED_TEXT = 16 * 1024 * 1024


class MessageCache:
    """The parsed messages and responses an IMAP server keeps, by message id.

    A stored message never changes (a MOVE keeps its row and bytes), so an
    entry stays valid as long as the id names the same database row. Each
    server has its own cache because ids are only unique within one database.
    """

    def __init__(self, parsed: int = 256, rendered: int = 20_000) -> None:
        self._parsed: LruCache[int, Message] = LruCache(parsed)
        # ENVELOPE, BODY and BODYSTRUCTURE responses, about 0.5 KB each.
        self.rendered: LruCache[tuple[int, str], bytes] = LruCache(rendered)
        # Decoded header fields for SEARCH.
        self.headers: LruCache[int, dict[bytes, str]] = LruCache(rendered)
        # Size, internal date and header block (when short), so that header
        # fetches need no database read once a message has been seen.
        self.summaries: LruCache[int, Summary] = LruCache(rendered)
        self._fields: LruCache[int, list[tuple[bytes, bytes]]] = LruCache(parsed * 4)
        # Casefolded body text of MIME-encoded messages for SEARCH BODY and
        # TEXT, bounded by characters rather than entries.
        self._texts: OrderedDict[int, str] = OrderedDict()
        self._text_size = 0

    def body_text(self, message_id: int) -> str | None:
        text = self._texts.get(message_id)
        if text is not None:
            self._texts.move_to_end(message_id)
        return text

    def put_body_text(self, message_id: int, text: str) -> None:
        if len(text) > MAX_CACHED_TEXT // 16 or message_id in self._texts:
            return
        self._texts[message_id] = text
        self._text_size += len(text)
        while self._text_size > MAX_CACHED_TEXT:
            _, dropped = self._texts.popitem(last=False)
            self._text_size -= len(dropped)

    def fields(self, message_id: int, header: bytes) -> list[tuple[bytes, bytes]]:
        """Return the header block split into fields, cached by message id."""
        fields = self._fields.get(message_id)
        if fields is None:
            fields = header_fields(header)
            self._fields.put(message_id, fields)
        return fields

    def remember(
        self, message_id: int, size: int, internal_date: datetime, raw: bytes
    ) -> None:
        """Keep a message's summary after its bytes were read."""
        if message_id in self.summaries:
            return
        header = split_message(raw)[0]
        if len(header) > MAX_CACHED_HEADER or header == raw and len(raw) >= 8192:
            return  # long, or possibly cut short by a header-only read
        self.summaries.put(message_id, Summary(size, internal_date, header))

    def parsed(self, message_id: int, raw: bytes) -> Message:
        """Return the message parsed from its whole raw bytes."""
        message = self._parsed.get(message_id)
        if message is None:
            message = _parser.parsebytes(raw)
            self._parsed.put(message_id, message)
        return message


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """Split raw bytes into the header block (with its blank line) and the body."""
    end = raw.find(b"\r\n\r\n")
    if end >= 0 and b"\n\n" not in raw[:end]:
        return raw[: end + 4], raw[end + 4 :]
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    return raw[: match.end()], raw[match.end() :]


def header_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """Split a header block into (lowercased name, whole field with CRLF)."""
    fields: list[tuple[bytes, bytes]] = []
    for line in block.splitlines(keepends=True):
        if not line.strip():
            continue
        if line[:1] in (b" ", b"\t") and fields:
            name, text = fields[-1]
            fields[-1] = (name, text + line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        fields.append((name, line))
    return fields


def filter_headers(
    fields: list[tuple[bytes, bytes]], names: list[str], exclude: bool
) -> bytes:
    """HEADER.FIELDS and HEADER.FIELDS.NOT: the chosen fields and a blank line."""
    wanted = {name.lower().encode() for name in names}
    kept = [text for name, text in fields if (name in wanted) != exclude]
    return b"".join(kept) + b"\r\n"


# --- ENVELOPE ---------------------------------------------------------------


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    return re.sub(r"\r?\n(?=[ \t])", "", str(value))


def _addresses(message: Message, name: str) -> bytes:
    values = message.get_all(name)
    if not values:
        return b"NIL"
    parts = []
    for display, address in email.utils.getaddresses(
        [re.sub(r"\r?\n(?=[ \t])", "", str(v)) for v in values]
    ):
        if not address and not display:
            continue
        mailbox, _, host = (
            address.rpartition("@") if "@" in address else (address, "", "")
        )
        parts.append(
            b"(%s NIL %s %s)"
            % (
                nstring(display or None),
                nstring(mailbox or None),
                nstring(host or None),
            )
        )
    if not parts:
        return b"NIL"
    return b"(" + b"".join(parts) + b")"


def parse_headers(raw: bytes) -> Message:
    """Parse only the header block (enough for ENVELOPE)."""
    return _header_parser.parsebytes(split_message(raw)[0])


def envelope(message: Message) -> bytes:
    """Return the ENVELOPE structure of a message."""
    sender = "Sender" if message.get("Sender") else "From"
    reply_to = "Reply-To" if message.get("Reply-To") else "From"
    return b"(%s)" % b" ".join(
        (
            nstring(_header(message, "Date")),
            nstring(_header(message, "Subject")),
            _addresses(message, "From"),
            _addresses(message, sender),
            _addresses(message, reply_to),
            _addresses(message, "To"),
            _addresses(message, "Cc"),
            _addresses(message, "Bcc"),
            nstring(_header(message, "In-Reply-To")),
            nstring(_header(message, "Message-ID")),
        )
    )


# --- BODYSTRUCTURE ----------------------------------------------------------


def _params(part: Message, header: str) -> bytes:
    params = part.get_params(header=header) or []
    if (
        header == "content-type"
        and len(params) < 2
        and part.get_content_maintype() == "text"
    ):
        # RFC 2045 section 5.2: text without a charset is US-ASCII.
        params = [("", ""), ("charset", "us-ascii")]
    pairs = [
        quote(key) + b" " + quote(email.utils.collapse_rfc2231_value(value))
        for key, value in params[1:]
        if key
    ]
    return b"(" + b" ".join(pairs) + b")" if pairs else b"NIL"


def _disposition(part: Message) -> bytes:
    value = part.get("Content-Disposition")
    if value is None:
        return b"NIL"
    kind = str(value).split(";", 1)[0].strip() or "attachment"
    return b"(%s %s)" % (quote(kind), _params(part, "content-disposition"))


def _payload_bytes(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("ascii", "surrogateescape")
    return b""


def structure(part: Message, extended: bool) -> bytes:
    """Return BODYSTRUCTURE (``extended``) or BODY of a message or part."""
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        children = b"".join(structure(child, extended) for child in part.get_payload())
        out = b"(%s %s" % (children, quote(part.get_content_subtype()))
        if extended:
            out += b" %s %s %s %s" % (
                _params(part, "content-type"),
                _disposition(part),
                nstring(_header(part, "Content-Language")),
                nstring(_header(part, "Content-Location")),
            )
        return out + b")"

    maintype, subtype = part.get_content_maintype(), part.get_content_subtype()
    encoding = (_header(part, "Content-Transfer-Encoding") or "7BIT").strip()
    if maintype == "message" and subtype == "rfc822" and part.is_multipart():
        inner = part.get_payload(0)
        # NOTE: the size of a message/rfc822 part comes from the regenerated
        # message, which can differ by a few octets from the stored bytes.
        body = inner.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))
    else:
        inner = None
        body = _payload_bytes(part)
    fields = b"%s %s %s %s %s %s %d" % (
        quote(maintype),
        quote(subtype),
        _params(part, "content-type"),
        nstring(_header(part, "Content-ID")),
        nstring(_header(part, "Content-Description")),
        quote(encoding.upper()),
        len(body),
    )
    if inner is not None:
        fields += b" %s %s %d" % (
            envelope(inner),
            structure(inner, extended),
            body.count(b"\n"),
        )
    elif maintype == "text":
        fields += b" %d" % body.count(b"\n")
    if extended:
        fields += b" %s %s %s %s" % (
            nstring(_header(part, "Content-MD5")),
            _disposition(part),
            nstring(_header(part, "Content-Language")),
            nstring(_header(part, "Content-Location")),
        )
    return b"(" + fields + b")"


# --- sections ---------------------------------------------------------------


def find_part(message: Message, path: tuple[int, ...]) -> Message:
    """Resolve a section part number such as 1.2.3 (RFC 3501 section 6.4.5)."""
    part = message
    for number in path:
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            part = part.get_payload(0)
        if part.is_multipart():
            children = part.get_payload()
            if not 1 <= number <= len(children):
                raise BadCommand(f"no body part {'.'.join(map(str, path))}")
            part = children[number - 1]
        elif number != 1:
            raise BadCommand(f"no body part {'.'.join(map(str, path))}")
    return part


def part_headers(part: Message) -> bytes:
    lines = [f"{name}: {value}\r\n" for name, value in part.items()]
    return "".join(lines).encode("ascii", "surrogateescape") + b"\r\n"


def part_body(part: Message) -> bytes:
    if part.is_multipart():
        raw = part.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))
        return split_message(raw)[1]
    return _payload_bytes(part)


def encapsulated(part: Message) -> Message | None:
    """Return the message inside a message/rfc822 part, if it is one."""
    if part.get_content_type() == "message/rfc822" and part.is_multipart():
        return part.get_payload(0)
    return None
