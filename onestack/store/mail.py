"""Mail queries: mailboxes (accounts), folders, messages and the outbound queue.

This module is the one message store that SMTP delivery, the admin API and
the IMAP server share. Its contract:

- Creating a mailbox creates six folders in ``mail_folders``. Their ``name``
  is the API name (inbox, sent, drafts, trash, junk, archive) with
  ``special_use`` NULL, \\Sent, \\Drafts, \\Trash, \\Junk, \\Archive; IMAP
  shows them as INBOX, Sent, Drafts, Trash, Junk, Archive (``IMAP_NAMES``).
  Folders created over IMAP keep their IMAP name as ``name``. ``uidvalidity``
  is a random non-zero 32-bit value chosen when the folder is created.
- Adding a message to a folder runs, in the transaction of the insert,
  ``UPDATE mail_folders SET uidnext = uidnext + 1, highestmodseq =
  highestmodseq + 1 WHERE id = :f RETURNING uidnext, highestmodseq``; the
  message's uid is the returned uidnext - 1 and its modseq the returned
  highestmodseq. Every flag change, move or delete bumps the folder's
  highestmodseq and sets the message's modseq to it. A move gives the message
  a new uid in the destination folder and keeps its row id.
- Flags are the columns seen, flagged, answered, draft, deleted plus the JSON
  list ``keywords``. Quota used is SUM(size) over the account's messages.
- After each commit the functions here publish, through the ``publish``
  callback they are given: ``emailReceived`` {id, mailbox, mailboxId, folder,
  from, subject}, ``messageUpdated`` {id, mailboxId, folder, read, flagged},
  ``messageDeleted`` {id, mailboxId, folder}, and the internal
  ``mailFolderChanged`` {mailboxId, folderId} once per folder touched.
- Deleting a mailbox without its messages is a soft delete: ``deleted_at`` is
  set and ``enabled`` cleared, so it can neither log in nor receive, and the
  messages stay. Creating the same address again revives the row with its
  folders and messages (and the new password, name and quota). Queries here
  ignore soft-deleted mailboxes; code that reads ``mailboxes`` directly must
  check ``deleted_at IS NULL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.errors
import email.header
import email.policy
import email.utils
import json
import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import HeaderParser
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from onestack import passwords
from onestack.store import Store
from onestack.store.counters import add_counters
from onestack.store.tables import (
    counters,
    mail_folders,
    mailboxes,
    messages,
    outbound_queue,
)

logger = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]

# (API name, RFC 6154 special-use attribute, IMAP name), in display order.
STANDARD_FOLDERS: tuple[tuple[str, str | None, str], ...] = (
    ("inbox", None, "INBOX"),
    ("sent", "\\Sent", "Sent"),
    ("drafts", "\\Drafts", "Drafts"),
    ("trash", "\\Trash", "Trash"),
    ("junk", "\\Junk", "Junk"),
    ("archive", "\\Archive", "Archive"),
)
API_FOLDER_NAMES = tuple(name for name, _, _ in STANDARD_FOLDERS)
IMAP_NAMES = {name: imap for name, _, imap in STANDARD_FOLDERS}

# IMAP system flags stored as columns (RFC 3501 section 2.3.2); \Recent is
# session state and is never stored.
FLAG_COLUMNS = {
    "\\seen": "seen",
    "\\flagged": "flagged",
    "\\answered": "answered",
    "\\draft": "draft",
    "\\deleted": "deleted",
}

COUNTER_NAMES = (
    "messagesSent",
    "messagesReceived",
    "smtpConnections",
    "imapConnections",
)


class MailStoreError(Exception):
    """A mail store operation could not be done; the message is public."""


class AccountNotFound(MailStoreError):
    """No (live) mailbox has this address."""


class FolderNotFound(MailStoreError):
    """The mailbox has no folder of this name."""


class MessageNotFound(MailStoreError):
    """No message has this id."""


@dataclass(frozen=True)
class Account:
    """A mailbox: one address that receives mail and may log in."""

    id: int
    email: str
    name: str
    password_hash: str
    quota: int
    enabled: bool
    created_at: datetime


@dataclass(frozen=True)
class Folder:
    """An IMAP mailbox of one account (the API calls it a folder)."""

    id: int
    mailbox_id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    subscribed: bool

    @property
    def imap_name(self) -> str:
        return IMAP_NAMES.get(self.name, self.name)


@dataclass(frozen=True)
class StoredMessage:
    """One stored message and its metadata; ``raw`` is b"" when not loaded."""

    id: int
    mailbox_id: int
    folder_id: int
    folder: str
    uid: int
    modseq: int
    message_id: str | None
    mail_from: str
    rcpt_to: list[str]
    from_header: str
    to_header: str
    subject: str
    date: datetime | None
    internal_date: datetime
    size: int
    seen: bool
    flagged: bool
    answered: bool
    draft: bool
    deleted: bool
    keywords: list[str]
    raw: bytes = b""

    @property
    def flags(self) -> set[str]:
        """Return the IMAP flags: system flags and keywords."""
        names = {
            "\\Seen": self.seen,
            "\\Flagged": self.flagged,
            "\\Answered": self.answered,
            "\\Draft": self.draft,
            "\\Deleted": self.deleted,
        }
        return {flag for flag, on in names.items() if on} | set(self.keywords)


@dataclass(frozen=True)
class HeaderSummary:
    """The header fields stored beside the raw bytes."""

    message_id: str | None
    from_header: str
    to_header: str
    subject: str
    date: datetime | None


@dataclass
class Delivery:
    """A message to add to one local folder."""

    mailbox_id: int
    raw: bytes
    mail_from: str = ""
    rcpt_to: list[str] = field(default_factory=list)
    folder: str = "inbox"
    flags: frozenset[str] = frozenset()
    internal_date: datetime | None = None


@dataclass
class QueuedRecipient:
    """A message for one remote recipient, to add to the outbound queue."""

    mail_from: str
    rcpt_to: str
    raw: bytes


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """Return ``value`` as UTC; SQLite hands stored datetimes back naive."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def normalize_address(address: str) -> str:
    """Return an address as stored: trimmed and lowercased as a whole.

    RFC 5321 lets a server treat local parts case-sensitively, but mailboxes
    here are matched without regard to case, so user@ and User@ are one.
    """
    return address.strip().lower()


# --- header summary ---------------------------------------------------------


def decode_header_text(value: str) -> str:
    """Decode a header value: RFC 2047 words, or raw UTF-8 (RFC 6532).

    ``value`` comes from UTF-8 decoded with surrogateescape, so bytes that
    were not valid UTF-8 are surrogates here and are read as Latin-1. A NUL,
    raw or encoded, becomes U+FFFD because PostgreSQL text cannot store it.
    """
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "surrogateescape").decode("latin-1")
        decoded = value
    else:
        try:
            decoded = str(email.header.make_header(email.header.decode_header(value)))
        except (ValueError, LookupError, email.errors.HeaderParseError):
            decoded = value
    return " ".join(decoded.split()).replace("\0", "\ufffd")


def summarize_headers(raw: bytes) -> HeaderSummary:
    """Read Message-ID, From, To, Subject and Date; RFC 2047 words decoded."""
    end = raw.find(b"\r\n\r\n")
    block = raw if end < 0 else raw[: end + 2]
    headers = HeaderParser(policy=email.policy.compat32).parsestr(
        block.decode("utf-8", "surrogateescape"), headersonly=True
    )

    # raw_items() keeps the surrogates that get() would turn into U+FFFD.
    fields: dict[str, str] = {}
    for name, value in headers.raw_items():
        fields.setdefault(name.lower(), value)

    def text(name: str) -> str:
        value = fields.get(name.lower())
        if value is None:
            return ""
        return decode_header_text(value)

    date = None
    date_text = fields.get("date")
    if date_text:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            parsed = email.utils.parsedate_to_datetime(str(date_text))
            date = (
                parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            )
    message_id = text("Message-ID") or None
    return HeaderSummary(
        message_id=message_id,
        from_header=text("From"),
        to_header=text("To"),
        subject=text("Subject"),
        date=date,
    )


# --- accounts -----------------------------------------------------------------


def _account(row: Any) -> Account:
    return Account(
        id=row.id,
        email=row.email,
        name=row.name,
        password_hash=row.password_hash,
        quota=row.quota,
        enabled=row.enabled,
        created_at=aware(row.created_at),
    )


_LIVE = mailboxes.c.deleted_at.is_(None)


async def get_account(store: Store, address: str) -> Account | None:
    """Return the live mailbox with this address, or None."""
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                select(mailboxes).where(
                    mailboxes.c.email == normalize_address(address), _LIVE
                )
            )
        ).first()
    return None if row is None else _account(row)


async def find_account(store: Store, address: str) -> Account:
    """Return the live mailbox with this address; raise AccountNotFound."""
    account = await get_account(store, address)
    if account is None:
        raise AccountNotFound(f"mailbox {address} not found")
    return account


async def get_account_by_id(store: Store, mailbox_id: int) -> Account | None:
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                select(mailboxes).where(mailboxes.c.id == mailbox_id, _LIVE)
            )
        ).first()
    return None if row is None else _account(row)


async def list_accounts(store: Store) -> list[Account]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(mailboxes).where(_LIVE).order_by(mailboxes.c.id)
        )
        return [_account(row) for row in rows]


async def verify_credentials(
    store: Store, address: str, password: str
) -> Account | None:
    """Return the enabled mailbox when ``password`` is right, else None.

    The Argon2id check runs in a thread because it takes tens of
    milliseconds. An unknown address still costs one hash check, so the
    response time does not reveal which addresses exist.
    """
    account = await get_account(store, address)
    stored_hash = account.password_hash if account else _DUMMY_HASH
    ok = await asyncio.to_thread(passwords.verify_password, stored_hash, password)
    if account is None or not ok or not account.enabled:
        return None
    return account


_DUMMY_HASH = passwords.hash_password(secrets.token_hex(16))


def _new_uidvalidity() -> int:
    return secrets.randbelow(2**32 - 1) + 1


async def create_account(
    store: Store,
    address: str,
    *,
    name: str,
    password_hash: str,
    quota: int,
    enabled: bool,
) -> tuple[Account, bool]:
    """Create a mailbox and its six folders, or revive a soft-deleted one.

    Returns the account and whether it was revived with kept messages.
    Raises MailStoreError when a live mailbox has the address.
    """
    address = normalize_address(address)
    created = now()
    async with store.engine.begin() as conn:
        row = (
            await conn.execute(select(mailboxes).where(mailboxes.c.email == address))
        ).first()
        if row is not None and row.deleted_at is None:
            raise MailStoreError(f"mailbox {address} already exists")
        values = {
            "name": name,
            "password_hash": password_hash,
            "quota": quota,
            "enabled": enabled,
            "created_at": created,
            "deleted_at": None,
        }
        if row is not None:
            mailbox_id = row.id
            await conn.execute(
                update(mailboxes).where(mailboxes.c.id == mailbox_id).values(**values)
            )
        else:
            result = await conn.execute(
                insert(mailboxes)
                .values(email=address, **values)
                .returning(mailboxes.c.id)
            )
            mailbox_id = result.scalar_one()
        await _ensure_standard_folders(conn, mailbox_id)
    account = await get_account_by_id(store, mailbox_id)
    assert account is not None
    return account, row is not None


async def ensure_standard_folders(store: Store, mailbox_id: int) -> None:
    """Create any standard folder the mailbox lacks (IMAP login, old rows).

    Safe while another process does the same: a clash on the unique
    (mailbox_id, name) key means the folder now exists, and the retry skips it.
    """
    for _attempt in range(2):
        try:
            async with store.engine.begin() as conn:
                await _ensure_standard_folders(conn, mailbox_id)
            return
        except IntegrityError:
            continue


async def _ensure_standard_folders(conn: AsyncConnection, mailbox_id: int) -> None:
    existing = set(
        (
            await conn.execute(
                select(mail_folders.c.name).where(
                    mail_folders.c.mailbox_id == mailbox_id
                )
            )
        ).scalars()
    )
    for name, special_use, _ in STANDARD_FOLDERS:
        if name in existing:
            continue
        await conn.execute(
            insert(mail_folders).values(
                mailbox_id=mailbox_id,
                name=name,
                special_use=special_use,
                uidvalidity=_new_uidvalidity(),
                uidnext=1,
                highestmodseq=1,
                subscribed=True,
            )
        )


async def update_account(
    store: Store,
    address: str,
    *,
    name: str | None = None,
    password_hash: str | None = None,
    quota: int | None = None,
    enabled: bool | None = None,
) -> Account:
    """Change a mailbox's settings; raise AccountNotFound."""
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name
    if password_hash is not None:
        values["password_hash"] = password_hash
    if quota is not None:
        values["quota"] = quota
    if enabled is not None:
        values["enabled"] = enabled
    account = await find_account(store, address)
    if values:
        async with store.engine.begin() as conn:
            await conn.execute(
                update(mailboxes).where(mailboxes.c.id == account.id).values(**values)
            )
    result = await get_account_by_id(store, account.id)
    if result is None:
        raise AccountNotFound(f"mailbox {address} not found")
    return result


async def delete_account(store: Store, address: str, *, delete_messages: bool) -> int:
    """Delete a mailbox; returns how many messages were kept (0 when deleted).

    With ``delete_messages`` the row, its folders and messages are removed.
    Without it the mailbox is soft-deleted and its messages kept.
    """
    account = await find_account(store, address)
    async with store.engine.begin() as conn:
        if delete_messages:
            await conn.execute(
                delete(messages).where(messages.c.mailbox_id == account.id)
            )
            await conn.execute(
                delete(mail_folders).where(mail_folders.c.mailbox_id == account.id)
            )
            await conn.execute(delete(mailboxes).where(mailboxes.c.id == account.id))
            return 0
        kept = (
            await conn.execute(
                select(func.count()).where(messages.c.mailbox_id == account.id)
            )
        ).scalar_one()
        await conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == account.id)
            .values(deleted_at=now(), enabled=False)
        )
        return int(kept)


@dataclass(frozen=True)
class AccountStats:
    """Message counts and storage of one mailbox."""

    message_count: int
    unread_count: int
    quota_used: int


async def account_stats(
    store: Store, mailbox_ids: Sequence[int]
) -> dict[int, AccountStats]:
    """Return message count, unread count and quota used per mailbox id."""
    if not mailbox_ids:
        return {}
    unread = func.sum(func.cast(~messages.c.seen, messages.c.size.type))
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(
                messages.c.mailbox_id,
                func.count(),
                func.coalesce(unread, 0),
                func.coalesce(func.sum(messages.c.size), 0),
            )
            .where(messages.c.mailbox_id.in_(list(mailbox_ids)))
            .group_by(messages.c.mailbox_id)
        )
        found = {
            row[0]: AccountStats(int(row[1]), int(row[2]), int(row[3])) for row in rows
        }
    return {mid: found.get(mid, AccountStats(0, 0, 0)) for mid in mailbox_ids}


async def quota_used(conn: AsyncConnection, mailbox_id: int) -> int:
    """Return SUM(size) over the account's messages."""
    result = await conn.execute(
        select(func.coalesce(func.sum(messages.c.size), 0)).where(
            messages.c.mailbox_id == mailbox_id
        )
    )
    return int(result.scalar_one())


# --- folders ------------------------------------------------------------------


def _folder(row: Any) -> Folder:
    return Folder(
        id=row.id,
        mailbox_id=row.mailbox_id,
        name=row.name,
        special_use=row.special_use,
        uidvalidity=row.uidvalidity,
        uidnext=row.uidnext,
        highestmodseq=row.highestmodseq,
        subscribed=row.subscribed,
    )


async def list_folders(store: Store, mailbox_id: int) -> list[Folder]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(mail_folders)
            .where(mail_folders.c.mailbox_id == mailbox_id)
            .order_by(mail_folders.c.id)
        )
        return [_folder(row) for row in rows]


async def get_folder(store: Store, mailbox_id: int, name: str) -> Folder | None:
    async with store.engine.connect() as conn:
        return await _get_folder(conn, mailbox_id, name)


async def _get_folder(
    conn: AsyncConnection, mailbox_id: int, name: str
) -> Folder | None:
    row = (
        await conn.execute(
            select(mail_folders).where(
                mail_folders.c.mailbox_id == mailbox_id, mail_folders.c.name == name
            )
        )
    ).first()
    return None if row is None else _folder(row)


async def _next_uid(conn: AsyncConnection, folder_id: int) -> tuple[int, int]:
    """Take the folder's next uid and modseq (the contract's one UPDATE)."""
    row = (
        await conn.execute(
            update(mail_folders)
            .where(mail_folders.c.id == folder_id)
            .values(
                uidnext=mail_folders.c.uidnext + 1,
                highestmodseq=mail_folders.c.highestmodseq + 1,
            )
            .returning(mail_folders.c.uidnext, mail_folders.c.highestmodseq)
        )
    ).first()
    if row is None:
        raise FolderNotFound(f"folder {folder_id} not found")
    return int(row[0]) - 1, int(row[1])


async def _bump_message_folder(conn: AsyncConnection, message_id: int) -> int:
    """Bump the modseq of the folder that contains a message, as the first write.

    Starting with a write keeps SQLite from failing to upgrade a stale read
    snapshot when another process wrote in between. Returns the new modseq.
    """
    holder = select(messages.c.folder_id).where(messages.c.id == message_id)
    row = (
        await conn.execute(
            update(mail_folders)
            .where(mail_folders.c.id == holder.scalar_subquery())
            .values(highestmodseq=mail_folders.c.highestmodseq + 1)
            .returning(mail_folders.c.highestmodseq)
        )
    ).first()
    if row is None:
        raise MessageNotFound(f"message {message_id} not found")
    return int(row[0])


# --- messages -----------------------------------------------------------------

_SUMMARY_COLUMNS = [c for c in messages.c if c.name != "raw"]


def _message(row: Any, folder_name: str, with_raw: bool) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        mailbox_id=row.mailbox_id,
        folder_id=row.folder_id,
        folder=folder_name,
        uid=row.uid,
        modseq=row.modseq,
        message_id=row.message_id,
        mail_from=row.mail_from,
        rcpt_to=list(row.rcpt_to or []),
        from_header=row.from_header,
        to_header=row.to_header,
        subject=row.subject,
        date=aware(row.date) if row.date else None,
        internal_date=aware(row.internal_date),
        size=row.size,
        seen=row.seen,
        flagged=row.flagged,
        answered=row.answered,
        draft=row.draft,
        deleted=row.deleted,
        keywords=list(row.keywords or []),
        raw=bytes(row.raw) if with_raw else b"",
    )


def _flag_values(flags: Iterable[str]) -> dict[str, Any]:
    values: dict[str, Any] = {column: False for column in FLAG_COLUMNS.values()}
    keywords: list[str] = []
    for flag in flags:
        column = FLAG_COLUMNS.get(flag.lower())
        if column is not None:
            values[column] = True
        elif flag.lower() != "\\recent" and flag not in keywords:
            keywords.append(flag)
    values["keywords"] = keywords
    return values


async def insert_message(
    conn: AsyncConnection, folder: Folder, delivery: Delivery
) -> StoredMessage:
    """Add one message to ``folder`` inside the caller's transaction."""
    uid, modseq = await _next_uid(conn, folder.id)
    summary = summarize_headers(delivery.raw)
    values = {
        "mailbox_id": folder.mailbox_id,
        "folder_id": folder.id,
        "uid": uid,
        "modseq": modseq,
        "message_id": summary.message_id,
        "mail_from": delivery.mail_from,
        "rcpt_to": list(delivery.rcpt_to),
        "from_header": summary.from_header,
        "to_header": summary.to_header,
        "subject": summary.subject,
        "date": summary.date,
        "internal_date": delivery.internal_date or now(),
        "size": len(delivery.raw),
        "raw": delivery.raw,
        **_flag_values(delivery.flags),
    }
    message_id = (
        await conn.execute(insert(messages).values(**values).returning(messages.c.id))
    ).scalar_one()
    row = _RowView(id=message_id, **values)
    return _message(row, folder.name, with_raw=False)


class _RowView:
    """Attribute access over a dict, so an inserted row reads like a fetched one."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


async def deliver(
    store: Store,
    delivery: Delivery,
    *,
    publish: Publish | None = None,
    mailbox_address: str = "",
) -> StoredMessage:
    """Store one message in one folder in its own transaction; publish after."""
    async with store.engine.begin() as conn:
        folder = await _get_folder(conn, delivery.mailbox_id, delivery.folder)
        if folder is None:
            raise FolderNotFound(f"folder {delivery.folder} not found")
        stored = await insert_message(conn, folder, delivery)
    if publish is not None:
        await publish_received(publish, [stored], {stored.mailbox_id: mailbox_address})
    return stored


async def store_together(
    store: Store,
    deliveries: Sequence[Delivery],
    queued: Sequence[QueuedRecipient] = (),
    counters_to_add: dict[str, int] | None = None,
) -> list[StoredMessage]:
    """Store deliveries, queue entries and counters in one transaction.

    The caller publishes (``publish_received``) after this returns.
    """
    async with store.engine.connect() as conn:
        folders: dict[tuple[int, str], Folder] = {}
        for delivery in deliveries:
            key = (delivery.mailbox_id, delivery.folder)
            if key not in folders:
                folder = await _get_folder(conn, *key)
                if folder is None:
                    raise FolderNotFound(f"folder {delivery.folder} not found")
                folders[key] = folder
    stored: list[StoredMessage] = []
    async with store.engine.begin() as conn:
        for delivery in deliveries:
            folder = folders[(delivery.mailbox_id, delivery.folder)]
            stored.append(await insert_message(conn, folder, delivery))
        for item in queued:
            await enqueue(conn, item)
        await add_counters(conn, counters_to_add or {})
    return stored


async def publish_received(
    publish: Publish, stored: Sequence[StoredMessage], addresses: dict[int, str]
) -> None:
    """Publish emailReceived per message and mailFolderChanged per folder."""
    folders: set[tuple[int, int]] = set()
    for message in stored:
        await publish(
            "emailReceived",
            {
                "id": message.id,
                "mailbox": addresses.get(message.mailbox_id, ""),
                "mailboxId": message.mailbox_id,
                "folder": message.folder,
                "from": message.from_header,
                "subject": message.subject,
            },
        )
        folders.add((message.mailbox_id, message.folder_id))
    for mailbox_id, folder_id in sorted(folders):
        await publish(
            "mailFolderChanged", {"mailboxId": mailbox_id, "folderId": folder_id}
        )


async def list_messages(
    store: Store,
    mailbox_id: int,
    *,
    folder: str | None = None,
    unread_only: bool = False,
    limit: int = 50,
    offset: int = 0,
    preview_bytes: int = 0,
) -> list[StoredMessage]:
    """List message summaries, newest first; ties broken by id for stable pages.

    With ``preview_bytes`` each summary's ``raw`` contains the message's first
    bytes (enough for a body preview), not the whole message.
    """
    columns: list[Any] = list(_SUMMARY_COLUMNS)
    if preview_bytes:
        columns.append(func.substr(messages.c.raw, 1, preview_bytes).label("raw"))
    query = (
        select(*columns, mail_folders.c.name.label("folder_name"))
        .join(mail_folders, mail_folders.c.id == messages.c.folder_id)
        .where(messages.c.mailbox_id == mailbox_id)
    )
    if folder is not None:
        query = query.where(mail_folders.c.name == folder)
    if unread_only:
        query = query.where(messages.c.seen.is_(False))
    query = (
        query.order_by(messages.c.internal_date.desc(), messages.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    async with store.engine.connect() as conn:
        rows = await conn.execute(query)
        return [
            _message(row, row.folder_name, with_raw=bool(preview_bytes)) for row in rows
        ]


async def get_message(
    store: Store, message_id: int, *, with_raw: bool = True
) -> StoredMessage | None:
    """Return one message of a live mailbox, with its raw bytes by default."""
    async with store.engine.connect() as conn:
        return await _get_message(conn, message_id, with_raw)


async def _get_message(
    conn: AsyncConnection, message_id: int, with_raw: bool
) -> StoredMessage | None:
    columns = list(messages.c) if with_raw else _SUMMARY_COLUMNS
    row = (
        await conn.execute(
            select(*columns, mail_folders.c.name.label("folder_name"))
            .join(mail_folders, mail_folders.c.id == messages.c.folder_id)
            .join(mailboxes, mailboxes.c.id == messages.c.mailbox_id)
            .where(messages.c.id == message_id, _LIVE)
        )
    ).first()
    return None if row is None else _message(row, row.folder_name, with_raw)


async def find_message(
    store: Store, message_id: int, *, with_raw: bool = True
) -> StoredMessage:
    message = await get_message(store, message_id, with_raw=with_raw)
    if message is None:
        raise MessageNotFound(f"message {message_id} not found")
    return message


async def set_flags(
    store: Store,
    message_id: int,
    *,
    seen: bool | None = None,
    flagged: bool | None = None,
    answered: bool | None = None,
    draft: bool | None = None,
    deleted: bool | None = None,
    keywords: Sequence[str] | None = None,
    publish: Publish | None = None,
) -> StoredMessage:
    """Change a message's flags (None leaves a flag as it is); bump modseq."""
    values: dict[str, Any] = {
        name: value
        for name, value in (
            ("seen", seen),
            ("flagged", flagged),
            ("answered", answered),
            ("draft", draft),
            ("deleted", deleted),
        )
        if value is not None
    }
    if keywords is not None:
        values["keywords"] = list(dict.fromkeys(keywords))
    async with store.engine.begin() as conn:
        values["modseq"] = await _bump_message_folder(conn, message_id)
        if await _get_message(conn, message_id, with_raw=False) is None:
            raise MessageNotFound(f"message {message_id} not found")
        await conn.execute(
            update(messages).where(messages.c.id == message_id).values(**values)
        )
        changed = await _get_message(conn, message_id, with_raw=False)
    assert changed is not None
    if publish is not None:
        await publish("messageUpdated", _updated_event(changed))
        await publish(
            "mailFolderChanged",
            {"mailboxId": changed.mailbox_id, "folderId": changed.folder_id},
        )
    return changed


def _updated_event(message: StoredMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "mailboxId": message.mailbox_id,
        "folder": message.folder,
        "read": message.seen,
        "flagged": message.flagged,
    }


async def move(
    store: Store,
    message_id: int,
    folder_name: str,
    *,
    publish: Publish | None = None,
) -> StoredMessage:
    """Move a message to another folder of its mailbox: new uid, same row id."""
    async with store.engine.begin() as conn:
        await _bump_message_folder(conn, message_id)
        current = await _get_message(conn, message_id, with_raw=False)
        if current is None:
            raise MessageNotFound(f"message {message_id} not found")
        target = await _get_folder(conn, current.mailbox_id, folder_name)
        if target is None:
            raise FolderNotFound(f"folder {folder_name} not found")
        if target.id == current.folder_id:
            return current
        uid, modseq = await _next_uid(conn, target.id)
        await conn.execute(
            update(messages)
            .where(messages.c.id == message_id)
            .values(folder_id=target.id, uid=uid, modseq=modseq)
        )
        moved = await _get_message(conn, message_id, with_raw=False)
    assert moved is not None
    if publish is not None:
        await publish(
            "messageDeleted",
            {
                "id": current.id,
                "mailboxId": current.mailbox_id,
                "folder": current.folder,
            },
        )
        await publish("messageUpdated", _updated_event(moved))
        for folder_id in (current.folder_id, target.id):
            await publish(
                "mailFolderChanged",
                {"mailboxId": current.mailbox_id, "folderId": folder_id},
            )
    return moved


async def delete_message(
    store: Store, message_id: int, *, publish: Publish | None = None
) -> StoredMessage:
    """Remove a message for good; bump its folder's modseq."""
    async with store.engine.begin() as conn:
        await _bump_message_folder(conn, message_id)
        current = await _get_message(conn, message_id, with_raw=False)
        if current is None:
            raise MessageNotFound(f"message {message_id} not found")
        await conn.execute(delete(messages).where(messages.c.id == message_id))
    if publish is not None:
        await publish(
            "messageDeleted",
            {
                "id": current.id,
                "mailboxId": current.mailbox_id,
                "folder": current.folder,
            },
        )
        await publish(
            "mailFolderChanged",
            {"mailboxId": current.mailbox_id, "folderId": current.folder_id},
        )
    return current


# --- counters -------------------------------------------------------------------


async def read_counters(store: Store) -> dict[str, int]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(counters.c.name, counters.c.value))
        values = {name: int(value) for name, value in rows}
    return {name: values.get(name, 0) for name in COUNTER_NAMES} | values


async def storage_totals(store: Store) -> dict[str, int]:
    """Return mailbox counts and message totals for the email stats."""
    async with store.engine.connect() as conn:
        mailbox_count = (
            await conn.execute(select(func.count()).select_from(mailboxes).where(_LIVE))
        ).scalar_one()
        active = (
            await conn.execute(
                select(func.count())
                .select_from(mailboxes)
                .where(_LIVE, mailboxes.c.enabled.is_(True))
            )
        ).scalar_one()
        total_messages, total_storage = (
            await conn.execute(
                select(func.count(), func.coalesce(func.sum(messages.c.size), 0))
                .select_from(messages)
                .join(mailboxes, mailboxes.c.id == messages.c.mailbox_id)
                .where(_LIVE)
            )
        ).one()
    return {
        "mailboxCount": int(mailbox_count),
        "activeMailboxes": int(active),
        "totalMessages": int(total_messages),
        "totalStorage": int(total_storage),
    }


# --- outbound queue ---------------------------------------------------------------


async def enqueue(conn: AsyncConnection, item: QueuedRecipient) -> int:
    """Add a message for a remote recipient inside the caller's transaction."""
    created = now()
    result = await conn.execute(
        insert(outbound_queue)
        .values(
            mail_from=item.mail_from,
            rcpt_to=item.rcpt_to,
            raw=item.raw,
            attempts=0,
            next_attempt_at=created,
            last_error=None,
            created_at=created,
        )
        .returning(outbound_queue.c.id)
    )
    return int(result.scalar_one())


@dataclass(frozen=True)
class QueueEntry:
    """One queued message for one remote recipient."""

    id: int
    mail_from: str
    rcpt_to: str
    raw: bytes
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime


async def claim_due(store: Store, limit: int, lease: timedelta) -> list[QueueEntry]:
    """Take up to ``limit`` due entries, pushing their next attempt out by ``lease``.

    The conditional UPDATE makes a claim exclusive: two delivery loops (a
    worker and its replacement during a reload) never send one entry twice
    at the same time. A crash mid-delivery leaves the entry due again once
    the lease runs out.
    """
    current = now()
    claimed: list[QueueEntry] = []
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbound_queue)
                .where(outbound_queue.c.next_attempt_at <= current)
                .order_by(outbound_queue.c.next_attempt_at, outbound_queue.c.id)
                .limit(limit)
            )
        ).all()
    for row in rows:
        async with store.engine.begin() as conn:
            result = await conn.execute(
                update(outbound_queue)
                .where(
                    outbound_queue.c.id == row.id,
                    outbound_queue.c.next_attempt_at == row.next_attempt_at,
                )
                .values(next_attempt_at=current + lease)
            )
        if result.rowcount == 1:
            claimed.append(
                QueueEntry(
                    id=row.id,
                    mail_from=row.mail_from,
                    rcpt_to=row.rcpt_to,
                    raw=bytes(row.raw),
                    attempts=row.attempts,
                    next_attempt_at=aware(row.next_attempt_at),
                    last_error=row.last_error,
                    created_at=aware(row.created_at),
                )
            )
    return claimed


async def finish_entry(store: Store, entry_id: int, *, sent: bool) -> None:
    """Remove a delivered or bounced entry; count it as sent when delivered."""
    async with store.engine.begin() as conn:
        await conn.execute(
            delete(outbound_queue).where(outbound_queue.c.id == entry_id)
        )
        if sent:
            await add_counters(conn, {"messagesSent": 1})


async def defer_entry(
    store: Store, entry_id: int, error: str, retry_at: datetime
) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(outbound_queue)
            .where(outbound_queue.c.id == entry_id)
            .values(
                attempts=outbound_queue.c.attempts + 1,
                last_error=error[:2000],
                next_attempt_at=retry_at,
            )
        )


async def queue_length(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int(
            (
                await conn.execute(select(func.count()).select_from(outbound_queue))
            ).scalar_one()
        )


# --- group commit ---------------------------------------------------------------


@dataclass
class _Pending:
    deliveries: list[Delivery]
    queued: list[QueuedRecipient]
    counters: dict[str, int]
    future: asyncio.Future[list[StoredMessage]]


# Counts not carried by a message commit are stored after this long idle.
COUNTER_FLUSH_SECONDS = 5.0


class GroupCommitter:
    """One writer task that stores messages from many sessions in one transaction.

    ``store()`` waits until the caller's messages are committed (durable, as
    SQLite runs with synchronous=FULL) and returns them. Everything that
    arrives while a transaction commits goes into the next one, so one fsync
    covers many messages under load and no message waits for a timer when
    the server is idle. One caller's deliveries and queue entries are stored
    all or nothing: when a batch fails, each caller's part is retried alone.
    """

    def __init__(
        self,
        store: Store,
        publish: Publish | None = None,
        *,
        max_batch: int = 256,
        addresses: Callable[[int], str] | None = None,
    ) -> None:
        self.store = store
        self.publish = publish
        self.max_batch = max_batch
        self._addresses = addresses or (lambda _id: "")
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._counters: dict[str, int] = {}
        # Folder ids never change; a row is dropped when its mailbox goes.
        self._folder_cache: dict[tuple[int, str], Folder] = {}
        self._sqlite: sqlite3.Connection | None = None
        self.batches = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mail-group-commit")

    async def stop(self) -> None:
        """Finish what is queued, store pending counters, end the writer task."""
        task, self._task = self._task, None
        if task is None:
            return
        await self._queue.join()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._counters:
            counts, self._counters = self._counters, {}
            async with self.store.engine.begin() as conn:
                await add_counters(conn, counts)
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a counter with the next commit, or within COUNTER_FLUSH_SECONDS."""
        self._counters[name] = self._counters.get(name, 0) + amount

    async def _flush_counters(self) -> None:
        """Store counts that no message commit carried (connections that sent nothing)."""
        if not self._counters:
            return
        counts, self._counters = self._counters, {}
        try:
            async with self.store.engine.begin() as conn:
                await add_counters(conn, counts)
        except Exception:
            logger.exception("storing the mail counters failed; keeping them for later")
            self._counters = _merge(self._counters, counts)

    async def store_message(
        self,
        deliveries: list[Delivery],
        queued: list[QueuedRecipient] | None = None,
        counters: dict[str, int] | None = None,
    ) -> list[StoredMessage]:
        """Store deliveries, queue entries and counters durably; returns the rows."""
        if self._task is None:
            raise RuntimeError("GroupCommitter.start() was not called")
        future: asyncio.Future[list[StoredMessage]] = (
            asyncio.get_running_loop().create_future()
        )
        await self._queue.put(
            _Pending(deliveries, queued or [], dict(counters or {}), future)
        )
        return await future

    async def _run(self) -> None:
        while True:
            try:
                first = await asyncio.wait_for(self._queue.get(), COUNTER_FLUSH_SECONDS)
            except TimeoutError:
                await self._flush_counters()
                continue
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.cancel()
                raise
            except Exception:
                logger.exception("group commit of %d messages failed", len(batch))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Pending]) -> None:
        counts, self._counters = self._counters, {}
        try:
            results = await self._write(batch, counts)
        except Exception as exc:
            logger.warning(
                "batch of %d messages failed (%s); storing each alone",
                len(batch),
                type(exc).__name__,
            )
            self._counters = _merge(self._counters, counts)
            self._folder_cache.clear()
            await self._commit_each(batch)
            return
        self.batches += 1
        for pending, stored in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(stored)
        await self._publish([m for stored in results for m in stored])

    async def _commit_each(self, batch: list[_Pending]) -> None:
        for pending in batch:
            try:
                (stored,) = await self._write([pending], {})
            except Exception as exc:
                if not pending.future.done():
                    pending.future.set_exception(exc)
                continue
            if not pending.future.done():
                pending.future.set_result(stored)
            await self._publish(stored)

    async def _write(
        self, batch: list[_Pending], counts: dict[str, int]
    ) -> list[list[StoredMessage]]:
        folders = await self._folders(batch)
        if self.store.is_sqlite:
            # One thread hop per batch: under load, handing each statement to
            # aiosqlite's thread costs more than the statements themselves.
            return await asyncio.to_thread(self._write_sqlite, batch, counts, folders)
        results: list[list[StoredMessage]] = []
        # The transaction's first statement is a write, so SQLite takes its
        # write lock (waiting out busy_timeout) instead of failing to upgrade
        # a read snapshot that another process has moved past.
        async with self.store.engine.begin() as conn:
            for pending in batch:
                stored: list[StoredMessage] = []
                for delivery in pending.deliveries:
                    folder = folders[(delivery.mailbox_id, delivery.folder)]
                    stored.append(await insert_message(conn, folder, delivery))
                for item in pending.queued:
                    await enqueue(conn, item)
                counts = _merge(counts, pending.counters)
                results.append(stored)
            await add_counters(conn, counts)
        return results

    def _write_sqlite(
        self,
        batch: list[_Pending],
        counts: dict[str, int],
        folders: dict[tuple[int, str], Folder],
    ) -> list[list[StoredMessage]]:
        """Write a batch with the sqlite3 module in one transaction (blocking)."""
        if self._sqlite is None:
            self._sqlite = _open_sqlite(self.store.url)
        db = self._sqlite
        results: list[list[StoredMessage]] = []
        # BEGIN IMMEDIATE takes the write lock first, waiting out busy_timeout.
        db.execute("BEGIN IMMEDIATE")
        try:
            for pending in batch:
                stored = [
                    _insert_sqlite(db, folders[(d.mailbox_id, d.folder)], d)
                    for d in pending.deliveries
                ]
                for item in pending.queued:
                    created = _sqlite_time(now())
                    db.execute(
                        "INSERT INTO outbound_queue (mail_from, rcpt_to, raw, attempts,"
                        " next_attempt_at, last_error, created_at)"
                        " VALUES (?, ?, ?, 0, ?, NULL, ?)",
                        (item.mail_from, item.rcpt_to, item.raw, created, created),
                    )
                counts = _merge(counts, pending.counters)
                results.append(stored)
            for name, amount in sorted(counts.items()):
                if amount:
                    db.execute(
                        "INSERT INTO counters (name, value) VALUES (?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                        (name, amount),
                    )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return results

    async def _folders(self, batch: list[_Pending]) -> dict[tuple[int, str], Folder]:
        keys = {(d.mailbox_id, d.folder) for p in batch for d in p.deliveries}
        missing = keys - self._folder_cache.keys()
        if missing:
            async with self.store.engine.connect() as conn:
                for key in missing:
                    folder = await _get_folder(conn, *key)
                    if folder is None:
                        raise FolderNotFound(f"folder {key[1]} not found")
                    self._folder_cache[key] = folder
        return {key: self._folder_cache[key] for key in keys}

    def forget_folders(self, mailbox_id: int | None = None) -> None:
        """Drop cached folder rows (all, or one mailbox's) after a deletion."""
        if mailbox_id is None:
            self._folder_cache.clear()
            return
        for key in [k for k in self._folder_cache if k[0] == mailbox_id]:
            del self._folder_cache[key]

    async def _publish(self, stored: list[StoredMessage]) -> None:
        if self.publish is None or not stored:
            return
        addresses = {m.mailbox_id: self._addresses(m.mailbox_id) for m in stored}
        try:
            await publish_received(self.publish, stored, addresses)
        except Exception:
            logger.exception("publishing %d delivered messages failed", len(stored))


def _open_sqlite(url: str) -> sqlite3.Connection:
    """Open the store's SQLite file with the settings of ``onestack.store.db``."""
    path = url.split(":///", 1)[1]
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=10000")
    return db


def _sqlite_time(value: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime type writes and reads (UTC).
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_sqlite(
    db: sqlite3.Connection, folder: Folder, delivery: Delivery
) -> StoredMessage:
    """Insert one message the way ``insert_message`` does, with sqlite3."""
    uidnext, modseq = db.execute(
        "UPDATE mail_folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1"
        " WHERE id = ? RETURNING uidnext, highestmodseq",
        (folder.id,),
    ).fetchone()
    summary = summarize_headers(delivery.raw)
    flags = _flag_values(delivery.flags)
    internal_date = delivery.internal_date or now()
    values: dict[str, Any] = {
        "mailbox_id": folder.mailbox_id,
        "folder_id": folder.id,
        "uid": uidnext - 1,
        "modseq": modseq,
        "message_id": summary.message_id,
        "mail_from": delivery.mail_from,
        "rcpt_to": list(delivery.rcpt_to),
        "from_header": summary.from_header,
        "to_header": summary.to_header,
        "subject": summary.subject,
        "date": summary.date,
        "internal_date": internal_date,
        "size": len(delivery.raw),
        "raw": delivery.raw,
        **flags,
    }
    stored_values = dict(values)
    stored_values["rcpt_to"] = json.dumps(values["rcpt_to"])
    stored_values["keywords"] = json.dumps(values["keywords"])
    stored_values["date"] = _sqlite_time(values["date"]) if values["date"] else None
    stored_values["internal_date"] = _sqlite_time(internal_date)
    names = ", ".join(stored_values)
    marks = ", ".join("?" for _ in stored_values)
    (message_id,) = db.execute(
        f"INSERT INTO messages ({names}) VALUES ({marks}) RETURNING id",
        tuple(stored_values.values()),
    ).fetchone()
    return _message(_RowView(id=message_id, **values), folder.name, with_raw=False)


def _merge(first: dict[str, int], second: dict[str, int]) -> dict[str, int]:
    merged = dict(first)
    for name, amount in second.items():
        merged[name] = merged.get(name, 0) + amount
    return merged
