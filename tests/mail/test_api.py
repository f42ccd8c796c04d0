"""The mailboxes, messages, send-email and stats API over real HTTP."""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Iterator

import pytest

from onestack import passwords
from tests.support import Server, free_port, run_server


def email_on() -> dict[str, object]:
    """Enable the email module; remote mail goes to a closed loopback port."""
    smtp = {
        "hostname": "mx.test",
        "relayHost": f"127.0.0.1:{free_port()}",
        "queueRetryBaseSeconds": 3600,
    }
    return {"modules": {"email": {"enabled": True, "smtp": smtp}}}


MULTIPART = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@far.net>\r\n"
    b"To: api@example.com\r\n"
    b"Subject: =?iso-8859-1?q?R=E9sum=E9?=\r\n"
    b"Message-ID: <multi@far.net>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Caf=E9 ouvert\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Caf\xc3\xa9 <b>ouvert</b></p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b'Content-Type: application/pdf; name="menu.pdf"\r\n'
    b'Content-Disposition: attachment; filename="menu.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQKJcfsj6IK\r\n"
    b"--outer--\r\n"
)


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"port {port} did not open")


@pytest.fixture(scope="module")
def mail_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for this file's tests; each test uses its own addresses."""
    data_dir = tmp_path_factory.mktemp("mail-api") / "data"
    with run_server(data_dir, email_on()) as server:
        wait_port(server.port("email", "smtp.port"))
        yield server


def send_when_known(port: int, sender: str, recipient: str, message: bytes) -> None:
    """Send once the SMTP worker has loaded the new mailbox (within seconds)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                smtp.sendmail(sender, [recipient], message)
            return
        except smtplib.SMTPRecipientsRefused:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_mailbox_lifecycle(mail_api: Server) -> None:
    created = mail_api.api(
        "POST",
        "/api/mailboxes",
        json={"email": "API@Example.com", "name": "API User", "quota": 104857600},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["email"] == "api@example.com"
    assert len(body["password"]) >= 16
    assert body["enabled"] is True
    assert body["id"] > 0

    listed = [
        m
        for m in mail_api.api("GET", "/api/mailboxes").json()
        if m["email"] == "api@example.com"
    ]
    assert len(listed) == 1
    assert "password" not in listed[0]
    assert listed[0]["quotaUsed"] == 0
    assert listed[0]["created"].endswith("Z")

    duplicate = mail_api.api(
        "POST", "/api/mailboxes", json={"email": "api@example.com"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "ALREADY_EXISTS"

    for bad in (
        "no-at-sign",
        "user@bad_domain.com",
        "user@localhost",
        "a b@example.com",
        "user@example.com\r\nBcc: x@y.z",
    ):
        response = mail_api.api("POST", "/api/mailboxes", json={"email": bad})
        assert response.status_code == 400, bad
        assert response.json()["code"] == "INVALID_REQUEST"

    updated = mail_api.api(
        "PUT",
        "/api/mailboxes/api@example.com",
        json={"enabled": False, "quota": 209715200, "password": "newpassword"},
    )
    assert updated.status_code == 200
    assert updated.json()["success"] is True
    assert updated.json()["mailbox"]["enabled"] is False
    assert updated.json()["mailbox"]["quota"] == 209715200

    stats = mail_api.api("GET", "/api/mailboxes/api@example.com/stats").json()
    assert stats["quotaPercentage"] == 0
    assert stats["enabled"] is False
    assert mail_api.api("GET", "/api/mailboxes/nobody@example.com").status_code == 404


def test_generated_password_logs_in(mail_api: Server) -> None:
    created = mail_api.api(
        "POST", "/api/mailboxes", json={"email": "login@example.com"}
    ).json()
    with smtplib.SMTP(
        "127.0.0.1", mail_api.port("email", "smtp.port"), timeout=30
    ) as smtp:
        smtp.ehlo()
        assert smtp.login("login@example.com", created["password"])[0] == 235


def test_messages_read_move_delete(mail_api: Server) -> None:
    mail_api.api("POST", "/api/mailboxes", json={"email": "reader@example.com"})
    smtp_port = mail_api.port("email", "smtp.port")
    send_when_known(smtp_port, "j@far.net", "reader@example.com", MULTIPART)
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
        for number in range(3):
            smtp.sendmail(
                "j@far.net",
                ["reader@example.com"],
                f"Subject: plain {number}\r\n\r\nbody {number}\r\n".encode(),
            )

    listed = mail_api.api(
        "GET",
        "/api/mailboxes/reader@example.com/messages",
        params={"folder": "inbox", "limit": 50},
    ).json()
    assert [m["subject"] for m in listed] == ["plain 2", "plain 1", "plain 0", "Résumé"]
    assert listed[0]["body"] == "body 2"
    assert listed[0]["read"] is False
    page = mail_api.api(
        "GET",
        "/api/mailboxes/reader@example.com/messages",
        params={"limit": 2, "offset": 2},
    ).json()
    assert [m["id"] for m in page] == [listed[2]["id"], listed[3]["id"]]

    multipart_id = listed[3]["id"]
    full = mail_api.api("GET", f"/api/messages/{multipart_id}").json()
    assert full["from"] == "Jürgen <j@far.net>"
    assert full["subject"] == "Résumé"
    assert full["body"].strip() == "Café ouvert"
    assert full["html"].strip() == "<p>Café <b>ouvert</b></p>"
    assert full["headers"]["Message-ID"] == "<multi@far.net>"
    assert full["attachments"] == [
        {"name": "menu.pdf", "type": "application/pdf", "size": 15}
    ]
    assert full["read"] is False

    marked = mail_api.api(
        "PUT", f"/api/messages/{multipart_id}/read", json={"read": True}
    ).json()
    assert marked["success"] is True
    assert marked["message"]["read"] is True
    unread = mail_api.api(
        "GET",
        "/api/mailboxes/reader@example.com/messages",
        params={"unreadOnly": "true"},
    ).json()
    assert multipart_id not in [m["id"] for m in unread]

    moved = mail_api.api(
        "PUT", f"/api/messages/{multipart_id}/move", json={"folder": "trash"}
    ).json()
    assert moved["message"]["folder"] == "trash"
    trash = mail_api.api(
        "GET", "/api/mailboxes/reader@example.com/messages", params={"folder": "trash"}
    ).json()
    assert [m["id"] for m in trash] == [multipart_id]
    bad_move = mail_api.api(
        "PUT", f"/api/messages/{multipart_id}/move", json={"folder": "nowhere"}
    )
    assert bad_move.status_code == 400
    assert (
        mail_api.api(
            "GET",
            "/api/mailboxes/reader@example.com/messages",
            params={"folder": "nowhere"},
        ).status_code
        == 400
    )

    assert mail_api.api("DELETE", f"/api/messages/{multipart_id}").json() == {
        "success": True
    }
    assert mail_api.api("GET", f"/api/messages/{multipart_id}").status_code == 404
    assert mail_api.api("DELETE", f"/api/messages/{multipart_id}").status_code == 404

    stats = mail_api.api("GET", "/api/mailboxes/reader@example.com/stats").json()
    assert stats["messageCount"] == 3
    assert stats["unreadCount"] == 3
    assert stats["quotaUsed"] > 0


def test_send_email_local_and_remote(mail_api: Server) -> None:
    before = mail_api.api("GET", "/api/email/stats").json()
    mail_api.api("POST", "/api/mailboxes", json={"email": "sender@example.com"})
    mail_api.api("POST", "/api/mailboxes", json={"email": "user@example.com"})
    sent = mail_api.api(
        "POST",
        "/api/send-email",
        json={
            "from": "sender@example.com",
            "to": "user@example.com, far@remote.example",
            "subject": "Grüße from the API",
            "body": "Plain text body",
            "html": "<p>HTML body</p>",
            "headers": {"X-Custom-Header": "value"},
        },
    )
    assert sent.status_code == 200, sent.text
    answer = sent.json()
    assert answer["success"] is True
    assert answer["message"]["messageId"].endswith("@mx.test>")
    assert answer["delivered"] == ["user@example.com"]
    assert answer["queued"] == ["far@remote.example"]

    (received,) = mail_api.api("GET", "/api/mailboxes/user@example.com/messages").json()
    full = mail_api.api("GET", f"/api/messages/{received['id']}").json()
    assert full["subject"] == "Grüße from the API"
    assert full["body"].strip() == "Plain text body"
    assert full["html"].strip() == "<p>HTML body</p>"
    assert full["headers"]["X-Custom-Header"] == "value"
    (copy,) = mail_api.api(
        "GET", "/api/mailboxes/sender@example.com/messages", params={"folder": "sent"}
    ).json()
    assert copy["id"] == answer["message"]["id"]
    assert copy["read"] is True

    stats = mail_api.api("GET", "/api/email/stats").json()
    assert stats["messagesSent"] == before["messagesSent"] + 1
    assert stats["mailboxCount"] == before["mailboxCount"] + 2
    assert stats["totalMessages"] == before["totalMessages"] + 2
    assert stats["totalStorage"] > before["totalStorage"]
    # The relay host is a closed port, so the remote copy waits in the queue.
    assert stats["queuedMessages"] == before["queuedMessages"] + 1


def test_send_email_unknown_local_bounces(mail_api: Server) -> None:
    mail_api.api("POST", "/api/mailboxes", json={"email": "python@example.com"})
    sent = mail_api.api(
        "POST",
        "/api/send-email",
        json={
            "from": "python@example.com",
            "to": "missing@example.com",
            "subject": "Test",
            "body": "x",
        },
    )
    assert sent.status_code == 200
    assert sent.json()["bounced"][0]["status"] == "5.1.1"
    (bounce,) = mail_api.api(
        "GET", "/api/mailboxes/python@example.com/messages", params={"folder": "inbox"}
    ).json()
    assert bounce["subject"] == "Undelivered Mail Returned to Sender"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "hello\r\nBcc: victim@far.net"),
        ("subject", "hello\nBcc: victim@far.net"),
        ("from", "api@example.com\r\nBcc: victim@far.net"),
        ("to", "user@example.com\nBcc: victim@far.net"),
        ("headers", {"X-Custom": "ok\r\nBcc: victim@far.net"}),
        ("headers", {"X-Bad\r\nBcc": "value"}),
        ("headers", {"Bcc": "victim@far.net"}),
    ],
)
def test_send_email_rejects_injection(
    mail_api: Server, field: str, value: object
) -> None:
    request = {
        "from": "api@example.com",
        "to": "user@example.com",
        "subject": "s",
        "body": "b",
    }
    request[field] = value  # type: ignore[assignment]
    response = mail_api.api("POST", "/api/send-email", json=request)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"


def test_delete_keeps_then_restores_messages(mail_api: Server) -> None:
    mail_api.api("POST", "/api/mailboxes", json={"email": "keep@example.com"})
    send_when_known(
        mail_api.port("email", "smtp.port"),
        "j@far.net",
        "keep@example.com",
        b"Subject: kept\r\n\r\nx\r\n",
    )
    deleted = mail_api.api("DELETE", "/api/mailboxes/keep@example.com").json()
    assert deleted["success"] is True
    assert deleted["keptMessages"] == 1
    assert mail_api.api("GET", "/api/mailboxes/keep@example.com").status_code == 404
    deadline = time.monotonic() + 10
    code = 0
    while code != 550 and time.monotonic() < deadline:
        with smtplib.SMTP(
            "127.0.0.1", mail_api.port("email", "smtp.port"), timeout=30
        ) as smtp:
            smtp.ehlo()
            smtp.mail("j@far.net")
            code = smtp.rcpt("keep@example.com")[0]
        time.sleep(0.1)
    assert code == 550
    again = mail_api.api(
        "POST",
        "/api/mailboxes",
        json={"email": "keep@example.com", "password": "another-pass"},
    ).json()
    assert again["restoredMessages"] == 1
    gone = mail_api.api(
        "DELETE", "/api/mailboxes/keep@example.com", params={"deleteMessages": "true"}
    ).json()
    assert gone == {"success": True, "messagesDeleted": True}
    fresh = mail_api.api(
        "POST", "/api/mailboxes", json={"email": "keep@example.com"}
    ).json()
    assert fresh["messageCount"] == 0


def test_send_email_needs_running_module(server: Server) -> None:
    response = server.api(
        "POST",
        "/api/send-email",
        json={
            "from": "a@example.com",
            "to": "b@example.com",
            "subject": "s",
            "body": "b",
        },
    )
    assert response.status_code == 503
    assert response.json()["code"] == "MODULE_NOT_RUNNING"


def test_password_hash_is_argon2id(mail_api: Server) -> None:
    mail_api.api(
        "POST",
        "/api/mailboxes",
        json={"email": "hash@example.com", "password": "given-password"},
    )
    import sqlite3

    with sqlite3.connect(mail_api.data_dir / "onestack.db") as db:
        (stored,) = db.execute(
            "SELECT password_hash FROM mailboxes WHERE email = 'hash@example.com'"
        ).fetchone()
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, "given-password")
