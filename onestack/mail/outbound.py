"""Outbound delivery: the queue runner, MX lookup, SMTP client and bounces.

Entries live in ``outbound_queue`` until delivered or bounced, so the queue
survives a restart. One runner per worker claims due entries with a lease
(see ``claim_due``); by default only worker 0 runs one.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import timedelta

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from onestack.config import SmtpConfig
from onestack.mail.dsn import build_bounce
from onestack.store import Store
from onestack.store import mail as mailstore
from onestack.store.mail import Delivery, Publish, QueuedRecipient, QueueEntry

logger = logging.getLogger(__name__)

MAX_RETRY_DELAY = 3600.0
BATCH = 20


class DeliveryError(Exception):
    """A delivery attempt failed; ``permanent`` errors are not retried."""

    def __init__(self, message: str, *, permanent: bool, status: str) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status  # RFC 3463 enhanced status code for the DSN


@dataclass(frozen=True)
class Target:
    """One host to try, with the port to connect to."""

    host: str
    port: int


def parse_host_port(text: str, default_port: int) -> Target:
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return Target(host.strip("[]"), int(port))
    return Target(text.strip("[]"), default_port)


class MxResolver:
    """Find where mail for a domain goes (RFC 5321 section 5.1)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        if config.dnsResolver:
            self.resolver = dns.asyncresolver.Resolver(configure=False)
            server = parse_host_port(config.dnsResolver, 53)
            self.resolver.nameservers = [server.host]
            self.resolver.port = server.port
        else:
            self.resolver = dns.asyncresolver.Resolver()
        self.resolver.lifetime = 10.0

    async def targets(self, domain: str) -> list[Target]:
        """Return the hosts to try in order; raise DeliveryError when there are none."""
        if self.config.relayHost:
            return [parse_host_port(self.config.relayHost, 25)]
        port = self.config.outboundPort
        try:
            answer = await self.resolver.resolve(domain, "MX")
        except dns.resolver.NXDOMAIN:
            raise DeliveryError(
                f"domain {domain} does not exist", permanent=True, status="5.1.2"
            ) from None
        except dns.resolver.NoAnswer:
            # No MX: the domain itself is the implicit MX.
            return [Target(address, port) for address in await self._addresses(domain)]
        except dns.exception.DNSException as exc:
            raise DeliveryError(
                f"MX lookup for {domain} failed: {type(exc).__name__}",
                permanent=False,
                status="4.4.3",
            ) from None

        records = sorted(answer, key=lambda r: r.preference)
        # RFC 7505: a single MX of "." says the domain accepts no mail.
        if len(records) == 1 and records[0].exchange == dns.name.root:
            raise DeliveryError(
                f"domain {domain} accepts no mail (null MX)",
                permanent=True,
                status="5.1.10",
            )
        targets: list[Target] = []
        for record in records:
            host = record.exchange.to_text(omit_final_dot=True)
            try:
                targets.extend(Target(a, port) for a in await self._addresses(host))
            except DeliveryError as exc:
                logger.info("MX host %s of %s skipped: %s", host, domain, exc)
        if not targets:
            raise DeliveryError(
                f"no address for any MX host of {domain}",
                permanent=False,
                status="4.4.3",
            )
        return targets

    async def _addresses(self, host: str) -> list[str]:
        addresses: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(host, rdtype)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except dns.exception.DNSException as exc:
                raise DeliveryError(
                    f"address lookup for {host} failed: {type(exc).__name__}",
                    permanent=False,
                    status="4.4.3",
                ) from None
            addresses.extend(record.address for record in answer)
        if not addresses:
            raise DeliveryError(
                f"host {host} has no address", permanent=False, status="4.4.4"
            )
        return addresses


def send_message(
    target: Target, helo: str, mail_from: str, rcpt_to: str, raw: bytes, timeout: float
) -> str:
    """Send one message over SMTP (blocking; run it in a thread). Returns the reply."""
    needs_utf8 = not (mail_from.isascii() and rcpt_to.isascii())
    try:
        with smtplib.SMTP(
            target.host, target.port, local_hostname=helo, timeout=timeout
        ) as client:
            client.ehlo()
            if client.has_extn("starttls"):
                # Opportunistic TLS (RFC 7435): encrypt when offered, without
                # certificate checks, as MX hosts rarely have names to check.
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                client.starttls(context=context)
                client.ehlo()
            options: list[str] = []
            if client.has_extn("8bitmime") and not raw.isascii():
                options.append("BODY=8BITMIME")
            if needs_utf8:
                if not client.has_extn("smtputf8"):
                    raise DeliveryError(
                        "the receiving server does not support SMTPUTF8 addresses",
                        permanent=True,
                        status="5.6.7",
                    )
                options.append("SMTPUTF8")
            client.sendmail(mail_from, [rcpt_to], raw, mail_options=options)
            return "250 accepted"
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = exc.recipients[rcpt_to]
        raise _reply_error(code, text) from None
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        raise _reply_error(exc.smtp_code, exc.smtp_error) from None
    except smtplib.SMTPResponseException as exc:
        raise _reply_error(exc.smtp_code, exc.smtp_error) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"connection to {target.host}:{target.port} failed: {type(exc).__name__}: {exc}",
            permanent=False,
            status="4.4.1",
        ) from None


def _reply_error(code: int, text: bytes | str) -> DeliveryError:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    reply = f"{code} {' '.join(message.split())}"
    enhanced = message.split(" ", 1)[0]
    if not (enhanced[:1] in "45" and enhanced.count(".") == 2):
        enhanced = f"{str(code)[0]}.0.0"
    return DeliveryError(reply, permanent=code >= 500, status=enhanced)


class OutboundQueue:
    """Deliver queued messages with retries; bounce what finally fails."""

    def __init__(
        self, config: SmtpConfig, store: Store, publish: Publish | None
    ) -> None:
        self.config = config
        self.store = store
        self.publish = publish
        self.resolver = MxResolver(config)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mail-outbound-queue")
            logger.info("outbound queue runner started")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def wake(self) -> None:
        """Look at the queue now instead of at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        lease = timedelta(seconds=self.config.outboundTimeout * 4 + 60)
        while True:
            try:
                entries = await mailstore.claim_due(self.store, BATCH, lease)
                if entries:
                    await asyncio.gather(*(self.attempt(entry) for entry in entries))
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbound queue pass failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.queuePollSeconds)
            except TimeoutError:
                pass

    async def attempt(self, entry: QueueEntry) -> None:
        """Try one entry once: deliver, defer or bounce it."""
        domain = entry.rcpt_to.rpartition("@")[2]
        try:
            reply = await self._deliver(entry, domain)
        except DeliveryError as error:
            await self._failed(entry, error)
            return
        await mailstore.finish_entry(self.store, entry.id, sent=True)
        logger.info("queue %d: delivered to %s: %s", entry.id, entry.rcpt_to, reply)
        if self.publish is not None:
            await self.publish(
                "emailSent", {"from": entry.mail_from, "to": entry.rcpt_to}
            )

    async def _deliver(self, entry: QueueEntry, domain: str) -> str:
        targets = await self.resolver.targets(domain)
        last: DeliveryError | None = None
        for target in targets:
            try:
                return await asyncio.to_thread(
                    send_message,
                    target,
                    self.config.hostname,
                    entry.mail_from,
                    entry.rcpt_to,
                    entry.raw,
                    self.config.outboundTimeout,
                )
            except DeliveryError as error:
                if error.permanent:
                    raise
                last = error
                logger.info("queue %d: %s", entry.id, error)
        assert last is not None
        raise last

    async def _failed(self, entry: QueueEntry, error: DeliveryError) -> None:
        age = (mailstore.now() - entry.created_at).total_seconds()
        if not error.permanent and age < self.config.queueRetrySeconds:
            delay = min(
                self.config.queueRetryBaseSeconds * 2**entry.attempts, MAX_RETRY_DELAY
            )
            retry_at = mailstore.now() + timedelta(seconds=delay)
            await mailstore.defer_entry(self.store, entry.id, str(error), retry_at)
            logger.info(
                "queue %d: deferred for %.0f s after attempt %d: %s",
                entry.id,
                delay,
                entry.attempts + 1,
                error,
            )
            return
        status = error.status if error.permanent else "4.4.7"
        diagnostic = str(error)
        if not error.permanent:
            diagnostic = f"delivery gave up after {age:.0f} s; last error: {error}"
        logger.warning(
            "queue %d: bouncing message to %s: %s", entry.id, entry.rcpt_to, diagnostic
        )
        await self._bounce(entry, status, diagnostic)
        await mailstore.finish_entry(self.store, entry.id, sent=False)

    async def _bounce(self, entry: QueueEntry, status: str, diagnostic: str) -> None:
        if not entry.mail_from:
            # RFC 5321 section 4.5.5: a message with a null sender (itself a
            # bounce) is never bounced, which prevents bounce loops.
            logger.info("queue %d: null sender, no bounce sent", entry.id)
            return
        bounce = build_bounce(
            reporting_mta=self.config.hostname,
            mail_from=entry.mail_from,
            recipient=entry.rcpt_to,
            status=status,
            diagnostic=diagnostic,
            original=entry.raw,
            arrival=entry.created_at,
            last_attempt=mailstore.now(),
        )
        account = await mailstore.get_account(self.store, entry.mail_from)
        if account is not None:
            await mailstore.deliver(
                self.store,
                Delivery(account.id, bounce, mail_from="", rcpt_to=[entry.mail_from]),
                publish=self.publish,
                mailbox_address=account.email,
            )
            return
        async with self.store.engine.begin() as conn:
            await mailstore.enqueue(conn, QueuedRecipient("", entry.mail_from, bounce))
