"""Delivery status notifications (bounces), RFC 3464 and RFC 3462."""

from __future__ import annotations

import secrets
from datetime import datetime
from email.utils import format_datetime, make_msgid


def build_bounce(
    *,
    reporting_mta: str,
    mail_from: str,
    recipient: str,
    status: str,
    diagnostic: str,
    original: bytes,
    arrival: datetime,
    last_attempt: datetime,
) -> bytes:
    """Return a multipart/report bounce telling ``mail_from`` delivery failed."""
    boundary = "=_bounce_" + secrets.token_hex(12)
    text = (
        f"Your message to <{recipient}> could not be delivered.\r\n\r\n"
        f"The remote server or the queue reported:\r\n    {_one_line(diagnostic)}\r\n"
    )
    # RFC 3464 section 2.2 (per-message fields) and 2.3 (per-recipient fields).
    status_fields = (
        f"Reporting-MTA: dns; {reporting_mta}\r\n"
        f"Arrival-Date: {format_datetime(arrival)}\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {_one_line(diagnostic)}\r\n"
        f"Last-Attempt-Date: {format_datetime(last_attempt)}\r\n"
    )
    original_headers = original.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    head = (
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>\r\n"
        f"To: <{mail_from}>\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(last_attempt)}\r\n"
        f"Message-ID: {make_msgid(domain=reporting_mta)}\r\n"
        # RFC 3834: an automatic message that must not be answered.
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f'\tboundary="{boundary}"\r\n'
        "\r\n"
        "This is a delivery status notification in MIME format (RFC 3464).\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        f"{text}"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        f"{status_fields}"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
    )
    tail = f"--{boundary}--\r\n"
    return head.encode("utf-8") + original_headers + tail.encode()


def _one_line(text: str) -> str:
    return " ".join(text.split())[:900]
