"""Building a message from the fields of POST /api/send-email, safely.

Every field that ends up in a header is checked for CR and LF, so a value
cannot start a new header line (header injection). Custom header names must
be RFC 5322 field names and may not replace the headers built here.
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from onestack.store.mail import now

# RFC 5322 section 3.6.8: a field name is printable US-ASCII except colon.
_FIELD_NAME = re.compile(r"^[!-9;-~]{1,76}$")
# RFC 5321 section 4.1.2 dot-atom local part, kept to the common characters.
_LOCAL_PART = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$"
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Headers built from the request's own fields, or by MIME, that custom
# headers may not override.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "received",
        "return-path",
    }
)
MAX_SUBJECT = 998


class ComposeError(ValueError):
    """A request field is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def is_valid_domain(domain: str) -> bool:
    """Tell whether ``domain`` is a hostname with at least two labels."""
    if not domain or len(domain) > 253 or domain.endswith("."):
        return False
    labels = domain.split(".")
    return (
        len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )


def check_address(field: str, address: str) -> str:
    """Return ``address`` lowercased if it is a plain mailbox address; raise ComposeError."""
    if "\r" in address or "\n" in address:
        raise ComposeError(field, "must not contain CR or LF")
    local, at, domain = address.strip().rpartition("@")
    if not at or len(local) > 64 or not _LOCAL_PART.match(local):
        raise ComposeError(field, f"{address!r} is not a valid email address")
    if not is_valid_domain(domain.lower()):
        raise ComposeError(field, f"{domain!r} is not a valid domain")
    return f"{local}@{domain}".lower()


def no_line_breaks(field: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ComposeError(field, "must not contain CR or LF")
    return value


@dataclass(frozen=True)
class Composed:
    """A built message with its envelope."""

    mail_from: str
    recipients: list[str]
    message_id: str
    raw: bytes


def compose(
    *,
    sender: str,
    recipients: list[str],
    subject: str,
    body: str,
    html: str | None,
    headers: dict[str, str],
    hostname: str,
) -> Composed:
    """Build the RFC 5322 message; raise ComposeError naming the bad field."""
    mail_from = check_address("from", sender)
    if not recipients:
        raise ComposeError("to", "at least one recipient is required")
    rcpts = [check_address("to", r) for r in recipients]
    no_line_breaks("subject", subject)
    if len(subject) > MAX_SUBJECT:
        raise ComposeError("subject", f"is longer than {MAX_SUBJECT} characters")
    for name, value in headers.items():
        if not _FIELD_NAME.match(name):
            raise ComposeError(f"headers.{name}", "is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise ComposeError(
                f"headers.{name}", "is set by OneStack and cannot be overridden"
            )
        no_line_breaks(f"headers.{name}", value)

    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = Address(addr_spec=mail_from)
    message["To"] = ", ".join(rcpts)
    message["Subject"] = subject
    message["Date"] = format_datetime(now())
    message_id = make_msgid(domain=hostname)
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name] = value
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    return Composed(mail_from, rcpts, message_id, message.as_bytes())
