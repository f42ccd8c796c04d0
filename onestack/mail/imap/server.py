"""The IMAP listener: accepts connections and relays mail events to sessions.

The email module starts one ``ImapServer`` per worker process with
``start_imap_server`` and forwards every event it hears to ``on_event``.
Sessions of an account are woken when an event names that account, so an
IDLE session reports new mail within a second of the event; IDLE also polls
the folder's ``highestmodseq`` as a fallback for writers that publish nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import defaultdict
from typing import Any

from onestack.config import EmailConfig
from onestack.events import Event
from onestack.mail.imap.mailstore import Folder, MailStore, MessageChange
from onestack.mail.imap.session import ImapSession
from onestack.modules import WorkerContext
from onestack.throttle import LoginThrottle

logger = logging.getLogger(__name__)

# Events after which sessions of the named account look for changes.
MAIL_EVENT_TYPES = frozenset(
    {"emailReceived", "messageUpdated", "messageDeleted", "mailFolderChanged", "mailboxDeleted"}
)
IDLE_POLL_SECONDS = 5.0


class ImapServer:
    """One worker's IMAP listener and its open sessions."""

    def __init__(
        self,
        config: EmailConfig,
        context: WorkerContext,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.config = config
        self.context = context
        self.ssl_context = ssl_context
        self.mail = MailStore(context.store)
        self.throttle = LoginThrottle(context.store)
        self.max_line = config.imap.maxLineLength
        self.max_literal = config.imap.maxLiteralSize
        self.idle_poll_seconds = IDLE_POLL_SECONDS
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_account: dict[int, set[ImapSession]] = defaultdict(set)

    async def start(self) -> None:
        host, port = self.config.host, self.config.imap.port
        self._server = await asyncio.start_server(
            self._accept, host, port, reuse_port=True, limit=self.max_line
        )
        logger.info("IMAP listening on %s:%d", host, port)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listener and every session; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            logger.info("IMAP listener closed")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await ImapSession(self, reader, writer).handle()
        except asyncio.CancelledError:
            writer.close()
        except Exception:
            logger.exception("IMAP session failed")
            writer.close()
        finally:
            self._tasks.discard(task)

    # --- sessions and events -----------------------------------------------

    def register(self, session: ImapSession) -> None:
        assert session.account is not None
        self._by_account[session.account.id].add(session)

    def forget(self, session: ImapSession) -> None:
        if session.account is not None:
            sessions = self._by_account.get(session.account.id)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del self._by_account[session.account.id]

    def _wake(self, account_id: Any) -> None:
        if isinstance(account_id, int):
            targets = list(self._by_account.get(account_id, ()))
        else:
            targets = [s for sessions in self._by_account.values() for s in sessions]
        for session in targets:
            session.notify()

    async def on_event(self, event: Event) -> None:
        """Wake the sessions an event from another process concerns."""
        if event["type"] in MAIL_EVENT_TYPES:
            self._wake(event["data"].get("mailboxId"))

    async def publish(self, type_: str, data: dict[str, Any]) -> None:
        """Publish to other processes and wake this process's sessions too."""
        await self.context.publish(type_, data)
        self._wake(data.get("mailboxId"))

    async def publish_changes(self, account_id: int, changes: list[MessageChange]) -> None:
        for change in changes:
            await self.publish(
                "messageUpdated",
                {
                    "id": change.id,
                    "mailboxId": account_id,
                    "folder": change.folder,
                    "read": change.read,
                    "flagged": change.flagged,
                },
            )

    async def publish_deleted(
        self, account_id: int, folder: Folder, removed: list[tuple[int, int]]
    ) -> None:
        for message_id, _ in removed:
            await self.publish(
                "messageDeleted", {"id": message_id, "mailboxId": account_id, "folder": folder.name}
            )

    async def publish_folder_changed(self, account_id: int, folder_id: int | None) -> None:
        await self.publish("mailFolderChanged", {"mailboxId": account_id, "folderId": folder_id})


async def start_imap_server(
    config: EmailConfig, context: WorkerContext, ssl_context: ssl.SSLContext | None
) -> ImapServer:
    """Bind ``config.host:config.imap.port`` (SO_REUSEPORT) and serve IMAP."""
    server = ImapServer(config, context, ssl_context)
    await server.start()
    return server
