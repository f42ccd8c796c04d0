"""SIGKILL of the email worker under load: every message answered 250 survives."""

from __future__ import annotations

import os
import signal
import smtplib
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.mail.test_api import email_on, send_when_known, wait_port
from tests.support import run_server

SMTP_SOURCE = "/usr/sbin/smtp-source"
CLIENT_THREADS = 4
MESSAGES_PER_THREAD = 150


def email_worker_pids(server_pid: int) -> list[int]:
    children = psutil.Process(server_pid).children(recursive=True)
    return [
        child.pid
        for child in children
        if "onestack.worker" in " ".join(child.cmdline())
    ]


def send_tokens(
    port: int, prefix: str, acknowledged: list[str], stop: threading.Event
) -> None:
    """Send one message per token; record the tokens answered 250."""
    for number in range(MESSAGES_PER_THREAD):
        if stop.is_set():
            return
        token = f"{prefix}-{number}"
        message = f"From: load@far.test\r\nSubject: {token}\r\n\r\n{token}\r\n".encode()
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                smtp.sendmail("load@far.test", ["user@example.com"], message)
        except (smtplib.SMTPException, OSError):
            # No 250 for this token: it may or may not be stored; never resent.
            time.sleep(0.05)
            continue
        acknowledged.append(token)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.exists(SMTP_SOURCE), reason="smtp-source (postfix) is not installed"
)
def test_sigkill_loses_no_acknowledged_message(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", email_on()) as server:
        port = server.port("email", "smtp.port")
        wait_port(port)
        server.api(
            "POST",
            "/api/mailboxes",
            json={"email": "user@example.com", "quota": 10**10},
        )
        send_when_known(
            port, "load@far.test", "user@example.com", b"Subject: warm-up\r\n\r\nx\r\n"
        )
        (first_pid,) = email_worker_pids(server.process.pid)

        load = subprocess.Popen(
            [
                SMTP_SOURCE,
                "-s",
                "5",
                "-m",
                "2000",
                "-l",
                "1024",
                "-f",
                "load@far.test",
                "-t",
                "user@example.com",
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        acknowledged: list[str] = []
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=send_tokens, args=(port, f"t{index}", acknowledged, stop)
            )
            for index in range(CLIENT_THREADS)
        ]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 60
            while len(acknowledged) < 100 and time.monotonic() < deadline:
                time.sleep(0.05)
            load_running = load.poll() is None
            os.kill(first_pid, signal.SIGKILL)
            killed_after = len(acknowledged)

            for thread in threads:
                thread.join(120)
        finally:
            stop.set()
            try:
                load.wait(60)
            except subprocess.TimeoutExpired:
                load.kill()
                load.wait()

        # The supervisor started a new worker, which accepted more mail.
        (second_pid,) = email_worker_pids(server.process.pid)
        assert second_pid != first_pid
        assert len(acknowledged) > killed_after

    with sqlite3.connect(tmp_path / "data" / "onestack.db") as db:
        subjects = Counter(
            subject for (subject,) in db.execute("SELECT subject FROM messages")
        )
    missing = [token for token in acknowledged if subjects[token] == 0]
    duplicated = [
        subject
        for subject, count in subjects.items()
        if count > 1 and subject.startswith("t")
    ]
    assert load_running, "smtp-source finished before the kill"
    assert killed_after >= 100
    assert missing == []
    assert duplicated == []
