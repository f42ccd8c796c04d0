"""Every command of RFC 3501 and the extensions, driven by imaplib and imapclient."""

from __future__ import annotations

import imaplib
import re

import pytest
from imapclient import IMAPClient

from tests.mail.imap.conftest import PASSWORD, ImapHarness, RawClient, make_message


def connect(imap: ImapHarness, user: str = "alice@example.com") -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", imap.port)
    client.login(user, PASSWORD)
    return client


def test_capability_before_and_after_login(imap: ImapHarness) -> None:
    client = imaplib.IMAP4("127.0.0.1", imap.port)
    assert "AUTH=PLAIN" in client.capabilities
    assert "LITERAL+" in client.capabilities
    assert "LOGINDISABLED" not in client.capabilities  # loopback
    client.login("alice@example.com", PASSWORD)
    typ, data = client.capability()
    assert typ == "OK"
    for name in (
        b"IDLE",
        b"UIDPLUS",
        b"MOVE",
        b"SPECIAL-USE",
        b"CONDSTORE",
        b"UNSELECT",
    ):
        assert name in data[0]
    assert client.noop()[0] == "OK"
    assert client.logout()[0] == "BYE"


def test_login_wrong_password(imap: ImapHarness) -> None:
    client = imaplib.IMAP4("127.0.0.1", imap.port)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login("alice@example.com", "wrong")
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login("nobody@example.com", PASSWORD)


def test_authenticate_plain(imap: ImapHarness) -> None:
    client = imaplib.IMAP4("127.0.0.1", imap.port)
    typ, _ = client.authenticate(
        "PLAIN", lambda _: f"\0alice@example.com\0{PASSWORD}".encode()
    )
    assert typ == "OK"
    assert client.select("INBOX")[0] == "OK"


def test_authenticate_plain_with_initial_response(imap: ImapHarness) -> None:
    with IMAPClient("127.0.0.1", imap.port, ssl=False) as client:
        client.plain_login("alice@example.com", PASSWORD)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_commands_need_login(imap: ImapHarness) -> None:
    client = RawClient(imap.port)
    assert client.command(b"a SELECT INBOX")[-1].startswith(b"a BAD ")
    assert client.command(b"b FETCH 1 FLAGS")[-1].startswith(b"b BAD ")
    client.login()
    assert client.command(b"c FETCH 1 FLAGS")[-1].startswith(b"c BAD ")
    assert client.command(b"d LOGIN x y")[-1].startswith(b"d BAD ")
    client.close()


def test_list_shows_special_use(imap: ImapHarness) -> None:
    client = connect(imap)
    typ, data = client.list()
    assert typ == "OK"
    listing = b"\n".join(data)
    for name, flag in (
        (b"Sent", rb"\\Sent"),
        (b"Drafts", rb"\\Drafts"),
        (b"Trash", rb"\\Trash"),
        (b"Junk", rb"\\Junk"),
        (b"Archive", rb"\\Archive"),
    ):
        assert re.search(rb"\(.*" + flag + rb".*\) \"/\" " + name, listing), name
    assert b'"/" INBOX' in listing
    typ, data = client.list('""', "%")
    assert len(data) == 6
    typ, data = client.list('""', '""')
    assert data == [b'(\\Noselect) "/" ""']


def test_create_rename_delete_subscribe(imap: ImapHarness) -> None:
    client = connect(imap)
    assert client.create("Projects/2024")[0] == "OK"
    names = b"\n".join(client.list('""', "Projects*")[1])
    assert b"Projects/2024" in names
    assert b"\\HasChildren" in names
    assert client.create("Projects/2024")[0] == "NO"

    client.select("Projects/2024")
    client.append("Projects/2024", None, None, make_message(1))
    old_validity = client.response("UIDVALIDITY")
    assert client.rename("Projects", "Work")[0] == "OK"
    listing = b"\n".join(client.list()[1])
    assert b"Work/2024" in listing
    assert b"Projects" not in listing
    client.select("Work/2024")
    assert client.response("UIDVALIDITY") != old_validity
    typ, data = client.search(None, "ALL")
    assert data == [b"1"]

    assert client.unsubscribe("Work/2024")[0] == "OK"
    lsub = b"\n".join(d for d in client.lsub()[1] if d)
    assert b"Work/2024" not in lsub
    assert b"INBOX" in lsub
    assert client.subscribe("Work/2024")[0] == "OK"
    assert b"Work/2024" in b"\n".join(d for d in client.lsub()[1] if d)

    client.select("INBOX")
    assert client.delete("Work/2024")[0] == "OK"
    assert b"Work/2024" not in b"\n".join(client.list()[1])
    assert client.delete("Work/2024")[0] == "NO"
    assert client.delete("INBOX")[0] == "NO"
    assert client.delete("Sent")[0] == "NO"
    assert client.rename("Sent", "Other")[0] == "NO"


def test_rename_inbox_moves_messages(imap: ImapHarness) -> None:
    for number in range(3):
        imap.deliver("alice@example.com", make_message(number))
    client = connect(imap)
    assert client.rename("INBOX", "Old")[0] == "OK"
    assert client.select("INBOX")[1] == [b"0"]
    assert client.select("Old")[1] == [b"3"]


def test_select_examine_status(imap: ImapHarness) -> None:
    for number in range(4):
        imap.deliver("alice@example.com", make_message(number))
    client = connect(imap)
    typ, data = client.select("inbox")  # INBOX is case-insensitive
    assert (typ, data) == ("OK", [b"4"])
    assert client.response("UIDNEXT")[1] == [b"5"]
    assert client.response("READ-WRITE")[0] == "READ-WRITE"
    client.store("1", "+FLAGS", "\\Seen")
    typ, data = client.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT)")
    assert re.search(rb"MESSAGES 4 .*UNSEEN 3 UIDNEXT 5", data[0])

    typ, data = client.select("INBOX", readonly=True)
    assert typ == "OK"
    assert client.store("2", "+FLAGS", "\\Seen")[0] == "NO"
    client.fetch("2", "(BODY[])")  # EXAMINE: fetching does not set \Seen
    assert client.fetch("2", "(FLAGS)")[1] == [b"2 (FLAGS ())"]
    assert client.status("Nope", "(MESSAGES)")[0] == "NO"


def test_append_with_flags_date_and_literal(imap: ImapHarness) -> None:
    client = connect(imap)
    raw = make_message(1, body='line with "quotes" and {braces}\r\n')
    typ, data = client.append(
        "Drafts", "(\\Draft $Label1)", '"17-Jul-1996 02:44:25 -0700"', raw
    )
    assert typ == "OK"
    assert re.match(rb"\[APPENDUID \d+ 1\]", data[0])
    client.select("Drafts")
    typ, data = client.fetch("1", "(FLAGS INTERNALDATE RFC822)")
    assert b"\\Draft" in data[0][0]
    assert b"$Label1" in data[0][0]
    assert b'INTERNALDATE "17-Jul-1996 09:44:25 +0000"' in data[0][0]
    assert data[0][1] == raw
    typ, data = client.append("Missing", None, None, raw)
    assert typ == "NO"
    assert b"TRYCREATE" in data[0]


def test_append_over_quota(imap: ImapHarness) -> None:
    imap.create_account("small@example.com", quota=300)
    client = connect(imap, "small@example.com")
    assert client.append("INBOX", None, None, make_message(1))[0] == "OK"
    typ, data = client.append("INBOX", None, None, make_message(2))
    assert typ == "NO"
    assert b"OVERQUOTA" in data[0]


def test_store_flags_and_expunge(imap: ImapHarness) -> None:
    for number in range(5):
        imap.deliver("alice@example.com", make_message(number))
    client = connect(imap)
    client.select("INBOX")
    typ, data = client.store("1:2", "+FLAGS", "(\\Deleted \\Flagged)")
    assert data == [
        b"1 (UID 1 FLAGS (\\Flagged \\Deleted))",
        b"2 (UID 2 FLAGS (\\Flagged \\Deleted))",
    ]
    typ, data = client.store("2", "-FLAGS", "(\\Flagged)")
    assert data == [b"2 (UID 2 FLAGS (\\Deleted))"]
    typ, data = client.store("3", "FLAGS.SILENT", "(\\Answered custom)")
    assert data == [None]
    assert client.fetch("3", "FLAGS")[1] == [b"3 (FLAGS (\\Answered custom))"]
    typ, data = client.expunge()
    assert data == [b"2", b"1"]  # highest sequence number first
    assert client.search(None, "ALL")[1] == [b"1 2 3"]

    client.store("1:*", "+FLAGS", "\\Deleted")
    assert client.uid("EXPUNGE", "3")[0] == "OK"  # UIDPLUS: only UID 3
    assert client.response("EXPUNGE")[1] == [b"1"]
    assert client.uid("SEARCH", "ALL")[1] == [b"4 5"]
    assert client.check()[0] == "OK"
    assert client.close()[0] == "OK"  # CLOSE expunges the rest silently
    assert client.select("INBOX")[1] == [b"0"]


def test_unselect_keeps_deleted_messages(imap: ImapHarness) -> None:
    imap.deliver("alice@example.com", make_message(1))
    client = connect(imap)
    client.select("INBOX")
    client.store("1", "+FLAGS", "\\Deleted")
    typ, _ = client._simple_command("UNSELECT")  # type: ignore[attr-defined]
    assert typ == "OK"
    assert client.select("INBOX")[1] == [b"1"]


def test_copy_and_move_with_uidplus(imap: ImapHarness) -> None:
    for number in range(4):
        imap.deliver("alice@example.com", make_message(number))
    with IMAPClient("127.0.0.1", imap.port, ssl=False) as client:
        client.login("alice@example.com", PASSWORD)
        client.select_folder("INBOX")
        client.add_flags([2], [b"\\Flagged"])
        client.copy([1, 2], "Archive")
        client.move([2, 3], "Trash")
        assert client.search("ALL") == [1, 4]
        trash = client.select_folder("Trash")
        assert trash[b"EXISTS"] == 2
        flags = client.get_flags([1, 2])
        assert b"\\Flagged" in flags[1]
        assert client.search("ALL") == [1, 2]
        archive = client.select_folder("Archive")
        assert archive[b"EXISTS"] == 2
        assert (
            client.fetch([1, 2], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[1][
                b"BODY[HEADER.FIELDS (SUBJECT)]"
            ]
            == b"Subject: Message 0\r\n\r\n"
        )
        with pytest.raises(Exception, match="TRYCREATE"):
            client.copy([1], "Nowhere")


def test_copyuid_response(imap: ImapHarness) -> None:
    for number in range(3):
        imap.deliver("alice@example.com", make_message(number))
    client = connect(imap)
    client.select("INBOX")
    typ, data = client._simple_command("UID", "COPY", "2:*", "Junk")  # type: ignore[attr-defined]
    assert typ == "OK"
    assert re.match(rb"\[COPYUID \d+ 2:3 1:2\]", data[0])
    typ, data = client._simple_command("UID", "MOVE", "1", "Junk")  # type: ignore[attr-defined]
    assert typ == "OK"
    assert client.untagged_responses.get("EXPUNGE") == [b"1"]
    assert re.search(rb"COPYUID \d+ 1 3", b" ".join(client.untagged_responses["OK"]))


def test_search_keys(imap: ImapHarness) -> None:
    imap.deliver("alice@example.com", make_message(1, subject="Invoice March"))
    imap.deliver(
        "alice@example.com", make_message(2, body="the body mentions a Zebra\r\n")
    )
    imap.deliver(
        "alice@example.com",
        make_message(
            3, subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?=", body="x" * 5000 + "\r\n"
        ),
    )
    client = connect(imap)
    client.select("INBOX")
    client.store("2", "+FLAGS", "(\\Seen \\Flagged)")

    def search(*criteria: str) -> bytes:
        typ, data = client.search(None, *criteria)
        assert typ == "OK"
        return data[0]

    assert search("ALL") == b"1 2 3"
    assert search("SUBJECT", "invoice") == b"1"
    assert search("FROM", "sender3") == b"3"
    assert search("TO", "alice") == b"1 2 3"
    assert search("BODY", "zebra") == b"2"
    assert search("TEXT", "zebra") == b"2"
    assert search("HEADER", "Message-ID", "m3@") == b"3"
    assert search("SEEN") == b"2"
    assert search("UNSEEN") == b"1 3"
    assert search("FLAGGED") == b"2"
    assert search("NOT", "FLAGGED") == b"1 3"
    assert search("OR", "SUBJECT", "invoice", "FLAGGED") == b"1 2"
    assert search("LARGER", "1000") == b"3"
    assert search("SMALLER", "1000") == b"1 2"
    assert search("2:*") == b"2 3"
    assert search("UID", "3:*") == b"3"
    assert search("(SEEN UNSEEN)") == b""
    assert search("SENTON", "7-Feb-1994") == b"1 2 3"
    assert search("SENTBEFORE", "1-Jan-1990") == b""
    assert search("SINCE", "1-Jan-2000") == b"1 2 3"
    assert search("BEFORE", "1-Jan-2000") == b""
    assert search("KEYWORD", "nothing") == b""
    assert search("UNKEYWORD", "nothing") == b"1 2 3"
    assert search("DELETED") == b""
    assert search("UNDELETED", "UNANSWERED", "UNDRAFT") == b"1 2 3"
    typ, data = client.search("UTF-8", "SUBJECT", "Grüße".encode())
    assert data == [b"3"]
    client.literal = "Grüße".encode()
    typ, data = client.search("UTF-8", "SUBJECT")
    assert data == [b"3"]
    assert client.uid("SEARCH", "UNSEEN")[1] == [b"1 3"]
    typ, data = client.search("KOI8-R", "ALL")
    assert typ == "NO"
    assert b"BADCHARSET" in data[0]
    with pytest.raises(imaplib.IMAP4.error, match="unknown search key BOGUS"):
        client.search(None, "BOGUS")


def test_fetch_uid_set_with_star(imap: ImapHarness) -> None:
    for number in range(5):
        imap.deliver("alice@example.com", make_message(number))
    client = connect(imap)
    client.select("INBOX")
    client.store("1,2", "+FLAGS", "\\Deleted")
    client.expunge()
    typ, data = client.uid("FETCH", "4:*", "(FLAGS)")
    assert data == [b"2 (UID 4 FLAGS ())", b"3 (UID 5 FLAGS ())"]
    typ, data = client.uid("FETCH", "100:*", "(FLAGS)")
    assert data == [b"3 (UID 5 FLAGS ())"]  # "*" is the largest UID in use
    typ, data = client.fetch("*", "(UID)")
    assert data == [b"3 (UID 5)"]
    with pytest.raises(imaplib.IMAP4.error, match="out of range"):
        client.fetch("9", "(UID)")


def test_namespace_id_enable(imap: ImapHarness) -> None:
    client = connect(imap)
    typ, data = client.namespace()
    assert data == [b'(("" "/")) NIL NIL']
    typ, data = client._simple_command("ID", '("name" "pytest")')  # type: ignore[attr-defined]
    assert typ == "OK"
    assert client.untagged_responses.pop("ID") == [b'("name" "OneStack")']
    typ, data = client._simple_command("ENABLE", "CONDSTORE")  # type: ignore[attr-defined]
    assert typ == "OK"
    assert client.untagged_responses.pop("ENABLED") == [b"CONDSTORE"]


def test_condstore(imap: ImapHarness) -> None:
    for number in range(3):
        imap.deliver("alice@example.com", make_message(number))
    with IMAPClient("127.0.0.1", imap.port, ssl=False) as client:
        client.login("alice@example.com", PASSWORD)
        client.enable("CONDSTORE")
        selected = client.select_folder("INBOX")
        highest = selected[b"HIGHESTMODSEQ"]
        client.add_flags([2], [b"\\Seen"])
        changed = client.fetch(
            [1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"]
        )
        assert list(changed) == [2]
        assert changed[2][b"MODSEQ"][0] > highest
        modseq = changed[2][b"MODSEQ"][0]
        assert client.search(["MODSEQ", str(highest + 1)]) == [2]
        status = client.folder_status("INBOX", ["HIGHESTMODSEQ"])
        assert status[b"HIGHESTMODSEQ"] == modseq

    # RFC 7162 section 3.1.3: a conditional STORE skips messages changed since.
    raw = RawClient(imap.port)
    raw.login()
    raw.command(b"s SELECT INBOX (CONDSTORE)")
    reply = raw.command(
        b"u UID STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % (modseq - 1)
    )
    assert reply[-1].startswith(b"u OK [MODIFIED 2]"), reply
    assert any(b"UID 1 FLAGS (\\Flagged) MODSEQ" in line for line in reply), reply
    reply = raw.command(b"f UID FETCH 2 (FLAGS)")
    assert b"FLAGS (\\Seen) MODSEQ (%d)" % modseq in reply[0]
    raw.close()


def test_other_users_mail_is_invisible(imap: ImapHarness) -> None:
    imap.deliver("bob@example.com", make_message(1, subject="for bob only"))
    client = connect(imap)
    client.select("INBOX")
    assert client.search(None, "ALL")[1] == [b""]
    assert client.uid("FETCH", "1:*", "(BODY[])")[1] == [None]
    bob = connect(imap, "bob@example.com")
    bob.select("INBOX")
    assert bob.search(None, "SUBJECT", "bob")[1] == [b"1"]
