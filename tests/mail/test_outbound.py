"""Outbound delivery to a second SMTP server on loopback playing the recipient's MX."""

from __future__ import annotations

import email
import email.policy
import smtplib
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.rrset
import pytest
import trustme
from aiosmtpd.controller import Controller

from tests.mail.conftest import (
    PASSWORD,
    MailServer,
    start_mail_server,
    stop_mail_server,
)
from tests.support import free_port

REMOTE = "far.test"
MX_HOST = "mx.far.test"


class _DnsHandler(socketserver.BaseRequestHandler):
    """Answer MX far.test -> mx.far.test and A mx.far.test -> 127.0.0.1."""

    def handle(self) -> None:
        data, sock = self.request
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True)
        rdtype = dns.rdatatype.to_text(question.rdtype)
        if name == REMOTE and rdtype == "MX":
            response.answer.append(
                dns.rrset.from_text(question.name, 60, "IN", "MX", f"10 {MX_HOST}.")
            )
        elif name == MX_HOST and rdtype == "A":
            response.answer.append(
                dns.rrset.from_text(question.name, 60, "IN", "A", "127.0.0.1")
            )
        elif name not in (REMOTE, MX_HOST):
            response.set_rcode(dns.rcode.NXDOMAIN)
        sock.sendto(response.to_wire(), self.client_address)


@pytest.fixture
def dns_port() -> Iterator[int]:
    server = socketserver.UDPServer(("127.0.0.1", 0), _DnsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Sink:
    """The recipient's MX: records messages, replies as ``reply`` says."""

    port: int
    reply: Callable[[int], str]
    received: list[tuple[str, list[str], bytes, bool]] = field(default_factory=list)
    attempts: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        answer = self.reply(self.attempts)
        if answer.startswith("250"):
            self.received.append(
                (
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    session.ssl is not None,
                )
            )
        return answer


@pytest.fixture
def tls_context() -> ssl.SSLContext:
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(MX_HOST).configure_cert(context)
    return context


def start_sink(
    port: int, reply: Callable[[int], str], context: ssl.SSLContext
) -> tuple[Sink, Controller]:
    sink = Sink(port, reply)
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        server_hostname=MX_HOST,
        tls_context=context,
        require_starttls=True,
    )
    controller.start()
    return sink, controller


def outbound_settings(dns_port: int, mx_port: int, **extra: Any) -> dict[str, Any]:
    return {
        "dnsResolver": f"127.0.0.1:{dns_port}",
        "outboundPort": mx_port,
        "queueRetryBaseSeconds": 0.3,
        "queuePollSeconds": 0.2,
        "outboundTimeout": 10,
        **extra,
    }


def submit(server: MailServer, recipient: str, subject: str) -> bytes:
    """Send as the local user with AUTH, the way a mail client submits."""
    message = f"From: user@example.com\r\nTo: {recipient}\r\nSubject: {subject}\r\n\r\nHello far away\r\n".encode()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as smtp:
        smtp.ehlo()
        smtp.login("user@example.com", PASSWORD)
        smtp.sendmail("user@example.com", [recipient], message)
    return message


def queue_size(server: MailServer) -> int:
    from onestack.store import mail as mailstore

    return server.run(mailstore.queue_length(server.store))


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_delivered_over_starttls(
    tmp_path: Path, dns_port: int, tls_context: ssl.SSLContext
) -> None:
    sink, controller = start_sink(
        free_port(), lambda _attempt: "250 2.0.0 OK", tls_context
    )
    server, thread = start_mail_server(
        tmp_path / "data", outbound_settings(dns_port, sink.port)
    )
    try:
        server.add_mailbox("user@example.com")
        message = submit(server, f"friend@{REMOTE}", "outbound")
        wait_for(lambda: len(sink.received) == 1)
        wait_for(lambda: queue_size(server) == 0)
        mail_from, rcpt_tos, content, encrypted = sink.received[0]
        assert mail_from == "user@example.com"
        assert rcpt_tos == [f"friend@{REMOTE}"]
        assert content.endswith(message)
        assert content.startswith(b"Received: ")
        assert encrypted is True
        assert (
            "emailSent",
            {"from": "user@example.com", "to": f"friend@{REMOTE}"},
        ) in server.events
    finally:
        stop_mail_server(server, thread)
        controller.stop()


def test_deferred_then_delivered_after_restart(
    tmp_path: Path, dns_port: int, tls_context: ssl.SSLContext
) -> None:
    sink, controller = start_sink(
        free_port(),
        lambda attempt: "451 4.3.0 Try again later" if attempt == 1 else "250 2.0.0 OK",
        tls_context,
    )
    settings = outbound_settings(dns_port, sink.port, queueRetryBaseSeconds=2)
    server, thread = start_mail_server(tmp_path / "data", settings)
    try:
        server.add_mailbox("user@example.com")
        submit(server, f"later@{REMOTE}", "deferred")
        wait_for(lambda: sink.attempts == 1)
    finally:
        stop_mail_server(server, thread)
    assert sink.received == []

    # A new server on the same data directory finds the entry and retries it.
    server, thread = start_mail_server(tmp_path / "data", settings)
    try:
        assert queue_size(server) == 1
        wait_for(lambda: len(sink.received) == 1)
        wait_for(lambda: queue_size(server) == 0)
        assert sink.attempts == 2
        assert sink.received[0][1] == [f"later@{REMOTE}"]
    finally:
        stop_mail_server(server, thread)
        controller.stop()


def bounce_report(server: MailServer) -> email.message.EmailMessage:
    wait_for(lambda: len(server.inbox("user@example.com")) == 1)
    (bounce,) = server.inbox("user@example.com")
    report = email.message_from_bytes(bounce.raw, policy=email.policy.default)
    assert isinstance(report, email.message.EmailMessage)
    return report


def delivery_status(report: email.message.EmailMessage) -> dict[str, str]:
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    (part,) = [
        p for p in report.walk() if p.get_content_type() == "message/delivery-status"
    ]
    per_message, per_recipient = part.get_payload()
    return {**dict(per_message.items()), **dict(per_recipient.items())}


def test_permanent_failure_bounces(
    tmp_path: Path, dns_port: int, tls_context: ssl.SSLContext
) -> None:
    sink, controller = start_sink(
        free_port(), lambda _attempt: "550 5.1.1 No such user", tls_context
    )
    server, thread = start_mail_server(
        tmp_path / "data", outbound_settings(dns_port, sink.port)
    )
    try:
        server.add_mailbox("user@example.com")
        submit(server, f"ghost@{REMOTE}", "will bounce")
        report = bounce_report(server)
        fields = delivery_status(report)
        assert fields["Final-Recipient"] == f"rfc822; ghost@{REMOTE}"
        assert fields["Action"] == "failed"
        assert fields["Status"] == "5.1.1"
        assert "550 5.1.1 No such user" in fields["Diagnostic-Code"]
        assert fields["Reporting-MTA"] == "dns; mx.test"
        assert report["Subject"] == "Undelivered Mail Returned to Sender"
        headers = [
            p for p in report.walk() if p.get_content_type() == "text/rfc822-headers"
        ]
        assert len(headers) == 1
        assert sink.attempts == 1
        wait_for(lambda: queue_size(server) == 0)
    finally:
        stop_mail_server(server, thread)
        controller.stop()


def test_retry_time_expired_bounces(
    tmp_path: Path, dns_port: int, tls_context: ssl.SSLContext
) -> None:
    sink, controller = start_sink(
        free_port(), lambda _attempt: "451 4.3.0 Busy", tls_context
    )
    settings = outbound_settings(dns_port, sink.port, queueRetrySeconds=2)
    server, thread = start_mail_server(tmp_path / "data", settings)
    try:
        server.add_mailbox("user@example.com")
        submit(server, f"slow@{REMOTE}", "gives up")
        fields = delivery_status(bounce_report(server))
        assert fields["Status"] == "4.4.7"
        assert "451 4.3.0 Busy" in fields["Diagnostic-Code"]
        assert sink.attempts >= 2
        wait_for(lambda: queue_size(server) == 0)
    finally:
        stop_mail_server(server, thread)
        controller.stop()


def test_unknown_domain_bounces(tmp_path: Path, dns_port: int) -> None:
    server, thread = start_mail_server(
        tmp_path / "data", outbound_settings(dns_port, free_port())
    )
    try:
        server.add_mailbox("user@example.com")
        submit(server, "someone@nowhere.test", "no domain")
        fields = delivery_status(bounce_report(server))
        assert fields["Status"] == "5.1.2"
    finally:
        stop_mail_server(server, thread)
