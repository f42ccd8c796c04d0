"""SMTP delivery with smtplib and swaks against the email module."""

from __future__ import annotations

import base64
import shutil
import smtplib
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.mail.conftest import (
    PASSWORD,
    MailServer,
    start_mail_server,
    stop_mail_server,
)

MESSAGE = (
    b"From: a@far.net\r\nTo: user@example.com\r\nSubject: hello\r\n\r\nbody line\r\n"
)


def client(server: MailServer) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", server.port, timeout=30)


def body_of(raw: bytes) -> bytes:
    """Return the message as sent: the stored bytes after our Received header."""
    assert raw.startswith(b"Received: ")
    end = raw.index(b"\r\n", raw.index(b"; ")) + 2
    return raw[end:]


def test_ehlo_lists_extensions(mail_server: MailServer) -> None:
    with client(mail_server) as smtp:
        code, _ = smtp.ehlo("client.test")
        assert code == 250
        for extension in (
            "size",
            "8bitmime",
            "smtputf8",
            "pipelining",
            "enhancedstatuscodes",
            "starttls",
            "auth",
        ):
            assert smtp.has_extn(extension), extension
        assert smtp.esmtp_features["size"] == str(25 * 1024 * 1024)


def test_delivery_stores_message_whole(mail_server: MailServer) -> None:
    mail_server.add_mailbox("user@example.com")
    with client(mail_server) as smtp:
        refused = smtp.sendmail("a@far.net", ["User@Example.com"], MESSAGE)
    assert refused == {}
    (message,) = mail_server.inbox("user@example.com")
    assert body_of(message.raw) == MESSAGE
    assert b"by mx.test (OneStack) with ESMTP" in message.raw
    assert message.mail_from == "a@far.net"
    assert message.subject == "hello"
    assert message.uid == 1
    types = [type_ for type_, _ in mail_server.events]
    assert "emailReceived" in types
    assert "mailFolderChanged" in types


@pytest.mark.parametrize(
    ("address", "code", "enhanced"),
    [
        ("nobody@example.com", 550, b"5.1.1"),
        ("off@example.com", 550, b"5.2.1"),
        ("full@example.com", 452, b"4.2.2"),
        ("someone@far.net", 554, b"5.7.1"),
        ("no-at-sign", 550, b"5.1.3"),
    ],
)
def test_recipient_rejections(
    mail_server: MailServer, address: str, code: int, enhanced: bytes
) -> None:
    mail_server.add_mailbox("user@example.com")
    mail_server.add_mailbox("off@example.com", enabled=False)
    mail_server.add_mailbox("full@example.com", quota=1000)
    with client(mail_server) as smtp:
        smtp.sendmail(
            "a@far.net",
            ["full@example.com"],
            b"Subject: x\r\n\r\n" + b"y" * 500 + b"\r\n",
        )
        smtp.ehlo()
        # 500 more bytes would pass the quota, which is 452 (try later).
        smtp.mail("a@far.net", ["SIZE=500"])
        reply_code, text = smtp.rcpt(address)
    assert reply_code == code
    assert text.startswith(enhanced)


def test_message_larger_than_quota(mail_server: MailServer) -> None:
    mail_server.add_mailbox("small@example.com", quota=2000)
    with client(mail_server) as smtp:
        smtp.ehlo()
        smtp.mail("a@far.net", ["SIZE=5000"])
        code, text = smtp.rcpt("small@example.com")
        assert (code, text[:5]) == (552, b"5.3.4")
        smtp.rset()
        smtp.mail("a@far.net")
        assert smtp.rcpt("small@example.com")[0] == 250
        code, text = smtp.data(b"Subject: big\r\n\r\n" + (b"z" * 98 + b"\r\n") * 30)
    assert (code, text[:5]) == (552, b"5.3.4")
    assert mail_server.inbox("small@example.com") == []


def test_too_many_recipients(tmp_path: Path) -> None:
    server, thread = start_mail_server(tmp_path / "data", {"maxRecipients": 2})
    try:
        for name in ("a", "b", "c"):
            server.add_mailbox(f"{name}@example.com")
        with client(server) as smtp:
            smtp.ehlo()
            smtp.mail("x@far.net")
            assert smtp.rcpt("a@example.com")[0] == 250
            assert smtp.rcpt("b@example.com")[0] == 250
            code, text = smtp.rcpt("c@example.com")
        assert (code, text[:5]) == (452, b"4.5.3")
    finally:
        stop_mail_server(server, thread)


def test_oversize_message_rejected(tmp_path: Path) -> None:
    server, thread = start_mail_server(tmp_path / "data", {"maxMessageSize": 4096})
    try:
        server.add_mailbox("user@example.com")
        with client(server) as smtp:
            smtp.ehlo()
            assert smtp.esmtp_features["size"] == "4096"
            code, _ = smtp.mail("a@far.net", ["SIZE=10000"])
            assert code == 552
            smtp.rset()
            smtp.mail("a@far.net")
            smtp.rcpt("user@example.com")
            code, text = smtp.data(
                b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 100
            )
        assert (code, text[:5]) == (552, b"5.3.4")
        assert server.inbox("user@example.com") == []
    finally:
        stop_mail_server(server, thread)


def test_long_line_rejected(mail_server: MailServer) -> None:
    mail_server.add_mailbox("user@example.com")
    with client(mail_server) as smtp:
        smtp.ehlo()
        smtp.mail("a@far.net")
        smtp.rcpt("user@example.com")
        code, text = smtp.data(b"Subject: long\r\n\r\n" + b"x" * 1200 + b"\r\n")
    assert code == 500
    assert text.startswith(b"5.5.2")
    assert mail_server.inbox("user@example.com") == []


def raw_session(port: int, payload: bytes) -> list[bytes]:
    """Send ``payload`` in one write and return the reply lines up to QUIT's."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")
        greeting = reader.readline()
        assert greeting.startswith(b"220 ")
        sock.sendall(payload)
        replies: list[bytes] = []
        while not replies or not replies[-1].startswith(b"221"):
            line = reader.readline()
            if not line:
                break
            if line[3:4] == b" ":
                replies.append(line.rstrip(b"\r\n"))
        return replies


def test_pipelined_commands(mail_server: MailServer) -> None:
    mail_server.add_mailbox("user@example.com")
    mail_server.add_mailbox("second@example.com")
    payload = (
        b"EHLO client.test\r\n"
        b"MAIL FROM:<a@far.net>\r\n"
        b"RCPT TO:<user@example.com>\r\n"
        b"RCPT TO:<nobody@example.com>\r\n"
        b"RCPT TO:<second@example.com>\r\n"
        b"DATA\r\n"
        b"Subject: piped\r\n\r\n..leading dot\r\n.\r\n"
        b"QUIT\r\n"
    )
    replies = raw_session(mail_server.port, payload)
    codes = [line[:3] for line in replies]
    assert codes == [b"250", b"250", b"250", b"550", b"250", b"354", b"250", b"221"]
    (first,) = mail_server.inbox("user@example.com")
    (second,) = mail_server.inbox("second@example.com")
    assert body_of(first.raw) == b"Subject: piped\r\n\r\n.leading dot\r\n"
    assert first.raw == second.raw


def test_dot_stuffing_round_trip(mail_server: MailServer) -> None:
    mail_server.add_mailbox("user@example.com")
    message = b"Subject: dots\r\n\r\n.\r\n..\r\n.x\r\nend\r\n"
    with client(mail_server) as smtp:
        smtp.sendmail("a@far.net", ["user@example.com"], message)
    (stored,) = mail_server.inbox("user@example.com")
    assert body_of(stored.raw) == message


def test_8bit_and_smtputf8_byte_exact(mail_server: MailServer) -> None:
    mail_server.add_mailbox("user@example.com")
    latin = "Subject: caf\xe9\r\nContent-Type: text/plain; charset=latin-1\r\n\r\nna\xefve \xff\r\n".encode(
        "latin-1"
    )
    utf8 = "From: Jürgen <jürgen@bücher.example>\r\nSubject: Grüße\r\n\r\nÜber 😀\r\n".encode()
    with client(mail_server) as smtp:
        smtp.ehlo()
        smtp.sendmail(
            "a@far.net", ["user@example.com"], latin, mail_options=["BODY=8BITMIME"]
        )
        smtp.sendmail(
            "jürgen@bücher.example",
            ["user@example.com"],
            utf8,
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )
    stored = sorted(mail_server.inbox("user@example.com"), key=lambda m: m.uid)
    assert body_of(stored[0].raw) == latin
    assert body_of(stored[1].raw) == utf8
    assert stored[1].mail_from == "jürgen@bücher.example"
    assert stored[1].subject == "Grüße"


def test_bare_lf_rejected(mail_server: MailServer) -> None:
    mail_server.add_mailbox("user@example.com")
    payload = (
        b"EHLO client.test\r\n"
        b"MAIL FROM:<a@far.net>\r\n"
        b"RCPT TO:<user@example.com>\r\n"
        b"DATA\r\n"
        b"Subject: bare\r\n\r\nfirst\nsecond\n.\nMAIL FROM:<evil@far.net>\r\n.\r\n"
        b"QUIT\r\n"
    )
    replies = raw_session(mail_server.port, payload)
    assert replies[-2].startswith(b"550 5.6.11")
    assert replies[-1].startswith(b"221")
    assert mail_server.inbox("user@example.com") == []


def test_auth_needs_tls_off_loopback_only(mail_server: MailServer) -> None:
    mail_server.add_mailbox("user@example.com")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with client(mail_server) as smtp:
        smtp.starttls(context=context)
        smtp.ehlo()
        assert "PLAIN" in smtp.esmtp_features["auth"]
        with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
            smtp.login("user@example.com", "wrong password")
        assert failed.value.smtp_code == 535
        code, _ = smtp.login("user@example.com", PASSWORD)
        assert code == 235
        refused = smtp.sendmail("user@example.com", ["someone@far.net"], MESSAGE)
    assert refused == {}
    queued = mail_server.run(_queue_rows(mail_server))
    assert queued == [("user@example.com", "someone@far.net")]


async def _queue_rows(server: MailServer) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from onestack.store.tables import outbound_queue

    async with server.store.engine.connect() as conn:
        rows = await conn.execute(
            select(outbound_queue.c.mail_from, outbound_queue.c.rcpt_to)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_auth_login_mechanism(mail_server: MailServer) -> None:
    mail_server.add_mailbox("user@example.com")
    with client(mail_server) as smtp:
        smtp.ehlo()
        code, challenge = smtp.docmd("AUTH", "LOGIN")
        assert (code, base64.b64decode(challenge)) == (334, b"Username:")
        code, challenge = smtp.docmd(base64.b64encode(b"user@example.com").decode())
        assert (code, base64.b64decode(challenge)) == (334, b"Password:")
        code, text = smtp.docmd(base64.b64encode(PASSWORD.encode()).decode())
    assert (code, text[:5]) == (235, b"2.7.0")


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
def test_swaks_starttls_auth_pipelining(mail_server: MailServer) -> None:
    mail_server.add_mailbox("user@example.com")
    result = subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{mail_server.port}",
            "--from",
            "user@example.com",
            "--to",
            "user@example.com",
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "user@example.com",
            "--auth-password",
            PASSWORD,
            "--pipeline",
            "--header",
            "Subject: from swaks",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<-  220 2.0.0 Ready to start TLS" in result.stdout
    assert "<~  235 2.7.0" in result.stdout  # "~" marks lines sent over TLS
    (message,) = mail_server.inbox("user@example.com")
    assert message.subject == "from swaks"
    assert b"with ESMTPSA" in message.raw
