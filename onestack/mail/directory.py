"""An in-memory table of local mailboxes for recipient checks at SMTP speed.

Each RCPT is answered from memory. The table is reloaded when an admin
event says a mailbox changed, when the event bus reconnects, and every
``REFRESH_SECONDS`` as a fallback. Quota use is read from the store at most
every ``USAGE_TTL_SECONDS`` per mailbox and raised by this worker's own
deliveries in between.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import select

from onestack.store import Store
from onestack.store import mail as mailstore
from onestack.store.tables import mailboxes

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 30.0
USAGE_TTL_SECONDS = 5.0


@dataclass
class LocalMailbox:
    """A mailbox as the SMTP server sees it."""

    id: int
    email: str
    enabled: bool
    quota: int
    used: int = 0
    used_at: float = 0.0


class MailboxDirectory:
    """Local mailboxes and local domains, kept in memory."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_address: dict[str, LocalMailbox] = {}
        self._by_id: dict[int, LocalMailbox] = {}
        # Domains of every mailbox row, soft-deleted ones too, so mail for a
        # removed address is "unknown user" rather than a relay attempt.
        self._domains: set[str] = set()
        self.loaded_at = 0.0

    async def reload(self) -> None:
        async with self.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        mailboxes.c.id,
                        mailboxes.c.email,
                        mailboxes.c.enabled,
                        mailboxes.c.quota,
                        mailboxes.c.deleted_at,
                    )
                )
            ).all()
        by_address: dict[str, LocalMailbox] = {}
        domains: set[str] = set()
        for row in rows:
            domains.add(row.email.rpartition("@")[2])
            if row.deleted_at is not None:
                continue
            previous = self._by_address.get(row.email)
            entry = LocalMailbox(row.id, row.email, row.enabled, row.quota)
            if previous is not None and previous.id == row.id:
                entry.used, entry.used_at = previous.used, previous.used_at
            by_address[row.email] = entry
        self._by_address = by_address
        self._by_id = {entry.id: entry for entry in by_address.values()}
        self._domains = domains
        self.loaded_at = time.monotonic()
        logger.debug("mailbox table loaded: %d mailboxes", len(by_address))

    async def refresh_if_stale(self) -> None:
        if time.monotonic() - self.loaded_at > REFRESH_SECONDS:
            await self.reload()

    def is_local_domain(self, domain: str) -> bool:
        return domain.lower() in self._domains

    def get(self, address: str) -> LocalMailbox | None:
        return self._by_address.get(mailstore.normalize_address(address))

    def address_of(self, mailbox_id: int) -> str:
        entry = self._by_id.get(mailbox_id)
        return entry.email if entry else ""

    async def quota_used(self, mailbox: LocalMailbox) -> int:
        """Return the mailbox's used bytes, read again when the copy is old."""
        if time.monotonic() - mailbox.used_at > USAGE_TTL_SECONDS:
            async with self.store.engine.connect() as conn:
                mailbox.used = await mailstore.quota_used(conn, mailbox.id)
            mailbox.used_at = time.monotonic()
        return mailbox.used

    def add_usage(self, mailbox_id: int, size: int) -> None:
        entry = self._by_id.get(mailbox_id)
        if entry is not None:
            entry.used += size
