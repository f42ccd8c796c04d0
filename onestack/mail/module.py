"""The email module: SMTP on aiosmtpd, the outbound queue, and IMAP when present."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import ssl
from typing import Any

from onestack.config import EmailConfig
from onestack.events import Event
from onestack.mail.directory import MailboxDirectory
from onestack.mail.outbound import OutboundQueue
from onestack.mail.smtp import SmtpServices, SmtpSession
from onestack.modules import Module, WorkerContext
from onestack.store.mail import GroupCommitter
from onestack.throttle import LoginThrottle
from onestack.tls.sni import default_context

logger = logging.getLogger(__name__)

# Admin events after which the mailbox table is read again.
MAILBOX_EVENTS = frozenset({"mailboxCreated", "mailboxUpdated", "mailboxDeleted"})
# A certificate was issued, uploaded or deleted: the mail hostname's may change.
CERTIFICATE_EVENTS = frozenset({"certificateIssued", "certificateDeleted"})
# Internal event: the admin API queued a message for a remote recipient.
OUTBOUND_QUEUED = "outboundQueued"
STOP_TIMEOUT = 5.0


class EmailModule(Module):
    """SMTP delivery (and IMAP) for the local mailboxes."""

    name = "email"
    config_model = EmailConfig

    def __init__(self, config: EmailConfig, context: WorkerContext) -> None:  # type: ignore[override]
        super().__init__(config, context)
        self.config: EmailConfig = config
        self.directory = MailboxDirectory(context.store)
        self.committer = GroupCommitter(
            context.store, self._publish, addresses=self.directory.address_of
        )
        self.queue = OutboundQueue(config.smtp, context.store, self._publish)
        self.tls_context: ssl.SSLContext | None = None
        self._smtp_server: asyncio.AbstractServer | None = None
        self._imap_server: Any = None

    async def start(self) -> None:
        # aiosmtpd logs every sender and recipient at INFO on "mail.log".
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        smtp = self.config.smtp
        await self.directory.reload()
        self.committer.start()
        self.tls_context = await default_context(
            self.context.store, self.context.data_dir, smtp.hostname
        )
        services = SmtpServices(
            config=smtp,
            store=self.context.store,
            directory=self.directory,
            committer=self.committer,
            throttle=LoginThrottle(self.context.store),
            tls_context=self.tls_context,
            on_queued=self.queue.wake,
        )
        loop = asyncio.get_running_loop()
        self._smtp_server = await loop.create_server(
            lambda: SmtpSession(services),
            host=self.config.host,
            port=smtp.port,
            reuse_port=True,
            backlog=1024,
        )
        logger.info("SMTP listening on %s port %d", self.config.host, smtp.port)
        if self.context.worker_index == 0:
            self.queue.start()
        await self._start_imap()

    async def _start_imap(self) -> None:
        if importlib.util.find_spec("onestack.mail.imap") is None:
            logger.info("IMAP is not part of this version; only SMTP runs")
            return
        from onestack.mail.imap.server import start_imap_server

        self._imap_server = await start_imap_server(
            self.config, self.context, self.tls_context, count=self.committer.count
        )

    async def stop(self) -> None:
        server, self._smtp_server = self._smtp_server, None
        if server is not None:
            server.close()
            try:
                await asyncio.wait_for(server.wait_closed(), STOP_TIMEOUT)
            except TimeoutError:
                logger.warning("SMTP sessions still open after %.0f s", STOP_TIMEOUT)
        imap, self._imap_server = self._imap_server, None
        if imap is not None:
            await imap.stop()
        await self.queue.stop()
        await self.committer.stop()

    async def _publish(self, type_: str, data: dict[str, Any]) -> None:
        """Publish to the bus and to this worker's IMAP sessions.

        The hub relays an event to every process except its sender, so IMAP
        sessions in this worker hear about this worker's deliveries here.
        """
        await self.context.publish(type_, data)
        if self._imap_server is not None:
            await self._imap_server.on_event(Event(type=type_, data=data))

    async def on_event(self, event: Event) -> None:
        if self._imap_server is not None:
            await self._imap_server.on_event(event)
        if event["type"] in MAILBOX_EVENTS:
            await self.directory.reload()
            if event["type"] == "mailboxDeleted":
                self.committer.forget_folders()
        elif event["type"] == OUTBOUND_QUEUED:
            self.queue.wake()
        elif event["type"] in CERTIFICATE_EVENTS and self.tls_context is not None:
            # SMTP and IMAP share this context: reloading it in place gives
            # both the new certificate from their next STARTTLS on.
            await default_context(
                self.context.store,
                self.context.data_dir,
                self.config.smtp.hostname,
                context=self.tls_context,
            )
