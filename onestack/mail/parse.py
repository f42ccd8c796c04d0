"""Message parsing for the API: text and HTML bodies, headers, attachments.

Everything is decoded by the standard ``email`` package (policy.default):
RFC 2047 encoded words, MIME charsets, transfer encodings, and
multipart/alternative, where the plain and HTML versions are both returned.
"""

from __future__ import annotations

import email.policy
import html
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

from onestack.store.mail import decode_header_text

PREVIEW_CHARS = 200


@dataclass(frozen=True)
class Attachment:
    """A part that is an attachment rather than a body."""

    name: str
    type: str
    size: int


@dataclass
class ParsedMessage:
    """A message decoded for display."""

    headers: dict[str, Any]
    body: str
    html: str
    attachments: list[Attachment] = field(default_factory=list)


def parse_message(raw: bytes) -> ParsedMessage:
    """Decode a stored message; damaged parts give empty text, never an error."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    headers = _headers(message)

    plain_part = _body_part(message, "plain")
    html_part = _body_part(message, "html")
    body = _text_of(plain_part) if plain_part is not None else ""
    html_text = _text_of(html_part) if html_part is not None else ""
    if not body and html_text:
        body = html_to_text(html_text)

    attachments = [_attachment(part) for part in _attachment_parts(message)]
    return ParsedMessage(
        headers=headers, body=body, html=html_text, attachments=attachments
    )


def preview(raw_start: bytes, limit: int = PREVIEW_CHARS) -> str:
    """Return the first ``limit`` characters of the text body from a message's start."""
    body = parse_message(raw_start).body
    return " ".join(body.split())[:limit]


def _headers(message: Message) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    for name, value in message.raw_items():
        text = decode_header_text(str(value))
        if name in headers:
            current = headers[name]
            headers[name] = (
                [*current, text] if isinstance(current, list) else [current, text]
            )
        else:
            headers[name] = text
    return headers


def _body_part(message: EmailMessage, subtype: str) -> EmailMessage | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except (KeyError, LookupError, ValueError):
        return None
    if part is None or part.get_content_subtype() != subtype:
        return None
    return part  # type: ignore[return-value]


def _text_of(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        # An unknown or wrong charset: show the bytes as UTF-8 with replacements.
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    return content if isinstance(content, str) else ""


def _attachment_parts(message: EmailMessage) -> list[EmailMessage]:
    found: list[EmailMessage] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        disposition = part.get_content_disposition()
        if disposition == "attachment" or (
            disposition == "inline" and part.get_filename()
        ):
            found.append(part)  # type: ignore[arg-type]
        elif (
            disposition is None
            and part.get_filename()
            and part.get_content_maintype() != "text"
        ):
            found.append(part)  # type: ignore[arg-type]
    return found


def _attachment(part: EmailMessage) -> Attachment:
    payload = part.get_payload(decode=True)
    size = len(payload) if isinstance(payload, bytes) else 0
    return Attachment(
        name=part.get_filename() or "", type=part.get_content_type(), size=size
    )


_TAG = re.compile(r"<[^>]*>")
_DROPPED = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BREAK = re.compile(r"<(br|/p|/div|/li|/tr|/h\d)\b[^>]*>", re.IGNORECASE)


def html_to_text(markup: str) -> str:
    """Return rough plain text of an HTML body, for messages without a text part."""
    text = _DROPPED.sub("", markup)
    text = _BREAK.sub("\n", text)
    text = html.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)
