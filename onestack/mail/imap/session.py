"""One IMAP connection: read, parse, dispatch, reply (RFC 3501 sections 2 to 5).

Each connection is an ``ImapSession`` with its state (not authenticated,
authenticated, selected, logout) and a dispatch table from command names to
handlers. Handlers raise ``ImapError`` subclasses, which ``_run_command``
turns into tagged NO or BAD in one place. Any other exception is logged with
its traceback, and the client gets a plain NO.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import itertools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from onestack import passwords
from onestack.mail.imap import commands
from onestack.mail.imap.mailstore import Account
from onestack.mail.imap.parser import LITERAL_ANNOUNCEMENT, CommandReader
from onestack.mail.imap.responses import BadCommand, CommandFailed, ImapError
from onestack.mail.imap.selected import FolderGone, SelectedMailbox
from onestack.mail.imap.state import ANY, AUTHENTICATED, NOT_AUTHENTICATED, State

if TYPE_CHECKING:
    from onestack.mail.imap.server import ImapServer

logger = logging.getLogger(__name__)

# RFC 3501 section 5.4: the autologout timer is at least 30 minutes once
# authenticated; before that a short one frees slots held by idle probes.
AUTOLOGOUT_SECONDS = 30 * 60
PREAUTH_TIMEOUT_SECONDS = 60
# A command may carry many literals (APPEND of several parts, long lists);
# this bounds the work one command can ask for.
MAX_LITERALS_PER_COMMAND = 1000
# Maximum age in seconds of the last read of the selected mailbox's change
# counter that a command may rely on when no event announced a change.
RECHECK_SECONDS = 1.0
_connection_ids = itertools.count(1)
_DUMMY_HASH: str | None = None


Handler = Callable[["ImapSession", str, CommandReader], Awaitable[None]]


class Disconnect(Exception):
    """End the connection after sending ``line`` (a BYE), if any."""

    def __init__(self, line: bytes = b"") -> None:
        super().__init__()
        self.line = line


class ImapSession:
    """The state and command handlers of one client connection."""

    def __init__(
        self,
        server: ImapServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.id = next(_connection_ids)
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.peer_address = str(peer[0])
        self.state = State.NOT_AUTHENTICATED
        self.account: Account | None = None
        self.selected: SelectedMailbox | None = None
        self.tls = writer.get_extra_info("sslcontext") is not None
        self.condstore = False
        self.wakeup = asyncio.Event()
        self.changes_pending = False
        self.last_poll = 0.0
        self.dispatch: dict[str, tuple[Handler, frozenset[State]]] = {
            "CAPABILITY": (ImapSession.imap_CAPABILITY, ANY),
            "NOOP": (ImapSession.imap_NOOP, ANY),
            "LOGOUT": (ImapSession.imap_LOGOUT, ANY),
            "ID": (ImapSession.imap_ID, ANY),
            "STARTTLS": (ImapSession.imap_STARTTLS, NOT_AUTHENTICATED),
            "LOGIN": (ImapSession.imap_LOGIN, NOT_AUTHENTICATED),
            "AUTHENTICATE": (ImapSession.imap_AUTHENTICATE, NOT_AUTHENTICATED),
            "ENABLE": (ImapSession.imap_ENABLE, AUTHENTICATED),
            "IDLE": (ImapSession.imap_IDLE, AUTHENTICATED),
            **commands.HANDLERS,
        }

    # --- logging helpers -------------------------------------------------

    def log(self, level: int, message: str, *args: object) -> None:
        logger.log(level, "[conn=%d %s] " + message, self.id, self.peer_address, *args)

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.peer_address.split("%", 1)[0]).is_loopback
        except ValueError:
            return False

    @property
    def login_allowed(self) -> bool:
        # RFC 3501 section 6.2.3: no clear-text passwords without TLS, except
        # on loopback where nothing crosses a network.
        return self.tls or self.is_loopback

    def capabilities(self) -> str:
        names = [
            "IMAP4rev1",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
        ]
        if self.state == State.NOT_AUTHENTICATED:
            if self.server.ssl_context is not None and not self.tls:
                names.append("STARTTLS")
            names.append("AUTH=PLAIN" if self.login_allowed else "LOGINDISABLED")
        else:
            names += [
                "UIDPLUS",
                "MOVE",
                "SPECIAL-USE",
                "UNSELECT",
                "CONDSTORE",
                "CHILDREN",
            ]
        return " ".join(names)

    # --- connection loop ---------------------------------------------------

    async def handle(self) -> None:
        """Serve the connection until LOGOUT, a timeout, an error or server stop."""
        self.log(logging.DEBUG, "connected")
        try:
            await self.send(
                f"* OK [CAPABILITY {self.capabilities()}] OneStack IMAP ready\r\n"
            )
            while self.state != State.LOGOUT:
                command = await self._read_command()
                if command is None:
                    break
                await self._run_command(command)
        except Disconnect as stop:
            if stop.line:
                await self._send_quietly(stop.line)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.server.forget(self)
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, ssl.SSLError):
                pass
            self.log(logging.DEBUG, "closed")

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def _send_quietly(self, data: bytes) -> None:
        try:
            await self.send(data)
        except (ConnectionError, RuntimeError):
            pass

    def _timeout(self) -> float:
        if self.state == State.NOT_AUTHENTICATED:
            return PREAUTH_TIMEOUT_SECONDS
        return AUTOLOGOUT_SECONDS

    async def read_line(self) -> bytes | None:
        """Read one line without its CRLF; None at end of stream."""
        try:
            line = await asyncio.wait_for(self.reader.readuntil(b"\n"), self._timeout())
        except TimeoutError as exc:
            raise Disconnect(b"* BYE autologout timer expired\r\n") from exc
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as exc:
            self.log(
                logging.WARNING,
                "command line longer than %d bytes",
                self.server.max_line,
            )
            raise Disconnect(b"* BYE command line too long\r\n") from exc
        return line.rstrip(b"\r\n")

    async def _read_command(self) -> bytes | None:
        """Read a whole command: its lines and the literals they announce."""
        line = await self.read_line()
        if line is None:
            return None
        pieces = [line]
        total = len(line)
        literals = 0
        while True:
            match = LITERAL_ANNOUNCEMENT.search(line)
            if match is None:
                return b"".join(pieces)
            size, non_sync = int(match.group(1)), bool(match.group(2))
            literals += 1
            total += size
            if size > self.server.max_literal or literals > MAX_LITERALS_PER_COMMAND:
                self.log(logging.WARNING, "literal of %d bytes rejected", size)
                if non_sync:
                    # RFC 7888 section 4: the client sends the data without
                    # waiting, so the stream can only be resynchronised by
                    # closing it.
                    raise Disconnect(b"* BYE [TOOBIG] literal too large\r\n")
                tag = line.split(b" ", 1)[0].decode("ascii", "replace")
                await self.send(f"{tag} BAD [TOOBIG] literal too large\r\n")
                return b""
            if not non_sync:
                await self.send(b"+ Ready for literal data\r\n")
            try:
                data = await asyncio.wait_for(
                    self.reader.readexactly(size), self._timeout()
                )
            except TimeoutError as exc:
                raise Disconnect(b"* BYE autologout timer expired\r\n") from exc
            pieces += [b"\r\n", data]
            line = await self.read_line()
            if line is None:
                return None
            total += len(line)
            if total > self.server.max_literal + self.server.max_line:
                raise Disconnect(b"* BYE [TOOBIG] command too large\r\n")
            pieces.append(line)

    async def _run_command(self, command: bytes) -> None:
        if not command:
            return
        reader = CommandReader(command)
        tag = "*"
        try:
            tag = reader.tag()
            reader.sp()
            name = reader.atom().upper()
            entry = self.dispatch.get(name)
            if entry is None:
                raise BadCommand(f"unknown command {name[:40]}")
            handler, states = entry
            if self.state not in states:
                raise BadCommand(f"{name} is not allowed in this state")
            self.log(logging.DEBUG, "command %s %s", tag, name)
            await handler(self, tag, reader)
        except ImapError as error:
            await self.send(error.line(tag))
        except FolderGone as exc:
            raise Disconnect(
                b"* BYE the selected mailbox was deleted or renamed\r\n"
            ) from exc
        except (Disconnect, ConnectionError, asyncio.IncompleteReadError):
            raise
        except Exception:
            self.log(logging.ERROR, "command failed")
            logger.exception("[conn=%d] unexpected error", self.id)
            await self.send(f"{tag} NO [SERVERBUG] internal server error\r\n")

    async def complete(
        self, tag: str, text: str, allow_expunge: bool = True, force: bool = False
    ) -> None:
        """Send pending mailbox updates, then the tagged OK."""
        await self.send_updates(allow_expunge, force=force)
        await self.send(f"{tag} OK {text}\r\n")

    async def send_updates(
        self,
        allow_expunge: bool = True,
        quiet: set[int] | None = None,
        force: bool = False,
    ) -> None:
        """Report changes to the selected mailbox (RFC 3501 section 7.3, 7.4).

        Without ``force`` the store is read only after an event named this
        account or when the last read is older than ``RECHECK_SECONDS``, so a
        burst of commands costs one read. NOOP, CHECK, IDLE and the commands
        that change messages always read it.
        """
        selected = self.selected
        if selected is None:
            return
        now = time.monotonic()
        recent_enough = now - self.last_poll < RECHECK_SECONDS
        if not force and not self.changes_pending and recent_enough:
            return
        self.changes_pending = False
        self.last_poll = now
        lines = await selected.poll(
            self.server.mail, allow_expunge, self.condstore, quiet or set()
        )
        if selected.expunges_held:
            self.changes_pending = True
        if lines:
            await self.send(b"".join(lines))

    # --- commands valid in any state ------------------------------------

    async def imap_CAPABILITY(self, tag: str, reader: CommandReader) -> None:
        reader.end()
        await self.send(f"* CAPABILITY {self.capabilities()}\r\n")
        await self.complete(tag, "CAPABILITY completed")

    async def imap_NOOP(self, tag: str, reader: CommandReader) -> None:
        reader.end()
        await self.complete(tag, "NOOP completed", force=True)

    async def imap_LOGOUT(self, tag: str, reader: CommandReader) -> None:
        reader.end()
        self.state = State.LOGOUT
        await self.send(f"* BYE logging out\r\n{tag} OK LOGOUT completed\r\n")

    async def imap_ID(self, tag: str, reader: CommandReader) -> None:
        # RFC 2971: the client's fields are only informational.
        reader.sp()
        if reader.peek() == 0x28:
            reader.skip_list()
        else:
            reader.nstring_or_nil()
        reader.end()
        await self.send('* ID ("name" "OneStack")\r\n')
        await self.complete(tag, "ID completed")

    # --- not authenticated --------------------------------------------------

    async def imap_STARTTLS(self, tag: str, reader: CommandReader) -> None:
        reader.end()
        if self.server.ssl_context is None or self.tls:
            raise BadCommand("STARTTLS is not available")
        # Bytes sent after STARTTLS but before the handshake would otherwise
        # be read as commands sent under TLS (a command injection).
        if self.reader._buffer:  # noqa: SLF001 - StreamReader has no public peek
            raise Disconnect(b"* BYE data after STARTTLS\r\n")
        await self.send(f"{tag} OK begin TLS negotiation now\r\n")
        try:
            await self.writer.start_tls(self.server.ssl_context)
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            self.log(logging.INFO, "TLS handshake failed: %s", type(exc).__name__)
            raise Disconnect() from exc
        self.tls = True

    async def imap_LOGIN(self, tag: str, reader: CommandReader) -> None:
        reader.sp()
        username = reader.astring()
        reader.sp()
        password = reader.astring()
        reader.end()
        await self.authenticate(tag, username, password)

    async def imap_AUTHENTICATE(self, tag: str, reader: CommandReader) -> None:
        reader.sp()
        mechanism = reader.atom().upper()
        if mechanism != "PLAIN":
            raise CommandFailed(
                f"authentication mechanism {mechanism} is not supported"
            )
        initial: bytes | None = None
        if reader.try_sp():
            initial = reader.atom(frozenset(b"=")).encode()  # RFC 4959 SASL-IR
        reader.end()
        if initial is None or initial == b"=":
            await self.send(b"+ \r\n")
            initial = await self.read_line()
            if initial is None:
                raise Disconnect()
        if initial == b"*":
            raise BadCommand("authentication cancelled")
        try:
            decoded = base64.b64decode(initial, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadCommand("invalid base64 in AUTHENTICATE response") from exc
        parts = decoded.split(b"\x00")
        if len(parts) != 3:
            raise BadCommand("invalid PLAIN response")
        authzid, authcid, password = (part.decode("utf-8", "replace") for part in parts)
        if authzid and authzid.lower() != authcid.lower():
            raise CommandFailed(
                "authorization identity must match", code="AUTHORIZATIONFAILED"
            )
        await self.authenticate(tag, authcid, password)

    async def authenticate(self, tag: str, username: str, password: str) -> None:
        """Check a user name and password with the shared login throttle."""
        if not self.login_allowed:
            raise CommandFailed("log in after STARTTLS", code="PRIVACYREQUIRED")
        key = "ip:" + self.peer_address
        throttle = self.server.throttle
        wait = await throttle.retry_after(key)
        if wait:
            self.log(logging.WARNING, "login blocked for %d s more", wait)
            raise CommandFailed(
                f"too many failed logins, retry in {wait} s", code="UNAVAILABLE"
            )

        found = await self.server.mail.find_account(username)
        stored_hash = found[1] if found else _dummy_hash()
        valid = await asyncio.to_thread(
            passwords.verify_password, stored_hash, password
        )
        if found is None or not valid:
            await throttle.record_failure(key)
            delay = await throttle.delay_for(key)
            if delay:
                await asyncio.sleep(delay)
            self.log(logging.INFO, "login failed for %r", username[:100])
            raise CommandFailed(
                "invalid user name or password", code="AUTHENTICATIONFAILED"
            )

        await throttle.record_success(key)
        self.account = found[0]
        self.state = State.AUTHENTICATED
        await self.server.mail.ensure_default_folders(self.account.id)
        self.server.register(self)
        self.log(logging.INFO, "login %s", self.account.email)
        await self.send(f"{tag} OK [CAPABILITY {self.capabilities()}] logged in\r\n")

    # --- authenticated ---------------------------------------------------------

    async def imap_ENABLE(self, tag: str, reader: CommandReader) -> None:
        enabled: list[str] = []
        reader.sp()
        while True:
            name = reader.atom().upper()
            if name == "CONDSTORE" and name not in enabled:
                self.condstore = True
                enabled.append(name)
            if not reader.try_sp():
                break
        reader.end()
        await self.send(("* ENABLED " + " ".join(enabled)).rstrip() + "\r\n")
        await self.complete(tag, "ENABLE completed")

    async def imap_IDLE(self, tag: str, reader: CommandReader) -> None:
        """Send mailbox changes as they happen until the client sends DONE (RFC 2177)."""
        reader.end()
        await self.send(b"+ idling\r\n")
        await self.send_updates(force=True)
        read_done = asyncio.ensure_future(self.read_line())
        self.server.idling.add(self)
        try:
            while True:
                self.wakeup.clear()
                woken = asyncio.ensure_future(self.wakeup.wait())
                done, _ = await asyncio.wait(
                    {read_done, woken},
                    timeout=self.server.idle_poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                woken.cancel()
                if read_done in done:
                    break
                await self.send_updates(force=True)
        finally:
            self.server.idling.discard(self)
            if not read_done.done():
                read_done.cancel()
        line = read_done.result()
        if line is None:
            raise Disconnect()
        if line.upper() != b"DONE":
            raise BadCommand("expected DONE to end IDLE")
        await self.complete(tag, "IDLE terminated")

    def revoke(self) -> None:
        """End the session because its account was disabled or deleted."""
        self.log(logging.INFO, "account disabled or deleted, closing")
        self.state = State.LOGOUT
        self.writer.write(b"* BYE account disabled or deleted\r\n")
        self.writer.close()

    def notify(self) -> None:
        """Wake an IDLE command after another session or process changed mail."""
        self.changes_pending = True
        self.wakeup.set()


def _dummy_hash() -> str:
    # Verifying against a real hash when the user does not exist keeps the
    # time of a failed login independent of whether the account exists.
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = passwords.hash_password(passwords.generate_password())
    return _DUMMY_HASH
