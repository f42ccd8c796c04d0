"""The admin application: REST API under /api, WebSocket on /, panel files."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from onestack import config as config_module
from onestack.admin import errors, panel
from onestack.admin.auth import AdminAuthenticator, client_address
from onestack.admin.limits import RejectNulCharacters, RequestLimits
from onestack.admin.websocket import EventFeed
from onestack.config import Config
from onestack.events import EventHub
from onestack.store import Store
from onestack.store.counters import traffic_totals
from onestack.supervisor import Supervisor
from onestack.throttle import LoginThrottle, ThrottlePolicy
from onestack.tls.manager import CertificateManager

logger = logging.getLogger(__name__)

# Workers flush their counts every few seconds; reading more often buys nothing.
TRAFFIC_REFRESH_SECONDS = 2.0


def login_policy(config: Config) -> ThrottlePolicy:
    """Return the failed-login policy of ``server.adminPanel.rateLimit``."""
    limits = config.server.adminPanel.rateLimit
    return ThrottlePolicy(
        delay_after=limits.failedLoginsBeforeDelay,
        block_after=limits.failedLoginsBeforeBlock,
        block_seconds=limits.blockSeconds,
    )


@dataclass
class AdminState:
    """The shared state of the admin routes; one per supervisor process."""

    data_dir: Path
    store: Store
    hub: EventHub
    supervisor: Supervisor
    authenticator: AdminAuthenticator = field(init=False)
    feed: EventFeed = field(init=False)
    _config_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list, init=False)
    certificate_manager: CertificateManager | None = field(default=None, init=False)
    # Refreshed in the background, because both cost too much per request:
    # totals come from the store, the default-password check is an Argon2 hash.
    traffic: dict[str, int] = field(default_factory=dict, init=False)
    default_password: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        policy = login_policy(self.config)
        self.authenticator = AdminAuthenticator(LoginThrottle(self.store, policy))
        self.feed = EventFeed(self.hub, self.status)

    def status(self) -> dict[str, Any]:
        """Return GET /api/status: the supervisor's answer plus traffic totals."""
        return {
            **self.supervisor.status(),
            "counters": dict(self.traffic),
            "defaultPassword": self.default_password,
        }

    @property
    def config(self) -> Config:
        return self.supervisor.config

    async def start(self) -> None:
        """Start background tasks (the WebSocket status ticker)."""
        await self._check_default_password()
        await self._refresh_traffic()
        self._tasks.append(asyncio.create_task(self._traffic_loop(), name="traffic"))
        self._tasks.append(self.feed.start())
        await self._start_certificate_manager()

    async def _check_default_password(self) -> None:
        self.default_password = await asyncio.to_thread(
            self.config.admin_password_is_default
        )

    async def _refresh_traffic(self) -> None:
        self.traffic = await traffic_totals(self.store)

    async def _traffic_loop(self) -> None:
        while True:
            await asyncio.sleep(TRAFFIC_REFRESH_SECONDS)
            try:
                await self._refresh_traffic()
            except Exception:
                logger.exception("reading the traffic totals failed")

    async def _start_certificate_manager(self) -> None:
        """Renew ACME certificates here while HTTPS and ACME are enabled."""
        self.certificate_manager = CertificateManager(
            self.store,
            self.data_dir,
            lambda: self.config.modules.https.acme,
            self.hub.publish,
            active=lambda: self.config.modules.https.enabled,
        )
        self.hub.subscribe(self.certificate_manager.on_event)
        await self.certificate_manager.start()

    async def stop(self) -> None:
        self.feed.stop()
        if self.certificate_manager is not None:
            await self.certificate_manager.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks.clear()

    async def replace_config(self, new: Config) -> list[str]:
        """Store ``new`` atomically, apply it to the modules, and announce it.

        Returns the messages of module operations that failed. Raises
        ConfigError, before anything is stored, for a config this server
        must not run with.
        """
        await asyncio.to_thread(config_module.check_admin_exposure, new)
        async with self._config_lock:
            config_module.save(self.data_dir, new)
            failures = await self.supervisor.apply_config(new)
            self.authenticator.throttle.policy = login_policy(new)
            await self._check_default_password()
        await self.hub.publish("configUpdated", new.redacted())
        return failures

    async def reload_config(self) -> Config:
        """Re-read the config file (SIGHUP, POST /api/config/reload)."""
        new = config_module.load(self.data_dir)
        await self.replace_config(new)
        logger.info("config reloaded from %s", config_module.config_path(self.data_dir))
        return new


def get_state(request: Request) -> AdminState:
    return request.app.state.admin


async def require_admin(request: Request) -> str:
    """FastAPI dependency: the authenticated admin's name, or 401/429."""
    state: AdminState = request.app.state.admin
    return await state.authenticator.authenticate(
        state.config.server.adminPanel,
        client_address(request),
        request.headers.get("authorization"),
    )


def create_app(state: AdminState) -> FastAPI:
    from onestack.admin import websocket
    from onestack.admin.routers import (
        certificates,
        config,
        dns,
        mailboxes,
        messages,
        modules,
        ssh,
        system,
        vhosts,
    )

    # FastAPI's own document routes would be public; these are served below,
    # behind the same authentication as every other route under /api.
    app = FastAPI(
        title="OneStack admin API",
        version="0.1.0",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.admin = state
    errors.install(app)

    authenticated = [Depends(require_admin)]
    routers = (
        system.router,
        config.router,
        modules.router,
        vhosts.router,
        certificates.router,
        dns.router,
        ssh.router,
        mailboxes.router,
        messages.router,
    )
    for router in routers:
        app.include_router(router, dependencies=authenticated)
    # The WebSocket authenticates itself: header, URL or first message.
    app.include_router(websocket.router)
    websocket.install_log_redaction()

    @app.get("/api/openapi.json", include_in_schema=False, dependencies=authenticated)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/api/docs", include_in_schema=False, dependencies=authenticated)
    async def openapi_docs() -> HTMLResponse:
        # NOTE: Swagger UI's script and stylesheet load from FastAPI's default
        # CDN, so this page needs internet access in the browser. The document
        # at /api/openapi.json does not.
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json", title="OneStack admin API"
        )

    admin = lambda: state.config.server.adminPanel  # noqa: E731
    # Added first, so RequestLimits runs outside it and bounds what it buffers.
    app.add_middleware(RejectNulCharacters)
    app.add_middleware(
        RequestLimits,
        per_minute=lambda: admin().rateLimit.requestsPerMinute,
        max_body=lambda: admin().maxBodyBytes,
    )

    # Last, so that the API routes and the WebSocket route on / match first.
    panel.install(app)
    return app
