"""Message commands of RFC 3501 section 6.4, with UIDPLUS, MOVE and CONDSTORE.

CHECK, EXPUNGE, SEARCH, FETCH, STORE, COPY and MOVE, each also as a UID
command. RFC 3501 section 7.4.1 forbids EXPUNGE responses while a FETCH, STORE
or SEARCH (by sequence number) runs, so those complete without them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from onestack.mail.imap import fetch
from onestack.mail.imap.bodystructure import MessageCache
from onestack.mail.imap.mailstore import MessageState, StoredRow
from onestack.mail.imap.parser import CommandReader
from onestack.mail.imap.responses import BadCommand, CommandFailed
from onestack.mail.imap.search import Candidate, parse_search
from onestack.mail.imap.selected import (
    SelectedMailbox,
    account_id_of,
    find_folder,
    selected_of,
)
from onestack.mail.imap.state import SELECTED

if TYPE_CHECKING:
    from onestack.mail.imap.session import ImapSession

logger = logging.getLogger(__name__)

# Untagged FETCH responses are written in chunks of about this many bytes.
WRITE_CHUNK = 256 * 1024


def _uid_set_text(uids: list[int]) -> str:
    """Format UIDs as a compact sequence set (1:3,7)."""
    if not uids:
        return ""
    ranges: list[str] = []
    start = previous = uids[0]
    for uid in uids[1:]:
        if uid == previous + 1:
            previous = uid
            continue
        ranges.append(str(start) if start == previous else f"{start}:{previous}")
        start = previous = uid
    ranges.append(str(start) if start == previous else f"{start}:{previous}")
    return ",".join(ranges)


def _modifier(reader: CommandReader, name: str) -> int | None:
    """Parse an optional ``(NAME value)`` modifier list of RFC 7162."""
    if reader.buffer[reader.position : reader.position + 2] != b" (":
        return None
    reader.sp()
    reader.open_list()
    value = None
    while not reader.close_list():
        reader.try_sp()
        word = reader.atom().upper()
        reader.sp()
        if word != name:
            raise BadCommand(f"unknown modifier {word}")
        value = reader.number()
    return value


# --- CHECK, EXPUNGE ---------------------------------------------------------


async def imap_CHECK(session: ImapSession, tag: str, reader: CommandReader) -> None:
    reader.end()
    await session.complete(tag, "CHECK completed", force=True)


async def _expunge(session: ImapSession, tag: str, uids: list[int] | None) -> None:
    selected = selected_of(session)
    if selected.read_only:
        raise CommandFailed("mailbox is read-only", code="READ-ONLY")
    removed = await session.server.mail.expunge(selected.folder, uids)
    await session.server.publish_deleted(
        account_id_of(session), selected.folder, removed
    )
    await session.complete(tag, "EXPUNGE completed", force=True)


async def imap_EXPUNGE(session: ImapSession, tag: str, reader: CommandReader) -> None:
    reader.end()
    await _expunge(session, tag, None)


# --- SEARCH --------------------------------------------------------------------


async def _search(
    session: ImapSession, tag: str, reader: CommandReader, by_uid: bool
) -> None:
    reader.sp()
    program = parse_search(reader)
    if program.uses_modseq:
        session.condstore = True
    selected = selected_of(session)
    await session.send_updates(allow_expunge=by_uid)

    uids = list(selected.uids)
    cache = session.server.cache
    content = program.content
    if content == "header" and all(
        s.id in cache.headers for s in selected.states.values()
    ):
        content = "none"
    rows: Mapping[int, Any]
    if content == "none" and not program.needs_metadata:
        rows = selected.states  # UID, flags and modseq are all it reads
    else:
        rows = await session.server.mail.fetch_rows(selected.folder.id, uids, content)
    largest_uid = uids[-1] if uids else 0
    found: list[tuple[int, int]] = []
    # One candidate, refilled per message: predicates keep no reference to it.
    candidate = Candidate(0, None, (), False, cache, len(uids), largest_uid)
    states = selected.states
    recent = selected.recent
    predicate = program.predicate
    for sequence, uid in enumerate(uids, start=1):
        row = rows.get(uid)
        if row is None:
            continue
        state = states.get(uid)
        candidate.sequence = sequence
        candidate.row = row
        candidate.flags = state.flags if state else ()
        candidate.recent = uid in recent
        candidate.forget_headers()
        if predicate(candidate):
            found.append((uid if by_uid else sequence, row.modseq))
    line = "* SEARCH" + "".join(f" {number}" for number, _ in found)
    if program.uses_modseq and found:
        # RFC 7162 section 3.1.5: the highest modseq of the found messages.
        line += f" (MODSEQ {max(modseq for _, modseq in found)})"
    await session.send(line + "\r\n")
    await session.send(f"{tag} OK SEARCH completed\r\n")


async def imap_SEARCH(session: ImapSession, tag: str, reader: CommandReader) -> None:
    await _search(session, tag, reader, by_uid=False)


# --- FETCH -----------------------------------------------------------------------


async def _fetch(
    session: ImapSession, tag: str, reader: CommandReader, by_uid: bool
) -> None:
    reader.sp()
    numbers = reader.sequence_set()
    reader.sp()
    items = fetch.parse_items(reader)
    changed_since = _modifier(reader, "CHANGEDSINCE")
    reader.end()

    selected = selected_of(session)
    if changed_since is not None:
        session.condstore = True
    names = {item.name for item in items}
    if by_uid and "UID" not in names:
        items.insert(0, fetch.FetchItem("UID"))
    if session.condstore and "MODSEQ" not in names:
        items.append(fetch.FetchItem("MODSEQ"))
    uids = selected.resolve(numbers, by_uid)

    mail = session.server.mail
    if not selected.read_only and any(item.sets_seen for item in items):
        unseen = [uid for uid in uids if "\\Seen" not in selected.states[uid].flags]
        if unseen:
            changes, _ = await mail.store_flags(
                selected.folder, unseen, "add", ["\\Seen"], None
            )
            await session.server.publish_changes(account_id_of(session), changes)
            if "FLAGS" not in names:
                items.append(fetch.FetchItem("FLAGS"))
    cache = session.server.cache
    message_ids = [selected.states[uid].id for uid in uids]
    content = fetch.content_needed(items, message_ids, cache)
    rows = _rows_from_cache(selected, uids, content, cache)
    if rows is None:
        rows = await mail.fetch_rows(selected.folder.id, uids, content)
        if content != "none":
            for row in rows.values():
                cache.remember(row.id, row.size, row.internal_date, row.raw)

    reports_flags = any(item.name == "FLAGS" for item in items)
    chunk: list[bytes] = []
    size = 0
    for uid in uids:
        row = rows.get(uid)
        if row is None:
            continue  # expunged by another session; its EXPUNGE comes later
        if changed_since is not None and row.modseq <= changed_since:
            continue
        flags = row.flags
        known = selected.states.get(uid)
        if reports_flags and known is not None and known.modseq != row.modseq:
            # The client sees the new flags here, so the poll need not repeat them.
            selected.update_states([MessageState(row.id, uid, row.modseq, flags)])
        if uid in selected.recent:
            flags += ("\\Recent",)
        response = fetch.render(selected.sequence_of(uid), row, flags, items, cache)
        chunk.append(response)
        size += len(response)
        if size >= WRITE_CHUNK:
            await session.send(b"".join(chunk))
            chunk, size = [], 0
    if chunk:
        await session.send(b"".join(chunk))
    await session.complete(tag, "FETCH completed", allow_expunge=by_uid)


def _rows_from_cache(
    selected: SelectedMailbox, uids: list[int], content: str, cache: MessageCache
) -> dict[int, StoredRow] | None:
    """Build FETCH rows from the session's states and the summary cache.

    Returns None when a message is missing from the cache or the items need
    more than the header block, so the rows must come from the database.
    """
    if content == "full":
        return None
    rows: dict[int, StoredRow] = {}
    for uid in uids:
        state = selected.states[uid]
        summary = cache.summaries.get(state.id)
        if summary is None:
            return None
        rows[uid] = StoredRow(
            state.id,
            uid,
            state.modseq,
            state.flags,
            summary.size,
            summary.internal_date,
            b"",
            summary.header,
        )
    return rows


async def imap_FETCH(session: ImapSession, tag: str, reader: CommandReader) -> None:
    await _fetch(session, tag, reader, by_uid=False)


# --- STORE --------------------------------------------------------------------------


async def _store(
    session: ImapSession, tag: str, reader: CommandReader, by_uid: bool
) -> None:
    reader.sp()
    numbers = reader.sequence_set()
    unchanged_since = _modifier(reader, "UNCHANGEDSINCE")
    reader.sp()
    item = reader.atom().upper()
    silent = item.endswith(".SILENT")
    base = item.removesuffix(".SILENT")
    modes = {"FLAGS": "set", "+FLAGS": "add", "-FLAGS": "remove"}
    if base not in modes:
        raise BadCommand(f"unknown STORE item {item}")
    reader.sp()
    if reader.peek() == 0x28:
        flags = reader.flag_list()
    else:
        flags = [reader.flag()]
        while reader.try_sp():
            flags.append(reader.flag())
    reader.end()

    selected = selected_of(session)
    if selected.read_only:
        raise CommandFailed("mailbox is read-only", code="READ-ONLY")
    if unchanged_since is not None:
        session.condstore = True
    uids = selected.resolve(numbers, by_uid)
    flags = [flag for flag in flags if flag.lower() != "\\recent"]
    changes, modified = await session.server.mail.store_flags(
        selected.folder, uids, modes[base], flags, unchanged_since
    )
    await session.server.publish_changes(account_id_of(session), changes)
    # The FETCH responses for the changed messages come from the poll; with
    # .SILENT this session's own changes are left out.
    await session.send_updates(
        allow_expunge=by_uid, quiet=set(uids) if silent else None, force=True
    )
    if modified:
        text = f"[MODIFIED {_uid_set_text(sorted(modified))}] conditional STORE failed"
        if not by_uid:
            numbers_text = _uid_set_text(
                sorted(selected.sequence_of(u) for u in modified)
            )
            text = f"[MODIFIED {numbers_text}] conditional STORE failed"
        await session.send(f"{tag} OK {text}\r\n")
        return
    await session.send(f"{tag} OK STORE completed\r\n")


async def imap_STORE(session: ImapSession, tag: str, reader: CommandReader) -> None:
    await _store(session, tag, reader, by_uid=False)


# --- COPY, MOVE --------------------------------------------------------------------


async def _copy(
    session: ImapSession, tag: str, reader: CommandReader, by_uid: bool, move: bool
) -> None:
    reader.sp()
    numbers = reader.sequence_set()
    reader.sp()
    name = reader.mailbox()
    reader.end()

    selected = selected_of(session)
    if move and selected.read_only:
        raise CommandFailed("mailbox is read-only", code="READ-ONLY")
    target = await find_folder(session, name, code="TRYCREATE")
    uids = selected.resolve(numbers, by_uid)
    mail = session.server.mail
    owner = account_id_of(session)
    command = "MOVE" if move else "COPY"
    if not uids:
        await session.complete(tag, f"{command} completed", allow_expunge=by_uid)
        return

    if move:
        moved = await mail.move(selected.folder, uids, target)
        pairs = [(old, new) for _, old, new, _ in moved]
        await session.server.publish_changes(owner, [change for *_, change in moved])
        await session.server.publish_folder_changed(owner, selected.folder.id)
    else:
        copied = await mail.copy(owner, selected.folder, uids, target)
        if copied is None:
            raise CommandFailed("mailbox quota exceeded", code="OVERQUOTA")
        pairs = copied
    await session.server.publish_folder_changed(owner, target.id)

    code = ""
    if pairs:
        source_set = _uid_set_text([old for old, _ in pairs])
        target_set = _uid_set_text([new for _, new in pairs])
        code = f"[COPYUID {target.uidvalidity} {source_set} {target_set}] "
    if move:
        # RFC 6851 section 4.3: COPYUID goes in an untagged OK before the
        # EXPUNGE responses.
        await session.send(f"* OK {code}moved\r\n")
        await session.complete(tag, "MOVE completed", force=True)
    else:
        await session.complete(tag, f"{code}COPY completed", allow_expunge=by_uid)


async def imap_COPY(session: ImapSession, tag: str, reader: CommandReader) -> None:
    await _copy(session, tag, reader, by_uid=False, move=False)


async def imap_MOVE(session: ImapSession, tag: str, reader: CommandReader) -> None:
    await _copy(session, tag, reader, by_uid=False, move=True)


# --- UID -------------------------------------------------------------------------------


async def imap_UID(session: ImapSession, tag: str, reader: CommandReader) -> None:
    reader.sp()
    command = reader.atom().upper()
    if command == "FETCH":
        await _fetch(session, tag, reader, by_uid=True)
    elif command == "SEARCH":
        await _search(session, tag, reader, by_uid=True)
    elif command == "STORE":
        await _store(session, tag, reader, by_uid=True)
    elif command in ("COPY", "MOVE"):
        await _copy(session, tag, reader, by_uid=True, move=command == "MOVE")
    elif command == "EXPUNGE":
        # RFC 4315 section 2.1: expunge only the named \Deleted messages.
        reader.sp()
        numbers = reader.sequence_set()
        reader.end()
        await _expunge(session, tag, selected_of(session).resolve(numbers, by_uid=True))
    else:
        raise BadCommand(f"unknown UID command {command[:40]}")


HANDLERS = {
    "CHECK": (imap_CHECK, SELECTED),
    "EXPUNGE": (imap_EXPUNGE, SELECTED),
    "SEARCH": (imap_SEARCH, SELECTED),
    "FETCH": (imap_FETCH, SELECTED),
    "STORE": (imap_STORE, SELECTED),
    "COPY": (imap_COPY, SELECTED),
    "MOVE": (imap_MOVE, SELECTED),
    "UID": (imap_UID, SELECTED),
}
