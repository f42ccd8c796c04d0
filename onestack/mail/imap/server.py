"""The IMAP listener: accepts connections and relays mail events to sessions.

The email module starts one ``ImapServer`` per worker process with
``start_imap_server`` and forwards every event it hears to ``on_event``.
Sessions of an account are woken when an event names that account. Events a
worker publishes itself do not come back to it, and some writers publish
nothing. So a watcher also reads the ``highestmodseq`` of every folder that
has an IDLE session, in one query per second, and wakes the sessions whose
folder changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from onestack.config import EmailConfig
from onestack.events import Event
from onestack.mail.imap.bodystructure import MessageCache
from onestack.mail.imap.mailstore import Folder, MailStore, MessageChange
from onestack.mail.imap.session import ImapSession
from onestack.modules import WorkerContext
from onestack.throttle import LoginThrottle

logger = logging.getLogger(__name__)

# Events after which sessions of the named account look for changes.
MAIL_EVENT_TYPES = frozenset(
    {
        "emailReceived",
        "messageUpdated",
        "messageDeleted",
        "mailFolderChanged",
        "mailboxDeleted",
    }
)
# How often the watcher compares the IDLE sessions' folders with the store.
WATCH_SECONDS = 1.0
# An IDLE session also checks its folder itself this often, should the
# watcher fall behind.
IDLE_POLL_SECONDS = 30.0
# Events after which the sessions of an account check that it may still log in.
ACCOUNT_EVENT_TYPES = frozenset({"mailboxUpdated", "mailboxDeleted"})


class ImapServer:
    """One worker's IMAP listener and its open sessions."""

    def __init__(
        self,
        config: EmailConfig,
        context: WorkerContext,
        ssl_context: ssl.SSLContext | None,
        count: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.context = context
        self.ssl_context = ssl_context
        # Adds to a named counter of /api/email/stats (imapConnections).
        self.count = count or (lambda _name: None)
        self.mail = MailStore(context.store)
        self.cache = MessageCache()
        self.throttle = LoginThrottle(context.store)
        self.max_line = config.imap.maxLineLength
        self.max_literal = config.imap.maxLiteralSize
        self.idle_poll_seconds = IDLE_POLL_SECONDS
        self.watch_seconds = WATCH_SECONDS
        self.idling: set[ImapSession] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_account: dict[int, set[ImapSession]] = defaultdict(set)

    async def start(self) -> None:
        host, port = self.config.host, self.config.imap.port
        self._server = await asyncio.start_server(
            self._accept, host, port, reuse_port=True, limit=self.max_line
        )
        self._watcher = asyncio.create_task(self._watch())
        logger.info("IMAP listening on %s:%d", host, port)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listener and every session; safe to call twice."""
        server, self._server = self._server, None
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
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

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.count("imapConnections")
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

    async def _watch(self) -> None:
        """Wake the IDLE sessions whose folder changed, by any writer."""
        while True:
            await asyncio.sleep(self.watch_seconds)
            watched = {
                session: session.selected
                for session in self.idling
                if session.selected is not None
            }
            if not watched:
                continue
            try:
                current = await self.mail.highestmodseqs(
                    {selected.folder.id for selected in watched.values()}
                )
            except Exception:
                logger.exception("IMAP watcher could not read folders")
                continue
            for session, selected in watched.items():
                if current.get(selected.folder.id) != selected.highestmodseq:
                    session.notify()

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
        if event["type"] in ACCOUNT_EVENT_TYPES:
            account_id = event["data"].get("id")
            if isinstance(account_id, int) and account_id in self._by_account:
                await self._end_revoked_sessions(account_id)

    async def _end_revoked_sessions(self, account_id: int) -> None:
        """Close the sessions of an account that was disabled or deleted."""
        if await self.mail.account_active(account_id):
            return
        for session in list(self._by_account.get(account_id, ())):
            session.revoke()

    async def publish(self, type_: str, data: dict[str, Any]) -> None:
        """Publish to other processes and wake this process's sessions too."""
        await self.context.publish(type_, data)
        self._wake(data.get("mailboxId"))

    async def publish_changes(
        self, account_id: int, changes: list[MessageChange]
    ) -> None:
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
                "messageDeleted",
                {"id": message_id, "mailboxId": account_id, "folder": folder.name},
            )

    async def publish_folder_changed(
        self, account_id: int, folder_id: int | None
    ) -> None:
        await self.publish(
            "mailFolderChanged", {"mailboxId": account_id, "folderId": folder_id}
        )


async def start_imap_server(
    config: EmailConfig,
    context: WorkerContext,
    ssl_context: ssl.SSLContext | None,
    count: Callable[[str], None] | None = None,
) -> ImapServer:
    """Bind ``config.host:config.imap.port`` (SO_REUSEPORT) and serve IMAP."""
    server = ImapServer(config, context, ssl_context, count)
    await server.start()
    return server
