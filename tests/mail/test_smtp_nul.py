"""NUL bytes from SMTP clients, end to end on SQLite and PostgreSQL.

PostgreSQL text cannot store U+0000: before these checks a header with a
NUL made every delivery attempt fail with 451, so the message was never
accepted, and a NUL in MAIL FROM reached the database the same way.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Server, run_server


@pytest.fixture(params=["sqlite", "postgresql"])
def mail_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    overrides: dict[str, Any] = {"modules": {"email": {"enabled": True}}}
    if request.param == "postgresql":
        overrides["database"] = {"url": request.getfixturevalue("postgres_url")}
    with run_server(tmp_path / "data", overrides) as server:
        server.wait_module("email")
        created = server.api("POST", "/api/mailboxes", json={"email": "n@nul.test"})
        assert created.status_code == 201
        wait_for_mailbox(server, "n@nul.test")
        yield server


def smtp_client(server: Server) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", server.port("email", "smtp.port"), timeout=30)


def wait_for_mailbox(server: Server, address: str) -> None:
    """Wait until the SMTP worker has heard of a mailbox the API created."""
    deadline = time.monotonic() + 30
    while True:
        with smtp_client(server) as client:
            client.ehlo()
            client.docmd("MAIL FROM:<probe@sender.test>")
            code, _ = client.docmd(f"RCPT TO:<{address}>")
        if code == 250:
            return
        assert time.monotonic() < deadline, f"RCPT TO {address} still answers {code}"
        time.sleep(0.1)


def test_nul_in_headers_is_accepted(mail_server: Server) -> None:
    raw = (
        b"From: a\x00b@sender.test\r\n"
        b"Subject: =?utf-8?b?bnVsAGVuY29kZWQ=?= raw\x00nul\r\n"
        b"\r\n"
        b"body\r\n"
    )
    with smtp_client(mail_server) as client:
        refused = client.sendmail("s@sender.test", ["n@nul.test"], raw)
    assert refused == {}
    listed = mail_server.api("GET", "/api/mailboxes/n@nul.test/messages").json()
    assert len(listed) == 1
    assert listed[0]["subject"] == "nul\ufffdencoded raw\ufffdnul"
    assert "\x00" not in listed[0]["from"]


def test_nul_in_envelope_is_rejected(mail_server: Server) -> None:
    with smtp_client(mail_server) as client:
        client.ehlo()
        code, _ = client.docmd("MAIL FROM:<a\x00b@sender.test>")
        assert code == 553
        code, _ = client.docmd("MAIL FROM:<s@sender.test>")
        assert code == 250
        code, _ = client.docmd("RCPT TO:<n\x00@nul.test>")
        assert code == 550
        code, _ = client.docmd("RCPT TO:<n@nul.test>")
        assert code == 250
