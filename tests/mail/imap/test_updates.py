"""Changes made elsewhere reach a session: EXISTS, EXPUNGE, FETCH FLAGS, IDLE."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from imapclient import IMAPClient

from tests.mail.imap.conftest import PASSWORD, ImapHarness, RawClient, make_message
from tests.support import ROOT


def login(imap: ImapHarness) -> IMAPClient:
    client = IMAPClient("127.0.0.1", imap.port, ssl=False, timeout=30)
    client.login("alice@example.com", PASSWORD)
    return client


def test_flag_change_seen_by_second_session(imap: ImapHarness) -> None:
    imap.deliver("alice@example.com", make_message(1))
    first, second = login(imap), login(imap)
    first.select_folder("INBOX")
    second.select_folder("INBOX")
    first.add_flags([1], [b"\\Flagged", b"\\Seen"])
    responses = second.noop()[1]
    assert (1, b"FETCH", (b"UID", 1, b"FLAGS", (b"\\Seen", b"\\Flagged"))) in responses
    assert second.noop()[1] == []  # reported once


def test_expunge_reaches_other_session_outside_fetch(imap: ImapHarness) -> None:
    for number in range(3):
        imap.deliver("alice@example.com", make_message(number))
    other = RawClient(imap.port)
    other.login()
    other.command(b"s SELECT INBOX")
    client = login(imap)
    client.select_folder("INBOX")
    client.delete_messages([2])
    client.expunge()

    # RFC 3501 section 7.4.1: no EXPUNGE during FETCH, STORE or SEARCH.
    reply = other.command(b"f FETCH 1:3 (UID)")
    assert not any(b"EXPUNGE" in line for line in reply)
    fetched = [line for line in reply if line.startswith(b"* ")]
    assert fetched == [b"* 1 FETCH (UID 1)\r\n", b"* 3 FETCH (UID 3)\r\n"]
    reply = other.command(b"n NOOP")
    assert reply[0] == b"* 2 EXPUNGE\r\n"
    reply = other.command(b"g FETCH 1:* (UID)")
    assert [line for line in reply if line.startswith(b"* ")] == [
        b"* 1 FETCH (UID 1)\r\n",
        b"* 2 FETCH (UID 3)\r\n",
    ]
    other.close()


def test_idle_wakes_on_delivered_mail(imap: ImapHarness) -> None:
    imap.server.idle_poll_seconds = 600
    imap.server.watch_seconds = 600  # only the event can wake it
    client = login(imap)
    client.select_folder("INBOX")
    client.idle()
    imap.deliver("alice@example.com", make_message(1))
    responses = client.idle_check(timeout=10)
    client.idle_done()
    assert (1, b"EXISTS") in responses


def test_idle_sees_moves_and_flags_from_elsewhere(imap: ImapHarness) -> None:
    imap.server.idle_poll_seconds = 600
    imap.server.watch_seconds = 600
    imap.deliver("alice@example.com", make_message(1))
    imap.deliver("alice@example.com", make_message(2))
    client = login(imap)
    client.select_folder("INBOX")
    client.idle()

    other = login(imap)
    other.select_folder("INBOX")
    other.add_flags([2], [b"\\Seen"])
    seen = client.idle_check(timeout=10)
    assert (2, b"FETCH", (b"UID", 2, b"FLAGS", (b"\\Seen",))) in seen
    other.move([1], "Archive")
    moved = client.idle_check(timeout=10)
    client.idle_done()
    assert (1, b"EXPUNGE") in moved


def test_idle_wakes_on_mail_stored_by_another_process(
    imap: ImapHarness, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    client = login(imap)
    client.select_folder("INBOX")
    client.idle()
    script = textwrap.dedent(
        f"""
        import asyncio
        from onestack.mail.imap.mailstore import MailStore
        from onestack.store import Store

        async def main():
            store = Store({imap.store.url!r})
            mail = MailStore(store)
            account, _ = await mail.find_account("alice@example.com")
            inbox = await mail.get_folder(account.id, "INBOX")
            await mail.append(account.id, inbox.id, b"Subject: other process\\r\\n\\r\\nhi\\r\\n", [], None)
            await store.close()

        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)
    responses = client.idle_check(timeout=15)
    client.idle_done()
    assert (1, b"EXISTS") in responses
    assert (
        client.fetch([1], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[1][
            b"BODY[HEADER.FIELDS (SUBJECT)]"
        ]
        == b"Subject: other process\r\n\r\n"
    )
