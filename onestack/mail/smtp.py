"""The SMTP server: one aiosmtpd session per connection, local delivery rules.

aiosmtpd parses the protocol (RFC 5321), STARTTLS (RFC 3207), SIZE, 8BITMIME,
SMTPUTF8 and dot-stuffing. This module adds what a mail server decides:
which recipients are accepted, AUTH against local mailboxes, quotas, the
``Received`` header, and the rule that ``250`` after DATA is sent only once
the message is committed to the store.
"""

from __future__ import annotations

import asyncio
import binascii
import ipaddress
import itertools
import logging
import re
import ssl
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

from onestack.config import SmtpConfig
from onestack.mail.directory import MailboxDirectory
from onestack.store import Store
from onestack.store import mail as mailstore
from onestack.store.mail import Delivery, GroupCommitter, QueuedRecipient
from onestack.throttle import LoginThrottle

logger = logging.getLogger(__name__)

_connection_ids = itertools.count(1)

# RFC 2034 section 3: once ENHANCEDSTATUSCODES is offered, every 2xx, 4xx and
# 5xx reply except the greeting and the EHLO/HELO reply carries one. These
# fill in the replies that aiosmtpd writes without one.
_DEFAULT_ENHANCED = {
    "2": "2.0.0",
    "421": "4.4.2",
    "451": "4.3.0",
    "452": "4.3.1",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "535": "5.7.8",
    "538": "5.7.11",
    "552": "5.3.4",
    "554": "5.0.0",
    "555": "5.5.4",
}
_HAS_ENHANCED = re.compile(rb"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}")
_REPLY_CODE = re.compile(rb"^([245])(\d\d)([ -])")

TEMPORARY_FAILURE = "451 4.3.0 Temporary local failure; try again later"


def _with_enhanced_code(line: bytes) -> bytes:
    match = _REPLY_CODE.match(line)
    if match is None or _HAS_ENHANCED.match(line):
        return line
    code = (match.group(1) + match.group(2)).decode()
    enhanced = _DEFAULT_ENHANCED.get(code) or _DEFAULT_ENHANCED.get(code[0])
    if enhanced is None:
        enhanced = f"{code[0]}.0.0"
    return line[:4] + enhanced.encode() + b" " + line[4:]


def is_loopback(peer: Any) -> bool:
    try:
        return ipaddress.ip_address(peer[0]).is_loopback
    except (TypeError, ValueError, IndexError):
        return False


def has_bare_line_ending(data: bytes) -> bool:
    """Tell whether ``data`` has a CR or LF outside a CRLF pair."""
    stripped = data.replace(b"\r\n", b"")
    return b"\n" in stripped or b"\r" in stripped


def has_control_character(address: str) -> bool:
    """Tell whether an address has a control character, which RFC 5321's
    mailbox syntax does not allow and PostgreSQL text cannot store (NUL).
    """
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in address)


def declared_size(mail_options: list[str]) -> int:
    """Return the SIZE= value of MAIL FROM (RFC 1870), or 0."""
    for option in mail_options:
        if option.upper().startswith("SIZE="):
            value = option[5:]
            if value.isdigit():
                return int(value)
    return 0


@dataclass
class SmtpServices:
    """What every SMTP session of one worker shares."""

    config: SmtpConfig
    store: Store
    directory: MailboxDirectory
    committer: GroupCommitter
    throttle: LoginThrottle
    tls_context: ssl.SSLContext | None
    on_queued: Callable[[], None]


class SmtpSession(SMTP):
    """One SMTP connection: aiosmtpd's protocol state plus OneStack's reply rules."""

    def __init__(self, services: SmtpServices) -> None:
        config = services.config
        # aiosmtpd sizes its line reader from this attribute in __init__.
        self.line_length_limit = config.maxLineLength
        super().__init__(
            DeliveryHandler(services),
            data_size_limit=config.maxMessageSize,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=config.hostname,
            ident="ESMTP OneStack",
            tls_context=services.tls_context,
            timeout=config.commandTimeout,
            auth_require_tls=True,
        )
        self.services = services
        self.connection_id = next(_connection_ids)
        self._greeted = False
        self._in_hello = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        assert self.session is not None
        # AUTH needs TLS except on loopback, where nothing can be overheard.
        self._auth_require_tls = not is_loopback(self.session.peer)
        if first:
            self.services.committer.count("smtpConnections")
            logger.debug(
                "smtp %d: connection from %s", self.connection_id, self.session.peer
            )

    async def push(self, status: str | bytes) -> None:
        line = status.encode() if isinstance(status, str) else status
        if not self._greeted:
            self._greeted = True
        elif not self._in_hello:
            line = _with_enhanced_code(line)
        await super().push(line)

    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_hello = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_hello = False

    async def smtp_HELO(self, hostname: str) -> None:
        self._in_hello = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._in_hello = False


class DeliveryHandler:
    """aiosmtpd hooks: EHLO extensions, AUTH, recipient checks and DATA."""

    def __init__(self, services: SmtpServices) -> None:
        self.services = services

    async def handle_EHLO(
        self,
        server: SmtpSession,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        # aiosmtpd reads commands one line at a time, so pipelined commands
        # (RFC 2920) work; it just does not announce the extension itself.
        return (
            responses[:-1]
            + ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
            + responses[-1:]
        )

    async def handle_MAIL(
        self,
        server: SmtpSession,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if has_control_character(address):
            return "553 5.1.7 Invalid sender address"
        # NOTE: an authenticated client may use any MAIL FROM address; the
        # sender is not yet bound to the logged-in mailbox.
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self,
        server: SmtpSession,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        services = self.services
        if len(envelope.rcpt_tos) >= services.config.maxRecipients:
            logger.warning(
                "smtp %d: recipient limit %d reached",
                server.connection_id,
                services.config.maxRecipients,
            )
            return "452 4.5.3 Too many recipients"
        local_part, at, domain = address.rpartition("@")
        if not at or not local_part or not domain or has_control_character(address):
            return "550 5.1.3 Invalid recipient address"

        await services.directory.refresh_if_stale()
        mailbox = services.directory.get(address)
        if mailbox is not None:
            if not mailbox.enabled:
                return "550 5.2.1 Mailbox disabled"
            size = declared_size(envelope.mail_options)
            if size > mailbox.quota:
                return "552 5.3.4 Message is larger than the mailbox quota"
            used = await services.directory.quota_used(mailbox)
            if used >= mailbox.quota or used + size > mailbox.quota:
                return "452 4.2.2 Mailbox full"
        elif services.directory.is_local_domain(domain):
            return "550 5.1.1 No such user here"
        elif not session.authenticated:
            logger.info(
                "smtp %d: relay to %s denied for unauthenticated %s",
                server.connection_id,
                _printable(address),
                session.peer,
            )
            return "554 5.7.1 Relay access denied"

        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(
        self, server: SmtpSession, session: Session, envelope: Envelope
    ) -> str:
        services = self.services
        content = envelope.original_content or b""
        # RFC 5321 section 2.3.8: lines end in CRLF. A bare LF is rejected,
        # because servers that read it as a line end differ on where the
        # message ends (SMTP smuggling).
        if has_bare_line_ending(content):
            logger.warning(
                "smtp %d: message with a bare CR or LF rejected", server.connection_id
            )
            return "550 5.6.11 Message contains a bare CR or LF; lines must end in CRLF"

        raw = self._received_header(server, session, envelope) + content
        deliveries: list[Delivery] = []
        queued: list[QueuedRecipient] = []
        seen: set[int] = set()
        for rcpt in envelope.rcpt_tos:
            mailbox = services.directory.get(rcpt)
            if mailbox is None:
                queued.append(QueuedRecipient(envelope.mail_from or "", rcpt, raw))
                continue
            if mailbox.id in seen:
                continue
            seen.add(mailbox.id)
            if len(raw) > mailbox.quota:
                return "552 5.3.4 Message is larger than the mailbox quota"
            if await services.directory.quota_used(mailbox) + len(raw) > mailbox.quota:
                return "452 4.2.2 Mailbox full"
            deliveries.append(
                Delivery(
                    mailbox_id=mailbox.id,
                    raw=raw,
                    mail_from=envelope.mail_from or "",
                    rcpt_to=[rcpt],
                )
            )

        try:
            stored = await services.committer.store_message(
                deliveries, queued, {"messagesReceived": 1} if deliveries else {}
            )
        except mailstore.MailStoreError as exc:
            logger.warning("smtp %d: delivery failed: %s", server.connection_id, exc)
            return TEMPORARY_FAILURE
        except Exception:
            logger.exception("smtp %d: storing a message failed", server.connection_id)
            return TEMPORARY_FAILURE

        for message in stored:
            services.directory.add_usage(message.mailbox_id, message.size)
        if queued:
            services.on_queued()
        logger.debug(
            "smtp %d: stored %d local copies, queued %d remote",
            server.connection_id,
            len(stored),
            len(queued),
        )
        ids = ",".join(str(message.id) for message in stored) or "outbound"
        return f"250 2.0.0 OK stored as {ids}"

    def _received_header(
        self, server: SmtpSession, session: Session, envelope: Envelope
    ) -> bytes:
        # RFC 5321 section 4.4 gives the fields; RFC 3848 the "with" types.
        protocol = "ESMTP" if session.extended_smtp else "SMTP"
        if server._tls_protocol is not None:
            protocol += "S"
        if session.authenticated:
            protocol += "A"
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        helo = _printable(session.host_name or "unknown")
        recipient = ""
        if len(envelope.rcpt_tos) == 1:
            recipient = f"\r\n\tfor <{_printable(envelope.rcpt_tos[0])}>"
        header = (
            f"Received: from {helo} ([{peer}])\r\n"
            f"\tby {server.hostname} (OneStack) with {protocol} id {server.connection_id}"
            f"{recipient}; {formatdate(localtime=False, usegmt=True)}\r\n"
        )
        return header.encode("utf-8", "replace")

    async def handle_AUTH(
        self, server: SmtpSession, session: Session, envelope: Envelope, args: list[str]
    ) -> str | None:
        services = self.services
        key = "ip:" + (
            session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        )
        wait = await services.throttle.retry_after(key)
        if wait:
            return f"454 4.7.0 Too many failed logins; try again in {wait} seconds"

        credentials = await self._read_credentials(server, args)
        if credentials is None:
            return None  # the error reply is already sent
        login, password = credentials
        account = await mailstore.verify_credentials(services.store, login, password)
        if account is None:
            await services.throttle.record_failure(key)
            delay = await services.throttle.delay_for(key)
            if delay:
                await asyncio.sleep(delay)
            logger.info(
                "smtp %d: AUTH failed for %s from %s",
                server.connection_id,
                _printable(login),
                key,
            )
            return "535 5.7.8 Authentication credentials invalid"

        await services.throttle.record_success(key)
        session.authenticated = True
        session.auth_data = account.email
        logger.info(
            "smtp %d: %s logged in from %s", server.connection_id, account.email, key
        )
        return "235 2.7.0 Authentication successful"

    async def _read_credentials(
        self, server: SmtpSession, args: list[str]
    ) -> tuple[str, str] | None:
        mechanism = args[0].upper()
        initial = args[1] if len(args) > 1 else None
        try:
            if mechanism == "PLAIN":
                # RFC 4616: authzid NUL authcid NUL passwd
                blob = await self._response(server, initial, "")
                if blob is None:
                    return None
                parts = blob.split(b"\x00")
                if len(parts) != 3:
                    await server.push("501 5.5.2 Invalid PLAIN credentials")
                    return None
                return parts[1].decode(), parts[2].decode()
            user = await self._response(server, initial, "Username:")
            if user is None:
                return None
            password = await self._response(server, None, "Password:")
            if password is None:
                return None
            return user.decode(), password.decode()
        except UnicodeDecodeError:
            await server.push("501 5.5.2 Credentials must be UTF-8")
            return None

    async def _response(
        self, server: SmtpSession, initial: str | None, challenge: str
    ) -> bytes | None:
        if initial is not None:
            if initial == "=":
                return b""
            try:
                return b64decode(initial, validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Invalid base64 data")
                return None
        answer = await server.challenge_auth(challenge)
        if answer is MISSING:
            return None
        assert isinstance(answer, bytes)
        return answer


def _printable(text: str) -> str:
    """Escape client-supplied text before it reaches a log line or header."""
    return (
        text.encode("ascii", "backslashreplace")
        .decode("ascii")
        .replace("\r", "\\r")
        .replace("\n", "\\n")
    )
