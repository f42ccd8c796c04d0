"""The ssh module: an SFTP-only SSH server on asyncssh.

Each SSH connection is one ``SftpConnection``: it authenticates a site owner
by password or public key against ``ssh_users``, with the login throttle
every protocol shares, and gives each SFTP channel a ``ConfinedSFTPServer``
rooted at the account's vhost document root. Shell, exec, port forwarding,
agent and X11 forwarding are all rejected: asyncssh runs no session but the
SFTP subsystem when only ``sftp_factory`` is given, and the forwarding
requests are refused by ``asyncssh.SSHServer``'s defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections import defaultdict

import asyncssh

from onestack import passwords
from onestack.config import SshConfig
from onestack.events import Event
from onestack.modules import Module, WorkerContext
from onestack.ssh.accounts import is_valid_username, key_matches
from onestack.ssh.confine import DocumentRoot
from onestack.ssh.hostkeys import load_host_keys
from onestack.ssh.sftp import ConfinedSFTPServer, SessionLimits
from onestack.store.ssh import SshLogin, get_login
from onestack.throttle import LoginThrottle

logger = logging.getLogger(__name__)

_connection_ids = itertools.count(1)
STOP_TIMEOUT = 10.0  # seconds stop() waits for open connections to close

# Verified against when a username is unknown, so that a failed login costs
# the same time whether or not the account exists.
_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = passwords.hash_password(passwords.generate_password())
    return _DUMMY_HASH


class SftpConnection(asyncssh.SSHServer):
    """One SSH connection: authentication, its account, and its idle timer."""

    def __init__(self, module: SshModule) -> None:
        self.module = module
        self.id = f"s{next(_connection_ids)}"
        self.peer = "?"
        self.conn: asyncssh.SSHServerConnection | None = None
        self.login: SshLogin | None = None
        self.auth_method = ""
        self.last_activity = time.monotonic()
        self.lost = False
        self._idle_task: asyncio.Task[None] | None = None

    @property
    def throttle_key(self) -> str:
        return "ip:" + self.peer

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.module.connections.add(self)
        peer = conn.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        logger.debug("[conn=%s] connection from %s", self.id, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._idle_task is not None:
            self._idle_task.cancel()
        self.module.connections.discard(self)
        self.module.unregister(self)

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    # --- authentication ------------------------------------------------------

    def begin_auth(self, username: str) -> bool:
        # Every account needs authentication.
        return True

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        if await self._is_blocked():
            return False

        login = await self._find_login(username)
        password_hash = login.user.password_hash if login else None
        verified = await asyncio.to_thread(
            passwords.verify_password, password_hash or _dummy_hash(), password
        )
        if not (verified and login is not None and password_hash):
            await self._record_failure(username, "password")
            return False

        return self._admit(login, "password")

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # A client offers its keys one after another, so an unknown key is
        # not a failed login; only wrong passwords count for the throttle.
        if await self._is_blocked():
            return False
        login = await self._find_login(username)
        if login is None or not key_matches(login.user.public_keys, key):
            return False
        return self._admit(login, "publickey")

    async def auth_completed(self) -> None:
        assert self.login is not None
        if self.lost:
            return
        self.module.register(self)
        self.touch()
        self._idle_task = asyncio.create_task(self._close_when_idle())
        logger.info(
            "[conn=%s] login %s from %s (%s)",
            self.id,
            self.login.user.username,
            self.peer,
            self.auth_method,
        )
        await self.module.throttle.record_success(self.throttle_key)

    async def _is_blocked(self) -> bool:
        retry_after = await self.module.throttle.retry_after(self.throttle_key)
        if retry_after:
            logger.warning(
                "[conn=%s] login from %s rejected: blocked for %d s after failed logins",
                self.id,
                self.peer,
                retry_after,
            )
        return retry_after > 0

    async def _find_login(self, username: str) -> SshLogin | None:
        if not is_valid_username(username):
            return None
        login = await get_login(self.module.context.store, username)
        if login is None or not login.user.enabled:
            return None
        return login

    async def _record_failure(self, username: str, method: str) -> None:
        failures = await self.module.throttle.record_failure(self.throttle_key)
        logger.info(
            "[conn=%s] failed %s login for %r from %s (%d recent failures)",
            self.id,
            method,
            username[:64],
            self.peer,
            failures,
        )
        delay = await self.module.throttle.delay_for(self.throttle_key)
        if delay:
            await asyncio.sleep(delay)

    def _admit(self, login: SshLogin, method: str) -> bool:
        """Accept valid credentials unless the account is at its session limit."""
        username = login.user.username
        if not os.path.isdir(login.document_root):
            logger.warning(
                "[conn=%s] login %s rejected: document root %s is not a directory",
                self.id,
                username,
                login.document_root,
            )
            return False
        limit = self.module.config.maxSessionsPerUser
        if self.module.session_count(username) >= limit:
            logger.warning(
                "[conn=%s] login %s rejected: %d sessions open (limit %d)",
                self.id,
                username,
                self.module.session_count(username),
                limit,
            )
            return False
        self.login = login
        self.auth_method = method
        return True

    # --- sessions ------------------------------------------------------------

    def create_sftp_server(self, chan: asyncssh.SSHServerChannel) -> ConfinedSFTPServer:
        assert self.login is not None
        root = DocumentRoot(self.login.document_root)
        limits = SessionLimits(
            self.id, self.module.config.maxHandlesPerSession, self.touch
        )
        return ConfinedSFTPServer(chan, root, limits)

    async def _close_when_idle(self) -> None:
        timeout = self.module.config.idleTimeout
        while True:
            idle = time.monotonic() - self.last_activity
            if idle >= timeout:
                break
            await asyncio.sleep(timeout - idle)
        logger.info("[conn=%s] closed after %.0f s idle", self.id, timeout)
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class SshModule(Module):
    """SFTP on ``host:port``, each account confined to its document root."""

    name = "ssh"
    config_model = SshConfig

    def __init__(self, config: SshConfig, context: WorkerContext) -> None:  # type: ignore[override]
        super().__init__(config, context)
        self.config: SshConfig = config
        self.throttle = LoginThrottle(context.store)
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._sessions: dict[str, set[SftpConnection]] = defaultdict(set)
        # Every open connection, authenticated or not, so stop() can close them.
        self.connections: set[SftpConnection] = set()

    async def start(self) -> None:
        host_keys = await asyncio.to_thread(load_host_keys, self.context.data_dir)
        self._acceptor = await asyncssh.listen(
            self.config.host,
            self.config.port,
            reuse_port=True,
            server_host_keys=host_keys,
            server_factory=lambda: SftpConnection(self),
            sftp_factory=self._create_sftp_server,
            allow_scp=False,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
            kbdint_auth=False,
        )
        logger.info("sftp listening on %s:%d", self.config.host, self.config.port)

    async def stop(self) -> None:
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is None:
            return
        acceptor.close()
        open_connections = [c.conn for c in self.connections if c.conn is not None]
        for conn in open_connections:
            conn.close()
        # Wait for the connections' own tasks (a login still writing to the
        # store, for example) so none outlives the module.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*(conn.wait_closed() for conn in open_connections)),
                STOP_TIMEOUT,
            )
        with contextlib.suppress(Exception):
            await acceptor.wait_closed()
        logger.info("sftp listener on port %d closed", self.config.port)

    async def on_event(self, event: Event) -> None:
        """Close the sessions of an account that was deleted or disabled."""
        data = event["data"]
        if event["type"] == "sshUserDeleted":
            self.close_sessions(str(data.get("username", "")), "account deleted")
        elif event["type"] == "sshUserUpdated" and data.get("enabled") is False:
            self.close_sessions(str(data.get("username", "")), "account disabled")

    def _create_sftp_server(
        self, chan: asyncssh.SSHServerChannel
    ) -> ConfinedSFTPServer:
        owner = chan.get_connection().get_owner()
        assert isinstance(owner, SftpConnection)
        return owner.create_sftp_server(chan)

    # NOTE: sessions are counted per worker process, so with several workers
    # an account may hold up to maxSessionsPerUser connections in each.
    def session_count(self, username: str) -> int:
        return len(self._sessions.get(username, ()))

    def register(self, connection: SftpConnection) -> None:
        assert connection.login is not None
        self._sessions[connection.login.user.username].add(connection)

    def unregister(self, connection: SftpConnection) -> None:
        if connection.login is None:
            return
        username = connection.login.user.username
        connections = self._sessions.get(username)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._sessions[username]

    def close_sessions(self, username: str, reason: str) -> None:
        for connection in list(self._sessions.get(username, ())):
            logger.info(
                "[conn=%s] closing session of %s: %s", connection.id, username, reason
            )
            connection.close()
