"""IMAP in a real ``onestack serve``: SMTP delivery and API changes reach IDLE."""

from __future__ import annotations

import smtplib
from pathlib import Path

from imapclient import IMAPClient

from tests.support import run_server

PASSWORD = "correct horse battery"


def test_smtp_delivery_and_api_changes_reach_idle(tmp_path: Path) -> None:
    overrides = {"modules": {"email": {"enabled": True, "workers": 2}}}
    with run_server(tmp_path / "data", overrides) as server:
        assert server.wait_module("email")["running"], server.log()
        created = server.api(
            "POST",
            "/api/mailboxes",
            json={"email": "erin@example.com", "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
        imap_port = server.port("email", "imap.port")
        smtp_port = server.port("email", "smtp.port")

        with IMAPClient("127.0.0.1", imap_port, ssl=False, timeout=30) as client:
            client.login("erin@example.com", PASSWORD)
            client.select_folder("INBOX")
            client.idle()
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
                for number in (1, 2):
                    smtp.sendmail(
                        "someone@example.org",
                        ["erin@example.com"],
                        f"From: someone@example.org\r\nSubject: smtp {number}\r\n"
                        f"\r\nhello\r\n".encode(),
                    )
            arrived: list = []
            while (2, b"EXISTS") not in arrived:
                more = client.idle_check(timeout=15)
                assert more, f"no EXISTS for both messages, got {arrived}"
                arrived += more
            client.idle_done()

            listed = server.api("GET", "/api/mailboxes/erin@example.com/messages")
            assert listed.status_code == 200, listed.text
            ids = {m["subject"]: m["id"] for m in listed.json()}
            assert set(ids) == {"smtp 1", "smtp 2"}

            # \Seen is the API's "read".
            client.idle()
            marked = server.api(
                "PUT", f"/api/messages/{ids['smtp 1']}/read", json={"read": True}
            )
            assert marked.status_code == 200, marked.text
            seen = client.idle_check(timeout=15)
            assert any(
                response[1] == b"FETCH" and b"\\Seen" in response[2][3]
                for response in seen
            ), seen

            # A move through the API is an EXPUNGE here and a new message there.
            moved = server.api(
                "PUT", f"/api/messages/{ids['smtp 1']}/move", json={"folder": "archive"}
            )
            assert moved.status_code == 200, moved.text
            gone = client.idle_check(timeout=15)
            assert (1, b"EXPUNGE") in gone

            deleted = server.api("DELETE", f"/api/messages/{ids['smtp 2']}")
            assert deleted.status_code == 200, deleted.text
            gone = client.idle_check(timeout=15)
            client.idle_done()
            assert (1, b"EXPUNGE") in gone

            archive = client.select_folder("Archive")
            assert archive[b"EXISTS"] == 1
            fetched = client.fetch([1], ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
            assert b"\\Seen" in fetched[1][b"FLAGS"]
            assert fetched[1][b"BODY[HEADER.FIELDS (SUBJECT)]"] == (
                b"Subject: smtp 1\r\n\r\n"
            )

        # IMAP flags show in the API.
        with IMAPClient("127.0.0.1", imap_port, ssl=False, timeout=30) as client:
            client.login("erin@example.com", PASSWORD)
            client.select_folder("Archive")
            client.remove_flags([1], [b"\\Seen"])
            client.add_flags([1], [b"\\Flagged"])
        message = server.api("GET", f"/api/messages/{ids['smtp 1']}").json()
        assert message["read"] is False
