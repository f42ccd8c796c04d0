"""FETCH items: sections, partial fetches, ENVELOPE and BODYSTRUCTURE."""

from __future__ import annotations

import imaplib
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient

from tests.mail.imap.conftest import PASSWORD, ImapHarness, make_message


def nested_message() -> bytes:
    """multipart/mixed of (multipart/alternative of text and html), a PDF, a message."""
    inner = EmailMessage()
    inner["From"] = "Inner <inner@example.net>"
    inner["Subject"] = "forwarded"
    inner.set_content("inner body\n")

    message = EmailMessage()
    message["From"] = "Carol <carol@example.org>"
    message["To"] = "alice@example.com, Bob <bob@example.com>"
    message["Cc"] = "dave@example.org"
    message["Subject"] = "nested"
    message["Message-ID"] = "<nested@example.org>"
    message["Date"] = "Tue, 1 Mar 2022 10:00:00 +0000"
    message.set_content("plain text\n")
    message.add_alternative("<p>html text</p>\n", subtype="html")
    message.add_attachment(
        b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="doc.pdf"
    )
    message.add_attachment(inner)
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_bodystructure_of_nested_multipart(imap: ImapHarness) -> None:
    imap.deliver("alice@example.com", nested_message())
    with IMAPClient("127.0.0.1", imap.port, ssl=False) as client:
        client.login("alice@example.com", PASSWORD)
        client.select_folder("INBOX", readonly=True)
        data = client.fetch([1], ["BODYSTRUCTURE", "ENVELOPE", "BODY"])[1]

    structure = data[b"BODYSTRUCTURE"]
    assert structure.is_multipart
    parts, subtype = structure[0], structure[1]
    assert subtype == b"mixed"
    alternative = parts[0]
    assert alternative.is_multipart
    assert alternative[1] == b"alternative"
    text, html = alternative[0]
    assert (text[0], text[1]) == (b"text", b"plain")
    assert text[2] == (b"charset", b"utf-8")
    assert text[6] == len(b"plain text\r\n")
    assert (html[0], html[1]) == (b"text", b"html")
    pdf = parts[1]
    assert (pdf[0], pdf[1]) == (b"application", b"pdf")
    assert pdf[5] == b"BASE64"
    assert pdf[8][0] == b"attachment"
    assert pdf[8][1] == (b"filename", b"doc.pdf")
    forwarded = parts[2]
    assert (forwarded[0], forwarded[1]) == (b"message", b"rfc822")
    assert forwarded[7][1] == b"forwarded"  # subject in the inner envelope
    assert forwarded[8][0] == b"text"  # its body structure

    envelope = data[b"ENVELOPE"]
    assert envelope.subject == b"nested"
    assert envelope.from_[0].name == b"Carol"
    assert envelope.from_[0].mailbox == b"carol"
    assert envelope.from_[0].host == b"example.org"
    assert [str(address) for address in envelope.to] == [
        "alice@example.com",
        "Bob <bob@example.com>",
    ]
    assert envelope.cc[0].mailbox == b"dave"
    assert envelope.message_id == b"<nested@example.org>"
    assert len(data[b"BODY"][0]) == 3  # BODY has the parts without extension data


def test_body_sections(imap: ImapHarness) -> None:
    raw = nested_message()
    imap.deliver("alice@example.com", raw)
    client = imaplib.IMAP4("127.0.0.1", imap.port)
    client.login("alice@example.com", PASSWORD)
    client.select("INBOX")

    def section(spec: str) -> bytes:
        typ, data = client.fetch("1", f"(BODY.PEEK[{spec}])")
        assert typ == "OK"
        return data[0][1]

    assert section("") == raw
    header, _, body = raw.partition(b"\r\n\r\n")
    assert section("HEADER") == header + b"\r\n\r\n"
    assert section("TEXT") == body
    assert section("1.1") == b"plain text\r\n"
    assert section("1.2") == b"<p>html text</p>\r\n"
    assert b"Content-Type: application/pdf" in section("2.MIME")
    assert section("2").strip() == b"JVBERi0xLjQgZmFrZQ=="
    assert b"Subject: forwarded" in section("3.HEADER")
    assert section("3.TEXT") == b"inner body\r\n"
    assert section("3.1") == b"inner body\r\n"
    assert (
        section("HEADER.FIELDS (SUBJECT CC)")
        == b"Cc: dave@example.org\r\nSubject: nested\r\n\r\n"
    )
    not_fields = section("HEADER.FIELDS.NOT (SUBJECT)")
    assert b"Subject:" not in not_fields
    assert b"From: Carol" in not_fields

    typ, data = client.fetch("1", "(FLAGS)")
    assert data == [b"1 (FLAGS ())"]  # PEEK left \Seen alone
    typ, data = client.fetch("1", "(BODY[]<10.20>)")
    assert data[0][0].startswith(b"1 (BODY[]<10> {20}")
    assert data[0][1] == raw[10:30]
    assert b"\\Seen" in data[0][0] + data[1]  # BODY[] sets \Seen and reports it
    typ, data = client.fetch("1", "(BODY.PEEK[TEXT]<0.5> BODY.PEEK[]<100000.10>)")
    assert data[0][1] == body[:5]
    assert data[1][1] == b""  # a partial past the end is empty
    with pytest.raises(imaplib.IMAP4.error, match="no body part 9"):
        client.fetch("1", "(BODY.PEEK[9])")
    client.logout()


def test_rfc822_items(imap: ImapHarness) -> None:
    raw = make_message(7)
    imap.deliver("alice@example.com", raw)
    client = imaplib.IMAP4("127.0.0.1", imap.port)
    client.login("alice@example.com", PASSWORD)
    client.select("INBOX")
    typ, data = client.fetch("1", "(RFC822.HEADER RFC822.SIZE)")
    header, _, body = raw.partition(b"\r\n\r\n")
    assert data[0][1] == header + b"\r\n\r\n"
    assert f"RFC822.SIZE {len(raw)}".encode() in data[1]
    typ, data = client.fetch("1", "(FLAGS)")
    assert data == [b"1 (FLAGS ())"]  # RFC822.HEADER does not set \Seen
    typ, data = client.fetch("1", "(RFC822.TEXT)")
    assert data[0][1] == body
    typ, data = client.fetch("1", "(RFC822)")
    assert data[0][1] == raw
    typ, data = client.fetch("1", "ALL")
    assert b"ENVELOPE" in data[0]
    assert b"\\Seen" in data[0]
    typ, data = client.fetch("1", "FULL")
    assert b"BODY (" in data[0]
    typ, data = client.uid("FETCH", "1", "(INTERNALDATE)")
    assert b"UID 1" in data[0]
    assert b"INTERNALDATE" in data[0]
