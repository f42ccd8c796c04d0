"""One worker's web server: listeners, shared state and periodic work.

``WebServer`` binds the listener (SO_REUSEPORT, so the module's workers
share the port), keeps the state every connection shares (vhost table, file
cache, access log, stats), and runs one periodic task that enforces
timeouts, flushes the access log every second and adds stats to the store
every two seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from pathlib import Path

from onestack.config import HttpLimits
from onestack.store import Store
from onestack.web.accesslog import AccessLog
from onestack.web.files import FileCache
from onestack.web.protocol import HttpConnection
from onestack.web.responses import Router, challenge_dir
from onestack.web.stats import VhostStats
from onestack.web.vhost_table import VhostTable, load_vhosts

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.5
ACCESS_LOG_FLUSH_SECONDS = 1.0
STATS_FLUSH_SECONDS = 2.0
# Open connections get this long to finish their responses at stop.
STOP_GRACE_SECONDS = 2.0


class ServerState:
    """The state every connection of one worker shares."""

    def __init__(
        self,
        limits: HttpLimits,
        router: Router,
        access_log: AccessLog | None,
        use_sendfile: bool,
    ) -> None:
        self.limits = limits
        self.router = router
        self.access_log = access_log
        self.use_sendfile = use_sendfile
        self.stats = VhostStats()
        self.connections: set[HttpConnection] = set()
        self._limit_logged: dict[str, tuple[float, int]] = {}

    def limit_hit(self, message: str, *args: object) -> None:
        """Log a limit being hit, at most once a second per kind of message."""
        now = time.monotonic()
        last, suppressed = self._limit_logged.get(message, (0.0, 0))
        if now - last < 1.0:
            self._limit_logged[message] = (last, suppressed + 1)
            return
        self._limit_logged[message] = (now, 0)
        if suppressed:
            logger.warning(message + " (and %d more like it)", *args, suppressed)
        else:
            logger.warning(message, *args)


class WebServer:
    """The listener and periodic work of the http or https module in one worker."""

    def __init__(
        self,
        store: Store,
        data_dir: Path,
        limits: HttpLimits,
        *,
        access_log: AccessLog | None,
        is_tls: bool,
        https_port: int,
    ) -> None:
        self.store = store
        router = Router(
            vhosts=VhostTable(),
            files=FileCache(),
            challenge_dir=challenge_dir(data_dir),
            is_tls=is_tls,
            https_port=https_port,
        )
        # os.sendfile bypasses TLS, so a TLS listener streams through reads.
        self.state = ServerState(limits, router, access_log, use_sendfile=not is_tls)
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()

    async def reload_vhosts(self) -> None:
        """Read the vhost table again and forget cached files."""
        async with self._reload_lock:
            rows = await load_vhosts(self.store)
            self.state.router.set_vhosts(VhostTable.build(rows))
        logger.info("loaded %d vhosts", len(rows))

    async def listen(
        self, host: str, port: int, ssl_context: ssl.SSLContext | None
    ) -> None:
        loop = asyncio.get_running_loop()
        state = self.state
        self._server = await loop.create_server(
            lambda: HttpConnection(state),
            host,
            port,
            reuse_port=True,
            backlog=4096,
            ssl=ssl_context,
            ssl_handshake_timeout=state.limits.headerTimeout if ssl_context else None,
        )
        self._ticker = asyncio.create_task(self._tick())
        logger.info(
            "%s listening on %s:%d", "https" if ssl_context else "http", host, port
        )

    async def stop(self) -> None:
        """Close the listener and connections, then flush logs and stats."""
        if self._server is not None:
            self._server.close()
            self._server = None
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for connection in list(self.state.connections):
                if connection.transfer is None and not connection.queue:
                    connection.transport.close()
            while self.state.connections and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            for connection in list(self.state.connections):
                connection.transport.abort()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
            if self._stats_task is not None:
                await self._stats_task
                self._stats_task = None
            await self._flush(final=True)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        next_log = next_stats = loop.time()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = loop.time()
            for connection in list(self.state.connections):
                connection.check_deadline(now)
            if now >= next_log:
                next_log = now + ACCESS_LOG_FLUSH_SECONDS
                if self.state.access_log is not None:
                    self.state.access_log.flush()
            if now >= next_stats:
                next_stats = now + STATS_FLUSH_SECONDS
                # A slow database must not hold up the timeouts above.
                if self._stats_task is None or self._stats_task.done():
                    self._stats_task = asyncio.create_task(
                        self.state.stats.flush(self.store)
                    )

    async def _flush(self, final: bool) -> None:
        if self.state.access_log is not None:
            self.state.access_log.flush()
        await self.state.stats.flush(self.store)
        if final and self.state.stats.deltas:
            logger.warning("vhost stats of this worker were lost at stop")
