"""FETCH data items (RFC 3501 sections 6.4.5 and 7.4.2, RFC 7162 MODSEQ)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from onestack.mail.imap import bodystructure
from onestack.mail.imap.bodystructure import MessageCache
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
# What of the raw bytes an item needs: "none", "header" (the header block),
# "full", or "structure" (full bytes unless the response is cached).
_CONTENT = {
    "ENVELOPE": "envelope",
    "RFC822": "full",
    "RFC822.HEADER": "header",
    "RFC822.TEXT": "full",
    "BODY": "structure",
    "BODYSTRUCTURE": "structure",
}
_STRUCTURE_KEYS = {"ENVELOPE": "E", "BODY": "B", "BODYSTRUCTURE": "S"}


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

    @functools.cached_property
    def label(self) -> bytes:
        """The item's name in the response, with its space: ``BODY[TEXT]<0> ``."""
        label = f"BODY[{self.section}]"
        if self.partial is not None:
            label += f"<{self.partial[0]}>"
        return label.encode() + b" "

    @property
    def content(self) -> str:
        if self.section is not None:
            top_header = not self.part and self.text.startswith("HEADER")
            return "header" if top_header else "full"
        return _CONTENT.get(self.name, "none")

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


def content_needed(
    items: list[FetchItem], message_ids: list[int], cache: MessageCache
) -> str:
    """Return how much of the raw bytes a FETCH must load: none, header or full."""
    levels = {item.content for item in items}
    if "full" in levels:
        return "full"
    for item in items:
        key = _STRUCTURE_KEYS.get(item.name) if item.section is None else None
        if key is None or all((i, key) in cache.rendered for i in message_ids):
            continue
        levels.add("full" if item.content == "structure" else "header")
    if "full" in levels:
        return "full"
    return "header" if "header" in levels else "none"


def _structure(name: str, row: Any, cache: MessageCache) -> bytes:
    """Return the cached or freshly built ENVELOPE, BODY or BODYSTRUCTURE."""
    key = (row.id, _STRUCTURE_KEYS[name])
    answer = cache.rendered.get(key)
    if answer is None:
        if name == "ENVELOPE":
            header = row.header if row.header is not None else row.raw
            answer = bodystructure.envelope(bodystructure.parse_headers(header))
        else:
            message = cache.parsed(row.id, row.raw)
            answer = bodystructure.structure(message, name == "BODYSTRUCTURE")
        cache.rendered.put(key, answer)
    return answer


def section_bytes(item: FetchItem, row: Any, cache: MessageCache) -> bytes:
    """Return the octets a BODY[section] item names."""
    if not item.part:
        # The top-level message: cut the stored bytes directly, no parsing.
        if item.text == "":
            return bytes(row.raw)
        if item.text == "TEXT":
            return bodystructure.split_message(row.raw)[1]
        header = (
            row.header
            if row.header is not None
            else bodystructure.split_message(row.raw)[0]
        )
        if item.text == "HEADER":
            return header
        # Clients ask for the same few fields of every message again and again.
        key = (row.id, item.section or "")
        chosen = cache.rendered.get(key)
        if chosen is None:
            chosen = bodystructure.filter_headers(
                cache.fields(row.id, header),
                list(item.fields),
                item.text == "HEADER.FIELDS.NOT",
            )
            cache.rendered.put(key, chosen)
        return chosen

    message_id, raw = row.id, row.raw
    part = bodystructure.find_part(cache.parsed(message_id, raw), item.part)
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
        bodystructure.header_fields(header),
        list(item.fields),
        item.text == "HEADER.FIELDS.NOT",
    )


def render(
    sequence: int,
    row: Any,
    flags: tuple[str, ...],
    items: list[FetchItem],
    cache: MessageCache,
) -> bytes:
    """Build one untagged FETCH response for a message row."""
    parts: list[bytes] = []
    for item in items:
        name = item.name
        if item.section is not None:
            data = section_bytes(item, row, cache)
            if item.partial is not None:
                start, length = item.partial
                data = data[start : start + length]
            parts.append(item.label + literal(data))
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
            header = (
                row.header
                if row.header is not None
                else bodystructure.split_message(row.raw)[0]
            )
            parts.append(b"RFC822.HEADER " + literal(header))
        elif name == "RFC822.TEXT":
            parts.append(
                b"RFC822.TEXT " + literal(bodystructure.split_message(row.raw)[1])
            )
        elif name in _STRUCTURE_KEYS:
            parts.append(name.encode() + b" " + _structure(name, row, cache))
    return b"* %d FETCH (%s)\r\n" % (sequence, b" ".join(parts))
