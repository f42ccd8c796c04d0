"""The http and https modules: static websites for every vhost."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, ClassVar

from onestack.config import HttpConfig, HttpsConfig, ModuleConfig
from onestack.events import Event
from onestack.modules import Module, WorkerContext
from onestack.web.accesslog import AccessLog
from onestack.web.server import WebServer

logger = logging.getLogger(__name__)

VHOST_EVENTS = frozenset({"vhostCreated", "vhostUpdated", "vhostDeleted"})
CERTIFICATE_EVENTS = frozenset({"certificateIssued", "certificateDeleted"})


class HttpModule(Module):
    """Serves each vhost's document root over plain HTTP."""

    name = "http"
    config_model: ClassVar[type[ModuleConfig]] = HttpConfig
    config: HttpConfig

    def __init__(self, config: ModuleConfig, context: WorkerContext) -> None:
        super().__init__(config, context)
        self.server: WebServer | None = None
        self._reload_pending = False
        self._reload_task: asyncio.Task[None] | None = None

    def https_port(self) -> int:
        return self.config.httpsPort

    def is_tls(self) -> bool:
        return False

    async def server_context(self) -> ssl.SSLContext | None:
        return None

    async def start(self) -> None:
        config = self.config
        access_log = None
        if config.accessLog:
            access_log = AccessLog(
                self.context.data_dir / "logs",
                config.accessLogMaxBytes,
                config.accessLogBackups,
            )
        server = WebServer(
            self.context.store,
            self.context.data_dir,
            config.limits,
            access_log=access_log,
            is_tls=self.is_tls(),
            https_port=self.https_port(),
        )
        await server.reload_vhosts()
        ssl_context = await self.server_context()
        await server.listen(config.host, config.port, ssl_context)
        self.server = server
        events = self.context.events
        if events is not None:
            # Events published while disconnected are lost: reload everything.
            events.on_reconnect = self._on_reconnect

    async def stop(self) -> None:
        server, self.server = self.server, None
        if self._reload_task is not None:
            self._reload_task.cancel()
            self._reload_task = None
        if server is not None:
            await server.stop()

    async def on_event(self, event: Event) -> None:
        if event["type"] in VHOST_EVENTS:
            await self.reload()

    async def _on_reconnect(self) -> None:
        await self.reload()

    async def reload(self) -> None:
        """Reload the vhost table; events arriving meanwhile cause one more reload."""
        if self.server is None:
            return
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_pending = True
            await asyncio.shield(self._reload_task)
            return
        self._reload_task = asyncio.create_task(self._reload_loop())
        await asyncio.shield(self._reload_task)

    async def _reload_loop(self) -> None:
        while True:
            self._reload_pending = False
            try:
                await self._reload_tables()
            except Exception:
                logger.exception("reloading the vhost table failed")
            if not self._reload_pending:
                return

    async def _reload_tables(self) -> None:
        if self.server is not None:
            await self.server.reload_vhosts()


class HttpsModule(HttpModule):
    """Serves each vhost over TLS, with its certificate chosen by SNI."""

    name = "https"
    config_model: ClassVar[type[ModuleConfig]] = HttpsConfig
    config: HttpsConfig  # type: ignore[assignment]

    def __init__(self, config: ModuleConfig, context: WorkerContext) -> None:
        super().__init__(config, context)
        self.certificates: Any = None

    def https_port(self) -> int:
        return self.config.port

    def is_tls(self) -> bool:
        return True

    async def server_context(self) -> ssl.SSLContext | None:
        try:
            from onestack.tls.sni import CertificateSet
        except ImportError:
            raise RuntimeError(
                "the https module needs the onestack.tls package, "
                "which is not part of this version"
            ) from None
        self.certificates = CertificateSet(self.context.store, self.context.data_dir)
        await self.certificates.load()
        context: ssl.SSLContext = self.certificates.server_context()
        return context

    async def on_event(self, event: Event) -> None:
        if event["type"] in VHOST_EVENTS or event["type"] in CERTIFICATE_EVENTS:
            await self.reload()

    async def _reload_tables(self) -> None:
        await super()._reload_tables()
        if self.certificates is not None:
            await self.certificates.load()
