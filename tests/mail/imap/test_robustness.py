"""Malformed and hostile input, limits, TLS rules, timers and login throttling."""

from __future__ import annotations

import imaplib
import os
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from sqlalchemy import update

from onestack.mail.imap import session as session_module
from onestack.mail.imap.session import ImapSession
from onestack.store.tables import mailboxes
from onestack.throttle import ThrottlePolicy
from tests.mail.imap.conftest import PASSWORD, ImapHarness, RawClient, make_message


def still_serving(imap: ImapHarness) -> None:
    client = imaplib.IMAP4("127.0.0.1", imap.port)
    client.login("bob@example.com", PASSWORD)
    assert client.select("INBOX")[0] == "OK"
    client.logout()


def test_unbalanced_parentheses(imap: ImapHarness) -> None:
    client = RawClient(imap.port)
    client.login()
    client.command(b"s SELECT INBOX")
    reply = client.command(b"f FETCH 1:* (UID FLAGS")
    assert reply[-1].startswith(b"f BAD "), reply
    reply = client.command(b"g SEARCH (SEEN (UNSEEN)")
    assert reply[-1].startswith(b"g BAD "), reply
    reply = client.command(b"h FETCH 1:* UID)")
    assert reply[-1].startswith(b"h BAD "), reply
    assert client.command(b"n NOOP")[-1] == b"n OK NOOP completed\r\n"
    client.close()
    still_serving(imap)


def test_literal_longer_than_announced(imap: ImapHarness) -> None:
    client = RawClient(imap.port)
    client.send(b"a LOGIN {17}\r\n")
    assert client.readline().startswith(b"+ ")
    # 17 octets announced, more sent: the rest is read as the next part of
    # the command, which then no longer parses.
    client.send(b'alice@example.com-and-more-bytes "x"\r\n')
    assert client.readline().startswith(b"a BAD ")
    assert client.command(b"n NOOP")[-1] == b"n OK NOOP completed\r\n"
    client.close()
    still_serving(imap)


def test_huge_literal_announcement(imap: ImapHarness) -> None:
    client = RawClient(imap.port)
    client.login()
    reply = client.command(b"a APPEND INBOX {104857600}")
    assert reply[-1].startswith(b"a BAD [TOOBIG]"), reply
    assert client.command(b"n NOOP")[-1] == b"n OK NOOP completed\r\n"
    # A non-synchronising literal is already on its way: only closing helps.
    client.send(b"b APPEND INBOX {104857600+}\r\n" + b"x" * 1000)
    assert client.readline().startswith(b"* BYE [TOOBIG]")
    assert client.readline() == b""
    client.close()
    still_serving(imap)


def test_literal_limit_from_config(tmp_path: Path) -> None:
    harness = ImapHarness(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", maxLiteralSize=2048
    )
    try:
        harness.create_account("alice@example.com")
        client = imaplib.IMAP4("127.0.0.1", harness.port)
        client.login("alice@example.com", PASSWORD)
        assert client.append("INBOX", None, None, make_message(1))[0] == "OK"
        with pytest.raises(imaplib.IMAP4.error, match="TOOBIG"):
            client.append("INBOX", None, None, make_message(2, body="x" * 4096))
        assert client.noop()[0] == "OK"
    finally:
        harness.close()


def test_binary_garbage(imap: ImapHarness) -> None:
    client = RawClient(imap.port)
    garbage = os.urandom(4096).replace(b"\n", b"").replace(b"{", b"")
    client.send(garbage[:2000] + b"\r\n" + garbage[2000:] + b"\r\n")
    first = client.readline()
    assert first.startswith(b"* BAD ") or b" BAD " in first, first
    assert client.command(b"n NOOP")[-1].startswith(b"n OK"), "session should recover"
    client.close()
    still_serving(imap)


def test_overlong_line_closes_connection(imap: ImapHarness) -> None:
    client = RawClient(imap.port)
    client.send(b"a NOOP " + b"x" * (imap.config.imap.maxLineLength + 10) + b"\r\n")
    assert client.readline().startswith(b"* BYE command line too long")
    assert client.readline() == b""
    client.close()
    still_serving(imap)


def test_bad_responses_name_the_reason(imap: ImapHarness) -> None:
    client = RawClient(imap.port)
    assert client.command(b"a FROB")[-1] == b"a BAD unknown command FROB\r\n"
    assert client.command(b"b LOGIN")[-1] == b"b BAD expected a space\r\n"
    assert (
        client.command(b'c LOGIN "unterminated')[-1]
        == b"c BAD unterminated quoted string\r\n"
    )
    client.send(b"+ NOOP\r\n")
    assert client.readline() == b"* BAD missing command tag\r\n"
    client.close()


def test_logindisabled_without_tls_off_loopback(imap: ImapHarness) -> None:
    class Writer:
        def get_extra_info(self, name: str) -> Any:
            return ("192.0.2.10", 40000) if name == "peername" else None

    remote = ImapSession(imap.server, None, Writer())  # type: ignore[arg-type]
    assert not remote.login_allowed
    assert "LOGINDISABLED" in remote.capabilities()
    assert "AUTH=PLAIN" not in remote.capabilities()
    local = RawClient(imap.port)
    assert b"AUTH=PLAIN" in local.greeting
    local.close()


def test_starttls_then_login(tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    harness = ImapHarness(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        harness.server.ssl_context = server_context
        harness.create_account("alice@example.com")
        client = imaplib.IMAP4("127.0.0.1", harness.port)
        assert "STARTTLS" in client.capabilities
        client.starttls(ssl_context=client_context)
        assert "STARTTLS" not in client.capabilities
        assert client.login("alice@example.com", PASSWORD)[0] == "OK"
        assert client.select("INBOX")[0] == "OK"
        client.logout()

        # Plain text sent behind STARTTLS must not be run as if under TLS.
        raw = RawClient(harness.port)
        raw.send(b"a STARTTLS\r\nb LOGIN alice@example.com x\r\n")
        assert raw.readline() == b"* BYE data after STARTTLS\r\n"
        raw.close()
    finally:
        harness.close()


def test_autologout_before_login(
    imap: ImapHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "PREAUTH_TIMEOUT_SECONDS", 0.5)
    client = RawClient(imap.port)
    assert client.readline() == b"* BYE autologout timer expired\r\n"
    assert client.readline() == b""
    client.close()


def test_login_throttle_blocks_after_failures(imap: ImapHarness) -> None:
    imap.server.throttle.policy = ThrottlePolicy(delay_after=100, block_after=3)
    client = imaplib.IMAP4("127.0.0.1", imap.port)
    for _ in range(3):
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            client.login("alice@example.com", "wrong")
    with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
        client.login("alice@example.com", PASSWORD)


def test_disabled_or_deleted_account_is_shut_out(imap: ImapHarness) -> None:
    client = RawClient(imap.port)
    client.login()
    client.command(b"s SELECT INBOX")

    async def disable() -> int:
        found = await imap.mail.find_account("alice@example.com")
        assert found is not None
        async with imap.store.engine.begin() as conn:
            await conn.execute(
                update(mailboxes)
                .where(mailboxes.c.id == found[0].id)
                .values(enabled=False)
            )
        return found[0].id

    alice_id = imap.run(disable())
    imap.run(imap.server.on_event({"type": "mailboxUpdated", "data": {"id": alice_id}}))
    assert client.readline() == b"* BYE account disabled or deleted\r\n"
    assert client.readline() == b""
    client.close()
    refused = imaplib.IMAP4("127.0.0.1", imap.port)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        refused.login("alice@example.com", PASSWORD)

    async def soft_delete() -> None:
        async with imap.store.engine.begin() as conn:
            await conn.execute(
                update(mailboxes)
                .where(mailboxes.c.email == "bob@example.com")
                .values(deleted_at=datetime.now(UTC))
            )

    imap.run(soft_delete())
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        refused.login("bob@example.com", PASSWORD)
