"""Real clients from Debian: mbsync (isync) and mutt, against the server."""

from __future__ import annotations

import email
import mailbox
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.mail.imap.conftest import PASSWORD, ImapHarness, make_message

MESSAGES = 500


def message_ids_local(path: Path) -> list[str]:
    return [
        str(message["Message-ID"]) for message in mailbox.Maildir(path, create=False)
    ]


def message_ids_remote(imap: ImapHarness, folder: str = "INBOX") -> list[str]:
    async def read() -> list[str]:
        found = await imap.mail.find_account("alice@example.com")
        assert found is not None
        target = await imap.mail.get_folder(found[0].id, folder)
        assert target is not None
        states = await imap.mail.message_states(target.id)
        rows = await imap.mail.fetch_rows(target.id, [s.uid for s in states], "full")
        return [
            str(email.message_from_bytes(row.raw)["Message-ID"])
            for row in rows.values()
        ]

    return imap.run(read())


def remote_flags(imap: ImapHarness) -> dict[str, tuple[str, ...]]:
    async def read() -> dict[str, tuple[str, ...]]:
        found = await imap.mail.find_account("alice@example.com")
        assert found is not None
        target = await imap.mail.get_folder(found[0].id, "INBOX")
        assert target is not None
        states = {s.uid: s.flags for s in await imap.mail.message_states(target.id)}
        rows = await imap.mail.fetch_rows(target.id, sorted(states), "full")
        return {
            str(email.message_from_bytes(row.raw)["Message-ID"]): states[uid]
            for uid, row in rows.items()
        }

    return imap.run(read())


@pytest.mark.skipif(
    shutil.which("mbsync") is None, reason="mbsync (isync) is not installed"
)
def test_mbsync_both_ways_twice(imap: ImapHarness, tmp_path: Path) -> None:
    local = tmp_path / "mail"
    local.mkdir()
    inbox = mailbox.Maildir(local / "INBOX", create=True)
    for number in range(MESSAGES // 2):
        imap.deliver("alice@example.com", make_message(number))
    for number in range(MESSAGES // 2, MESSAGES):
        inbox.add(make_message(number))
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"""
IMAPAccount onestack
Host 127.0.0.1
Port {imap.port}
User alice@example.com
Pass "{PASSWORD}"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account onestack

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX Archive
Sync All
Create Both
Expunge Both
SyncState *
"""
    )

    def sync() -> None:
        result = subprocess.run(
            ["mbsync", "-c", str(config), "-a"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    expected = {f"<m{number}@example.org>" for number in range(MESSAGES)}
    sync()
    remote = message_ids_remote(imap)
    near = message_ids_local(local / "INBOX")
    assert len(remote) == MESSAGES
    assert set(remote) == expected
    assert len(near) == MESSAGES
    assert set(near) == expected

    # Second round: a change on each side, a new message on each side.
    imap.deliver("alice@example.com", make_message(1000))
    inbox = mailbox.Maildir(local / "INBOX", create=False)
    inbox.add(make_message(1001))
    for key, message in inbox.items():
        if message["Message-ID"] == "<m7@example.org>":
            message.set_flags("FS")
            inbox[key] = message

    async def flag_remote() -> None:
        found = await imap.mail.find_account("alice@example.com")
        assert found is not None
        target = await imap.mail.get_folder(found[0].id, "INBOX")
        assert target is not None
        await imap.mail.store_flags(target, [1], "add", ["\\Seen"], None)

    imap.run(flag_remote())
    sync()
    expected |= {"<m1000@example.org>", "<m1001@example.org>"}
    remote = message_ids_remote(imap)
    near = message_ids_local(local / "INBOX")
    assert len(remote) == len(expected)
    assert set(remote) == expected
    assert len(near) == len(expected)
    assert set(near) == expected
    flags = remote_flags(imap)
    assert "\\Flagged" in flags["<m7@example.org>"]
    assert "\\Seen" in flags["<m7@example.org>"]
    local_flags = {
        str(message["Message-ID"]): message.get_flags()
        for message in mailbox.Maildir(local / "INBOX", create=False)
    }
    assert "S" in local_flags["<m0@example.org>"]

    # A third run with nothing changed must change nothing.
    sync()
    assert len(message_ids_remote(imap)) == len(expected)
    assert len(message_ids_local(local / "INBOX")) == len(expected)


@pytest.mark.skipif(shutil.which("mutt") is None, reason="mutt is not installed")
def test_mutt_lists_and_reads(imap: ImapHarness, tmp_path: Path) -> None:
    imap.deliver("alice@example.com", make_message(1, subject="Hello from mutt"))
    imap.deliver(
        "alice@example.com", make_message(2, body="The secret word is pelican.\r\n")
    )
    muttrc = tmp_path / "muttrc"
    piped = tmp_path / "piped.txt"
    muttrc.write_text(
        f"""
set folder="imap://alice%40example.com@127.0.0.1:{imap.port}/"
set spoolfile="+INBOX"
set imap_pass="{PASSWORD}"
set ssl_starttls=no
set ssl_force_tls=no
set mail_check=0
set sort=date-received
set wait_key=no
set header_cache=""
set message_cachedir=""
"""
    )
    # mutt needs a terminal even when driven by "push"; script(1) gives it one.
    keys = f"<tag-pattern>~A<enter><tag-prefix><pipe-message>cat > {piped}<enter><quit>"
    command = f"mutt -n -F {muttrc} -e \"push '{keys}'\""
    result = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        capture_output=True,
        timeout=60,
        env={"HOME": str(tmp_path), "TERM": "xterm", "PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    screen = result.stdout.decode("utf-8", "replace")
    assert "Hello from mutt" in screen  # the index lists the messages
    assert "Msgs:2" in screen
    text = piped.read_text()
    assert "Subject: Hello from mutt" in text
    assert "The secret word is pelican." in text
    # On leaving, mutt marks unread messages with its "Old" keyword.
    assert "Old" in remote_flags(imap)["<m2@example.org>"]
