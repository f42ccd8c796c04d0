"""The IMAP server's queries on the shared mail tables.

The API and IMAP share ``mailboxes``, ``mail_folders`` and ``messages``. The
rules both sides keep:

- Adding a message takes its UID from the folder in the insert's transaction:
  ``uidnext`` and ``highestmodseq`` go up by one and the message gets
  ``uid = uidnext - 1`` and ``modseq = highestmodseq``.
- Every flag change, move or expunge raises the folder's ``highestmodseq`` and
  sets the changed messages' ``modseq``, so a session can tell that nothing
  changed from that one number.
- A move keeps the message row and gives it a new UID in the destination.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from onestack.store import Store
from onestack.store.mail import STANDARD_FOLDERS, ensure_standard_folders
from onestack.store.tables import mail_folders, mailboxes, messages

# API folder name, IMAP name, RFC 6154 special-use attribute.
# (API name, IMAP name, special-use flag), from the message store's list.
DEFAULT_FOLDERS: tuple[tuple[str, str, str | None], ...] = tuple(
    (api_name, imap_name, special_use)
    for api_name, special_use, imap_name in STANDARD_FOLDERS
)
_IMAP_NAMES = {api: imap for api, imap, _ in DEFAULT_FOLDERS}
_API_NAMES = {imap.lower(): api for api, imap, _ in DEFAULT_FOLDERS}
SYSTEM_FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted")
_FLAG_COLUMNS = {
    "\\seen": "seen",
    "\\flagged": "flagged",
    "\\answered": "answered",
    "\\draft": "draft",
    "\\deleted": "deleted",
}
MAX_KEYWORDS = 64
# Bytes read for a header-only fetch or search; longer header blocks are
# read whole.
HEADER_PREFIX = 8192
_header_parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)


@dataclass(frozen=True)
class Account:
    id: int
    email: str


@dataclass(frozen=True)
class Folder:
    """One IMAP mailbox (an API folder) of an account."""

    id: int
    name: str  # the stored (API) name
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    subscribed: bool

    @property
    def imap_name(self) -> str:
        return imap_name(self.name)


@dataclass(frozen=True)
class MessageState:
    """The UID, flags and modseq of one message, as a selected session tracks them."""

    id: int
    uid: int
    modseq: int
    flags: tuple[str, ...]


@dataclass(slots=True)
class StoredRow:
    """A message as FETCH and SEARCH read it; ``raw`` may be only its start."""

    id: int
    uid: int
    modseq: int
    flags: tuple[str, ...]
    size: int
    internal_date: datetime
    raw: bytes
    header: bytes | None = None  # the header block, when known without ``raw``


def _stored_row(row: Any, content: str) -> StoredRow:
    return StoredRow(
        id=row.id,
        uid=row.uid,
        modseq=row.modseq,
        flags=flags_of(row),
        size=row.size,
        internal_date=row.internal_date,
        raw=bytes(row.raw) if content != "none" else b"",
    )


@dataclass(frozen=True)
class MessageChange:
    """A message whose flags or place changed, for the events sent after commit."""

    id: int
    folder: str
    read: bool
    flagged: bool


def imap_name(stored_name: str) -> str:
    return _IMAP_NAMES.get(stored_name, stored_name)


def stored_name(name: str) -> str:
    """Map an IMAP mailbox name to the stored name (INBOX is case-insensitive)."""
    return _API_NAMES.get(name.lower(), name)


def new_uidvalidity() -> int:
    # A random non-zero 32-bit value: a folder recreated under an old name
    # gets a different one (RFC 3501 section 2.3.1.1).
    return secrets.randbelow(2**31 - 2) + 1


def flags_of(row: Any) -> tuple[str, ...]:
    flags = [flag for flag in SYSTEM_FLAGS if getattr(row, _FLAG_COLUMNS[flag.lower()])]
    flags.extend(row.keywords or ())
    return tuple(flags)


def _state(row: Any) -> MessageState:
    return MessageState(row.id, row.uid, row.modseq, flags_of(row))


_STATE_COLUMNS = (
    messages.c.id,
    messages.c.uid,
    messages.c.modseq,
    messages.c.seen,
    messages.c.flagged,
    messages.c.answered,
    messages.c.draft,
    messages.c.deleted,
    messages.c.keywords,
)


def flag_values(flags: Iterable[str]) -> tuple[dict[str, bool], list[str]]:
    """Split IMAP flags into column values and keywords."""
    columns: dict[str, bool] = {}
    keywords: list[str] = []
    for flag in flags:
        column = _FLAG_COLUMNS.get(flag.lower())
        if column is not None:
            columns[column] = True
        elif not flag.startswith("\\") and flag not in keywords:
            keywords.append(flag)
    return columns, keywords[:MAX_KEYWORDS]


def _aware(value: datetime) -> datetime:
    """Return ``value`` in UTC: SQLite keeps no offset, so every time is stored as UTC."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def header_fields(raw: bytes) -> dict[str, Any]:
    """Parse the header fields the messages table keeps beside the raw bytes."""
    headers = _header_parser.parsebytes(raw)
    date = None
    if headers.get("Date"):
        try:
            date = email.utils.parsedate_to_datetime(str(headers["Date"]))
        except (TypeError, ValueError, IndexError):
            date = None
        if date is not None:
            date = _aware(date)
    return {
        "message_id": str(headers.get("Message-ID", "")).strip() or None,
        "from_header": str(headers.get("From", "")),
        "to_header": str(headers.get("To", "")),
        "subject": str(headers.get("Subject", "")),
        "date": date,
    }


class MailStore:
    """Queries for IMAP sessions, each in its own short transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- accounts and folders -------------------------------------------

    async def find_account(self, address: str) -> tuple[Account, str] | None:
        """Return an enabled account and its password hash, or None."""
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        mailboxes.c.id, mailboxes.c.email, mailboxes.c.password_hash
                    ).where(
                        func.lower(mailboxes.c.email) == address.lower(),
                        mailboxes.c.enabled.is_(True),
                        mailboxes.c.deleted_at.is_(None),
                    )
                )
            ).first()
        if row is None:
            return None
        return Account(row.id, row.email), row.password_hash

    async def account_active(self, account_id: int) -> bool:
        """Tell whether an account still exists, enabled and not deleted."""
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(mailboxes.c.id).where(
                        mailboxes.c.id == account_id,
                        mailboxes.c.enabled.is_(True),
                        mailboxes.c.deleted_at.is_(None),
                    )
                )
            ).first()
        return row is not None

    async def ensure_default_folders(self, account_id: int) -> None:
        """Create any of the six standard folders the account lacks."""
        await ensure_standard_folders(self.store, account_id)

    async def list_folders(self, account_id: int) -> list[Folder]:
        async with self.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(mail_folders)
                    .where(mail_folders.c.mailbox_id == account_id)
                    .order_by(mail_folders.c.id)
                )
            ).all()
        return [_folder(row) for row in rows]

    async def get_folder(self, account_id: int, name: str) -> Folder | None:
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(mail_folders).where(
                        mail_folders.c.mailbox_id == account_id,
                        mail_folders.c.name == stored_name(name),
                    )
                )
            ).first()
        return None if row is None else _folder(row)

    async def folder_by_id(self, folder_id: int) -> Folder | None:
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(mail_folders).where(mail_folders.c.id == folder_id)
                )
            ).first()
        return None if row is None else _folder(row)

    async def highestmodseq(self, folder_id: int) -> int | None:
        """Return the folder's change counter (None once it is deleted)."""
        async with self.store.engine.connect() as conn:
            return (
                await conn.execute(
                    select(mail_folders.c.highestmodseq).where(
                        mail_folders.c.id == folder_id
                    )
                )
            ).scalar()

    async def highestmodseqs(self, folder_ids: Iterable[int]) -> dict[int, int]:
        """Return the change counters of several folders (deleted ones are absent)."""
        async with self.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(mail_folders.c.id, mail_folders.c.highestmodseq).where(
                        mail_folders.c.id.in_(list(folder_ids))
                    )
                )
            ).all()
        return {row.id: int(row.highestmodseq) for row in rows}

    async def create_folder(self, account_id: int, name: str) -> bool:
        """Create a folder; False when the name is taken."""
        try:
            async with self.store.engine.begin() as conn:
                await conn.execute(
                    insert(mail_folders).values(
                        mailbox_id=account_id,
                        name=stored_name(name),
                        special_use=None,
                        uidvalidity=new_uidvalidity(),
                        uidnext=1,
                        highestmodseq=1,
                        subscribed=True,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def delete_folder(self, folder: Folder) -> list[int]:
        """Delete a folder and its messages; returns the deleted message ids."""
        async with self.store.engine.begin() as conn:
            ids = list(
                (
                    await conn.execute(
                        select(messages.c.id).where(messages.c.folder_id == folder.id)
                    )
                ).scalars()
            )
            await conn.execute(
                delete(messages).where(messages.c.folder_id == folder.id)
            )
            await conn.execute(
                delete(mail_folders).where(mail_folders.c.id == folder.id)
            )
        return ids

    async def rename_folder(
        self, account_id: int, folder: Folder, new_name: str
    ) -> bool:
        """Rename a folder and its inferiors, with new UIDVALIDITY values."""
        old, new = folder.name, stored_name(new_name)
        try:
            async with self.store.engine.begin() as conn:
                children = (
                    await conn.execute(
                        select(mail_folders.c.id, mail_folders.c.name).where(
                            mail_folders.c.mailbox_id == account_id,
                            mail_folders.c.name.startswith(old + "/", autoescape=True),
                        )
                    )
                ).all()
                renames = [(folder.id, new)] + [
                    (child.id, new + child.name[len(old) :]) for child in children
                ]
                for folder_id, name in renames:
                    await conn.execute(
                        update(mail_folders)
                        .where(mail_folders.c.id == folder_id)
                        .values(name=name, uidvalidity=new_uidvalidity())
                    )
        except IntegrityError:
            return False
        return True

    async def set_subscribed(self, folder_id: int, subscribed: bool) -> None:
        async with self.store.engine.begin() as conn:
            await conn.execute(
                update(mail_folders)
                .where(mail_folders.c.id == folder_id)
                .values(subscribed=subscribed)
            )

    async def folder_counts(self, folder_id: int) -> tuple[int, int, int]:
        """Return (messages, unseen, total size) of a folder."""
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        func.count(),
                        func.coalesce(
                            func.sum(case((messages.c.seen.is_(False), 1), else_=0)), 0
                        ),
                        func.coalesce(func.sum(messages.c.size), 0),
                    ).where(messages.c.folder_id == folder_id)
                )
            ).one()
        return int(row[0]), int(row[1]), int(row[2])

    async def first_unseen_uid(self, folder_id: int) -> int | None:
        async with self.store.engine.connect() as conn:
            return (
                await conn.execute(
                    select(func.min(messages.c.uid)).where(
                        messages.c.folder_id == folder_id, messages.c.seen.is_(False)
                    )
                )
            ).scalar()

    # --- message state ---------------------------------------------------

    async def message_states(self, folder_id: int) -> list[MessageState]:
        """Return every message's UID, flags and modseq, in UID order."""
        async with self.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(*_STATE_COLUMNS)
                    .where(messages.c.folder_id == folder_id)
                    .order_by(messages.c.uid)
                )
            ).all()
        return [_state(row) for row in rows]

    async def fetch_rows(
        self, folder_id: int, uids: Sequence[int], content: str
    ) -> dict[int, StoredRow]:
        """Load messages by UID (sorted): metadata, plus ``content`` of the raw bytes.

        ``content`` is ``"none"``, ``"header"`` (enough bytes for the header
        block, which most header fetches and searches need) or ``"full"``.
        """
        columns = [*_STATE_COLUMNS, messages.c.size, messages.c.internal_date]
        if content == "full":
            columns.append(messages.c.raw)
        elif content == "header":
            columns.append(func.substr(messages.c.raw, 1, HEADER_PREFIX).label("raw"))
        result: dict[int, StoredRow] = {}
        wanted = set(uids)
        async with self.store.engine.connect() as conn:
            # Chunks of UID ranges keep each query short and its IN list small.
            for start in range(0, len(uids), 1000):
                chunk = list(uids[start : start + 1000])
                query = select(*columns).where(messages.c.folder_id == folder_id)
                if len(chunk) == 1:
                    query = query.where(messages.c.uid == chunk[0])
                else:
                    query = query.where(messages.c.uid.between(chunk[0], chunk[-1]))
                for row in (await conn.execute(query)).all():
                    if row.uid in wanted:
                        result[row.uid] = _stored_row(row, content)
            if content == "header":
                # A header block longer than the prefix is read whole.
                truncated = [
                    row.id
                    for row in result.values()
                    if len(row.raw) >= HEADER_PREFIX and b"\r\n\r\n" not in row.raw
                ]
                if truncated:
                    full = await conn.execute(
                        select(messages.c.uid, messages.c.raw).where(
                            messages.c.id.in_(truncated)
                        )
                    )
                    for uid, raw in full.all():
                        result[uid].raw = raw
        return result

    async def mailbox_usage(
        self, conn: AsyncConnection, account_id: int
    ) -> tuple[int, int]:
        """Return (quota, bytes used) of an account."""
        quota = (
            await conn.execute(
                select(mailboxes.c.quota).where(mailboxes.c.id == account_id)
            )
        ).scalar_one()
        used = (
            await conn.execute(
                select(func.coalesce(func.sum(messages.c.size), 0)).where(
                    messages.c.mailbox_id == account_id
                )
            )
        ).scalar_one()
        return int(quota), int(used)

    async def append(
        self,
        account_id: int,
        folder_id: int,
        raw: bytes,
        flags: Iterable[str],
        internal_date: datetime | None,
    ) -> int | None:
        """Store a message; returns its UID, or None when over quota."""
        columns, keywords = flag_values(flags)
        fields = header_fields(raw)
        async with self.store.engine.begin() as conn:
            quota, used = await self.mailbox_usage(conn, account_id)
            if used + len(raw) > quota:
                return None
            uid, modseq = await _next_uid(conn, folder_id)
            await conn.execute(
                insert(messages).values(
                    mailbox_id=account_id,
                    folder_id=folder_id,
                    uid=uid,
                    modseq=modseq,
                    mail_from="",
                    rcpt_to=[],
                    internal_date=_aware(internal_date or datetime.now(UTC)),
                    size=len(raw),
                    keywords=keywords,
                    raw=raw,
                    **{
                        column: columns.get(column, False)
                        for column in _FLAG_COLUMNS.values()
                    },
                    **fields,
                )
            )
        return uid

    async def store_flags(
        self,
        folder: Folder,
        uids: Sequence[int],
        mode: str,
        flags: Sequence[str],
        unchanged_since: int | None,
    ) -> tuple[list[MessageChange], list[int]]:
        """Apply STORE (mode ``set``, ``add`` or ``remove``) to messages by UID.

        Returns the changed messages and the UIDs that failed the
        UNCHANGEDSINCE test of RFC 7162 section 3.1.3.
        """
        wanted_columns, wanted_keywords = flag_values(flags)
        changes: list[MessageChange] = []
        modified: list[int] = []
        async with self.store.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(*_STATE_COLUMNS).where(
                        messages.c.folder_id == folder.id, messages.c.uid.in_(uids)
                    )
                )
            ).all()
            updates: list[tuple[int, dict[str, Any]]] = []
            for row in rows:
                if unchanged_since is not None and row.modseq > unchanged_since:
                    modified.append(row.uid)
                    continue
                values = _flag_update(row, mode, wanted_columns, wanted_keywords)
                if values:
                    updates.append((row.id, values))
            if updates:
                modseq = await _bump_modseq(conn, folder.id)
                for message_id, values in updates:
                    await conn.execute(
                        update(messages)
                        .where(messages.c.id == message_id)
                        .values(modseq=modseq, **values)
                    )
                changed = (
                    await conn.execute(
                        select(
                            messages.c.id, messages.c.seen, messages.c.flagged
                        ).where(
                            messages.c.id.in_([message_id for message_id, _ in updates])
                        )
                    )
                ).all()
                changes = [
                    MessageChange(row.id, folder.name, row.seen, row.flagged)
                    for row in changed
                ]
        return changes, modified

    async def expunge(
        self, folder: Folder, uids: Sequence[int] | None
    ) -> list[tuple[int, int]]:
        """Remove messages marked \\Deleted (only those in ``uids`` when given).

        Returns (message id, UID) of each removed message.
        """
        async with self.store.engine.begin() as conn:
            query = select(messages.c.id, messages.c.uid).where(
                messages.c.folder_id == folder.id, messages.c.deleted.is_(True)
            )
            if uids is not None:
                query = query.where(messages.c.uid.in_(uids))
            removed = [(row.id, row.uid) for row in (await conn.execute(query)).all()]
            if removed:
                await conn.execute(
                    delete(messages).where(
                        messages.c.id.in_([mid for mid, _ in removed])
                    )
                )
                await _bump_modseq(conn, folder.id)
        return removed

    async def copy(
        self, account_id: int, source: Folder, uids: Sequence[int], target: Folder
    ) -> list[tuple[int, int]] | None:
        """Copy messages; returns (source UID, new UID) pairs, or None over quota."""
        pairs: list[tuple[int, int]] = []
        async with self.store.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(messages)
                    .where(messages.c.folder_id == source.id, messages.c.uid.in_(uids))
                    .order_by(messages.c.uid)
                )
            ).all()
            quota, used = await self.mailbox_usage(conn, account_id)
            if used + sum(row.size for row in rows) > quota:
                return None
            for row in rows:
                uid, modseq = await _next_uid(conn, target.id)
                values = dict(row._mapping)
                del values["id"]
                values.update(folder_id=target.id, uid=uid, modseq=modseq)
                await conn.execute(insert(messages).values(**values))
                pairs.append((row.uid, uid))
        return pairs

    async def move(
        self, source: Folder, uids: Sequence[int], target: Folder
    ) -> list[tuple[int, int, int, MessageChange]]:
        """Move messages keeping their rows; returns (id, old UID, new UID, change)."""
        moved: list[tuple[int, int, int, MessageChange]] = []
        async with self.store.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(
                        messages.c.id,
                        messages.c.uid,
                        messages.c.seen,
                        messages.c.flagged,
                    )
                    .where(messages.c.folder_id == source.id, messages.c.uid.in_(uids))
                    .order_by(messages.c.uid)
                )
            ).all()
            if not rows:
                return moved
            for row in rows:
                uid, modseq = await _next_uid(conn, target.id)
                await conn.execute(
                    update(messages)
                    .where(messages.c.id == row.id)
                    .values(folder_id=target.id, uid=uid, modseq=modseq)
                )
                change = MessageChange(row.id, target.name, row.seen, row.flagged)
                moved.append((row.id, row.uid, uid, change))
            await _bump_modseq(conn, source.id)
        return moved


def _folder(row: Any) -> Folder:
    return Folder(
        id=row.id,
        name=row.name,
        special_use=row.special_use,
        uidvalidity=int(row.uidvalidity),
        uidnext=int(row.uidnext),
        highestmodseq=int(row.highestmodseq),
        subscribed=bool(row.subscribed),
    )


async def _next_uid(conn: AsyncConnection, folder_id: int) -> tuple[int, int]:
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
    ).one()
    return int(row.uidnext) - 1, int(row.highestmodseq)


async def _bump_modseq(conn: AsyncConnection, folder_id: int) -> int:
    return int(
        (
            await conn.execute(
                update(mail_folders)
                .where(mail_folders.c.id == folder_id)
                .values(highestmodseq=mail_folders.c.highestmodseq + 1)
                .returning(mail_folders.c.highestmodseq)
            )
        ).scalar_one()
    )


def _flag_update(
    row: Any, mode: str, columns: dict[str, bool], keywords: list[str]
) -> dict[str, Any]:
    """Return the column values a STORE changes on one message (empty: none)."""
    values: dict[str, Any] = {}
    current_keywords = list(row.keywords or ())
    for column in _FLAG_COLUMNS.values():
        named = columns.get(column, False)
        if mode == "set":
            target = named
        elif mode == "add":
            target = getattr(row, column) or named
        else:
            target = getattr(row, column) and not named
        if target != getattr(row, column):
            values[column] = target
    if mode == "set":
        new_keywords = keywords
    elif mode == "add":
        new_keywords = current_keywords + [
            k for k in keywords if k not in current_keywords
        ]
    else:
        new_keywords = [k for k in current_keywords if k not in keywords]
    new_keywords = new_keywords[:MAX_KEYWORDS]
    if new_keywords != current_keywords:
        values["keywords"] = new_keywords
    return values
