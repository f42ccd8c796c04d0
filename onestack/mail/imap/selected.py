"""The selected mailbox of a session: sequence numbers and pending updates.

A session remembers each message's UID, flags and modseq. Because every change
to a folder raises its ``highestmodseq``, an unchanged number means that
nothing happened. Otherwise the session compares its view with the stored
state and sends EXISTS, EXPUNGE and FETCH responses (RFC 3501 section
7.4.1 and 7.3.1).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from onestack.mail.imap.mailstore import Folder, MailStore, MessageState
from onestack.mail.imap.parser import SequenceSet
from onestack.mail.imap.responses import BadCommand, CommandFailed, flag_list

if TYPE_CHECKING:
    from onestack.mail.imap.session import ImapSession


class FolderGone(Exception):
    """The selected mailbox was deleted or renamed by another session."""


@dataclass
class SelectedMailbox:
    """A selected mailbox: its messages in sequence order, as this session last reported them."""

    folder: Folder
    read_only: bool
    uids: list[int] = field(default_factory=list)
    states: dict[int, MessageState] = field(default_factory=dict)
    recent: set[int] = field(default_factory=set)
    highestmodseq: int = 0
    # True while EXPUNGE responses wait for a command that may carry them.
    expunges_held: bool = False

    @classmethod
    async def open(
        cls, mail: MailStore, folder: Folder, read_only: bool
    ) -> SelectedMailbox:
        states = await mail.message_states(folder.id)
        return cls(
            folder=folder,
            read_only=read_only,
            uids=[state.uid for state in states],
            states={state.uid: state for state in states},
            highestmodseq=folder.highestmodseq,
        )

    @property
    def exists(self) -> int:
        return len(self.uids)

    def sequence_of(self, uid: int) -> int:
        return bisect.bisect_left(self.uids, uid) + 1

    def resolve(self, numbers: SequenceSet, by_uid: bool) -> list[int]:
        """Return the UIDs a sequence set or UID set names, in ascending order."""
        if by_uid:
            return numbers.select(self.uids)
        count = len(self.uids)
        chosen: set[int] = set()
        for start, end in numbers.ranges:
            low = count if start is None else start
            high = count if end is None else end
            low, high = min(low, high), max(low, high)
            if low < 1 or high > count:
                raise BadCommand("message sequence number out of range")
            chosen.update(range(low, high + 1))
        return [self.uids[number - 1] for number in sorted(chosen)]

    def update_states(self, states: list[MessageState]) -> None:
        """Take in states this session caused, so they are not reported twice."""
        for state in states:
            if state.uid in self.states:
                self.states[state.uid] = state

    async def poll(
        self, mail: MailStore, allow_expunge: bool, with_modseq: bool, quiet: set[int]
    ) -> list[bytes]:
        """Return the untagged responses for changes since the last poll."""
        highestmodseq = await mail.highestmodseq(self.folder.id)
        if highestmodseq is None:
            raise FolderGone
        if highestmodseq == self.highestmodseq:
            self.expunges_held = False
            return []
        stored = {
            state.uid: state for state in await mail.message_states(self.folder.id)
        }
        lines: list[bytes] = []

        gone = [uid for uid in self.uids if uid not in stored]
        if gone and allow_expunge:
            # Highest sequence number first, so each number is valid when sent.
            for uid in reversed(gone):
                sequence = self.sequence_of(uid)
                lines.append(b"* %d EXPUNGE\r\n" % sequence)
                del self.uids[sequence - 1]
                self.states.pop(uid, None)
                self.recent.discard(uid)

        for uid in self.uids:
            state = stored.get(uid)
            known = self.states.get(uid)
            if state is None or known is None or state.modseq == known.modseq:
                continue
            self.states[uid] = state
            if uid in quiet or state.flags == known.flags:
                continue
            flags = state.flags + (("\\Recent",) if uid in self.recent else ())
            modseq = b" MODSEQ (%d)" % state.modseq if with_modseq else b""
            lines.append(
                b"* %d FETCH (UID %d FLAGS %s%s)\r\n"
                % (self.sequence_of(uid), uid, flag_list(flags), modseq)
            )

        largest = self.uids[-1] if self.uids else 0
        added = sorted(uid for uid in stored if uid > largest)
        if added:
            self.uids.extend(added)
            for uid in added:
                self.states[uid] = stored[uid]
            self.recent.update(added)
            lines.append(b"* %d EXISTS\r\n" % len(self.uids))
            lines.append(b"* %d RECENT\r\n" % len(self.recent))

        self.expunges_held = bool(gone) and not allow_expunge
        if not self.expunges_held:
            self.highestmodseq = highestmodseq
        return lines


def account_id_of(session: ImapSession) -> int:
    """Return the logged-in account's id (commands run only after login)."""
    if session.account is None:
        raise BadCommand("log in first")
    return session.account.id


def selected_of(session: ImapSession) -> SelectedMailbox:
    if session.selected is None:
        raise BadCommand("no mailbox selected")
    return session.selected


async def find_folder(
    session: ImapSession, name: str, code: str = "NONEXISTENT"
) -> Folder:
    """Return the session user's folder named ``name``; NO when it does not exist."""
    folder = await session.server.mail.get_folder(account_id_of(session), name)
    if folder is None:
        raise CommandFailed(f"mailbox {name!r} does not exist", code=code)
    return folder
