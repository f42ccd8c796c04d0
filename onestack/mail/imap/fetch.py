"""FETCH data items (RFC 3501 sections 6.4.5 and 7.4.2, RFC 7162 MODSEQ)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onestack.mail.imap import bodystructure
from onestack.mail.imap.bodystructure import ParsedCache
from onestack.mail.imap.parser import CommandReader
from onestack.mail.imap.responses import BadCommand, flag_list, internal_date, literal

_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SIMPLE = frozenset(
    {
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.SIZE",
        "RFC822.TEXT",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",
    }
)
# Items whose answer needs the raw message bytes.
_NEEDS_RAW = frozenset({"ENVELOPE", "RFC822", "RFC822.HEADER", "RFC822.TEXT", "BODY", "BODYSTRUCTURE"})


_SECTION_START = frozenset(b"[")


@dataclass(frozen=True)
class FetchItem:
    """One FETCH data item; ``section`` items are BODY[...] and BODY.PEEK[...]."""

    name: str
    section: str | None = None  # the text between the brackets, normalised
    part: tuple[int, ...] = ()
    text: str = ""  # HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME or ""
    fields: tuple[str, ...] = ()
    partial: tuple[int, int] | None = None
    peek: bool = False

    @property
    def needs_raw(self) -> bool:
        return self.section is not None or self.name in _NEEDS_RAW

    @property
    def sets_seen(self) -> bool:
        if self.section is not None:
            return not self.peek
        return self.name in ("RFC822", "RFC822.TEXT")


def parse_items(reader: CommandReader) -> list[FetchItem]:
    """Parse the fetch-att list of a FETCH command (a macro, one item or a list)."""
    if reader.peek() == 0x28:
        reader.open_list()
        items: list[FetchItem] = []
        while not reader.close_list():
            if items:
                reader.sp()
            items.append(_parse_item(reader))
        if not items:
            raise BadCommand("empty fetch item list")
        return items
    start = reader.position
    word = reader.atom().upper()
    if word in _MACROS:
        return [FetchItem(name) for name in _MACROS[word]]
    reader.position = start
    return [_parse_item(reader)]


def _parse_item(reader: CommandReader) -> FetchItem:
    word = reader.atom(stop=_SECTION_START).upper()
    if word in ("BODY", "BODY.PEEK") and reader.peek() == 0x5B:
        return _parse_section(reader, peek=word == "BODY.PEEK")
    if word in _SIMPLE:
        return FetchItem(word)
    raise BadCommand(f"unknown fetch item {word}")


def _parse_section(reader: CommandReader, peek: bool) -> FetchItem:
    reader.expect(b"[", "[")
    part: list[int] = []
    text = ""
    fields: tuple[str, ...] = ()
    while reader.peek() is not None and 0x30 <= reader.peek() <= 0x39:  # type: ignore[operator]
        part.append(reader.nz_number())
        if reader.peek() != 0x2E:
            break
        reader.position += 1
    if reader.peek() != 0x5D:
        text = reader.atom().upper()
        allowed = {"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"}
        if part:
            allowed.add("MIME")
        if text not in allowed:
            raise BadCommand(f"invalid section {text}")
        if text.startswith("HEADER.FIELDS"):
            reader.sp()
            reader.open_list()
            names: list[str] = []
            while not reader.close_list():
                if names:
                    reader.sp()
                names.append(reader.astring())
            if not names:
                raise BadCommand("empty header field list")
            fields = tuple(name.upper() for name in names)
    reader.expect(b"]", "]")
    partial = None
    if reader.peek() == 0x3C:
        reader.position += 1
        start = reader.number()
        reader.expect(b".", "a partial length")
        partial = (start, reader.nz_number())
        reader.expect(b">", ">")
    spec = ".".join(map(str, part))
    if text:
        spec = f"{spec}.{text}" if spec else text
    if fields:
        spec += " (" + " ".join(fields) + ")"
    return FetchItem("BODY", spec, tuple(part), text, fields, partial, peek)


def section_bytes(item: FetchItem, message_id: int, raw: bytes, cache: ParsedCache) -> bytes:
    """Return the octets a BODY[section] item names."""
    if not item.part:
        # The top-level message: cut the stored bytes directly, no parsing.
        if item.text == "":
            return raw
        header, body = bodystructure.split_message(raw)
        if item.text == "TEXT":
            return body
        if item.text == "HEADER":
            return header
        return bodystructure.filter_headers(
            header, list(item.fields), item.text == "HEADER.FIELDS.NOT"
        )

    part = bodystructure.find_part(cache.get(message_id, raw), item.part)
    if item.text == "":
        return bodystructure.part_body(part)
    if item.text == "MIME":
        return bodystructure.part_headers(part)
    inner = bodystructure.encapsulated(part)
    if inner is None:
        # RFC 3501: HEADER and TEXT of a part apply to message/rfc822 parts.
        return b""
    if item.text == "TEXT":
        return bodystructure.part_body(inner)
    header = bodystructure.part_headers(inner)
    if item.text == "HEADER":
        return header
    return bodystructure.filter_headers(
        header, list(item.fields), item.text == "HEADER.FIELDS.NOT"
    )


def render(
    sequence: int,
    row: Any,
    flags: tuple[str, ...],
    items: list[FetchItem],
    cache: ParsedCache,
) -> bytes:
    """Build one untagged FETCH response for a message row."""
    parts: list[bytes] = []
    for item in items:
        name = item.name
        if item.section is not None:
            data = section_bytes(item, row.id, row.raw, cache)
            label = f"BODY[{item.section}]"
            if item.partial is not None:
                start, length = item.partial
                data = data[start : start + length]
                label += f"<{start}>"
            parts.append(label.encode() + b" " + literal(data))
        elif name == "UID":
            parts.append(b"UID %d" % row.uid)
        elif name == "FLAGS":
            parts.append(b"FLAGS " + flag_list(flags))
        elif name == "INTERNALDATE":
            parts.append(b"INTERNALDATE " + internal_date(row.internal_date))
        elif name == "RFC822.SIZE":
            parts.append(b"RFC822.SIZE %d" % row.size)
        elif name == "MODSEQ":
            parts.append(b"MODSEQ (%d)" % row.modseq)
        elif name == "RFC822":
            parts.append(b"RFC822 " + literal(row.raw))
        elif name == "RFC822.HEADER":
            parts.append(b"RFC822.HEADER " + literal(bodystructure.split_message(row.raw)[0]))
        elif name == "RFC822.TEXT":
            parts.append(b"RFC822.TEXT " + literal(bodystructure.split_message(row.raw)[1]))
        elif name == "ENVELOPE":
            parts.append(b"ENVELOPE " + bodystructure.envelope(cache.get(row.id, row.raw)))
        elif name == "BODYSTRUCTURE":
            message = cache.get(row.id, row.raw)
            parts.append(b"BODYSTRUCTURE " + bodystructure.structure(message, True))
        elif name == "BODY":
            message = cache.get(row.id, row.raw)
            parts.append(b"BODY " + bodystructure.structure(message, False))
    return b"* %d FETCH (%s)\r\n" % (sequence, b" ".join(parts))
