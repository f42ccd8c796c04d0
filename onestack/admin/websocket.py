"""The WebSocket feed on the admin port, path ``/``: status and public events.

A client authenticates in one of three ways: HTTP Basic credentials on the
upgrade request (clients turn ``ws://user:pass@host/`` into that header),
``?username=...&password=...`` in the URL, or a first message
``{"type": "auth", "username": "...", "password": "..."}`` within
``AUTH_TIMEOUT`` seconds. Failures count towards the same login throttle as
the REST API. An authenticated client receives ``status`` at once and every
``STATUS_INTERVAL`` seconds, and every event whose type is public.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from onestack.admin.errors import ApiError
from onestack.events import PUBLIC_EVENT_TYPES, Event, EventHub

logger = logging.getLogger(__name__)

router = APIRouter()

AUTH_TIMEOUT = 10.0
STATUS_INTERVAL = 5.0
# Messages waiting for one slow client; past this it is disconnected rather
# than let its backlog grow without bound.
MAX_QUEUED_MESSAGES = 256
CLOSE_TIMEOUT = 2.0

# RFC 6455 section 7.4.1 close codes.
CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013


class FeedClient:
    """One authenticated socket's bounded queue of outgoing messages."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(MAX_QUEUED_MESSAGES)
        self.overflowed = asyncio.Event()

    def offer(self, text: str) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed.set()
            # Free the backlog now; the connection is closed next.
            while not self.queue.empty():
                self.queue.get_nowait()


class EventFeed:
    """Fans public events and periodic status out to the connected clients."""

    def __init__(self, hub: EventHub, status: Callable[[], dict[str, Any]]) -> None:
        self.hub = hub
        self.status = status
        self.clients: set[FeedClient] = set()
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Subscribe to the hub and return the status ticker task."""
        self._unsubscribe = self.hub.subscribe(self._on_event)
        return asyncio.create_task(self._tick(), name="websocket-status")

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def _on_event(self, event: Event) -> None:
        if event["type"] in PUBLIC_EVENT_TYPES and self.clients:
            self.broadcast(json.dumps(event, default=str))

    def broadcast(self, text: str) -> None:
        for client in list(self.clients):
            client.offer(text)

    def status_message(self) -> str:
        return json.dumps({"type": "status", "data": self.status()})

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            if not self.clients:
                continue
            try:
                self.broadcast(self.status_message())
            except Exception:
                logger.exception("building the status message failed")


_QUERY_PASSWORD = re.compile(r"(password=)[^&\s\"']*", re.IGNORECASE)


class RedactQueryPassword(logging.Filter):
    """Replace ``password=...`` in log lines with the redacted placeholder.

    uvicorn logs each WebSocket request line with its query string, which is
    where clients put ``?username=...&password=...``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "password=" in message.lower():
            record.msg = _QUERY_PASSWORD.sub(r"\1********", message)
            record.args = None
        return True


def install_log_redaction() -> None:
    """Attach RedactQueryPassword to uvicorn's logger, once."""
    uvicorn_logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, RedactQueryPassword) for f in uvicorn_logger.filters):
        uvicorn_logger.addFilter(RedactQueryPassword())


def _basic_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


class FeedConnection:
    """One WebSocket connection: authentication, then the send loop."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.state = websocket.app.state.admin
        client = websocket.client
        self.peer = client.host if client else "unknown"

    async def run(self) -> None:
        await self.websocket.accept()
        header = self.websocket.headers.get("authorization")
        query = self.websocket.query_params
        if header is None and "username" in query:
            header = _basic_header(query.get("username", ""), query.get("password", ""))

        if header is not None:
            username = await self._authenticate(header)
        else:
            username = await self._authenticate_by_message()
        if username is None:
            return
        logger.info("websocket client %s authenticated as %r", self.peer, username)
        await self._serve()

    async def _authenticate(self, header: str) -> str | None:
        state = self.state
        try:
            return await state.authenticator.authenticate(
                state.config.server.adminPanel, self.peer, header
            )
        except ApiError as exc:
            await self._close(CLOSE_POLICY_VIOLATION, exc.message)
            return None

    async def _authenticate_by_message(self) -> str | None:
        try:
            text = await asyncio.wait_for(self.websocket.receive_text(), AUTH_TIMEOUT)
        except TimeoutError:
            logger.info("websocket client %s sent no credentials; closing", self.peer)
            await self._close(
                CLOSE_POLICY_VIOLATION,
                f"authentication timed out: send Basic credentials or an auth "
                f"message within {AUTH_TIMEOUT:.0f} s",
            )
            return None
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return None
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if (
            not isinstance(message, dict)
            or message.get("type") != "auth"
            or not isinstance(message.get("username"), str)
            or not isinstance(message.get("password"), str)
        ):
            await self._close(
                CLOSE_POLICY_VIOLATION,
                'authentication required: the first message must be {"type": "auth", '
                '"username": ..., "password": ...}',
            )
            return None
        username = await self._authenticate(
            _basic_header(message["username"], message["password"])
        )
        if username is not None:
            await self.websocket.send_text(
                json.dumps(
                    {"type": "auth", "data": {"success": True, "username": username}}
                )
            )
        return username

    async def _serve(self) -> None:
        feed: EventFeed = self.state.feed
        client = FeedClient()
        client.offer(feed.status_message())
        feed.clients.add(client)
        sender = asyncio.create_task(self._send_loop(client))
        receiver = asyncio.create_task(self._receive_loop())
        overflow = asyncio.create_task(client.overflowed.wait())
        try:
            done, _pending = await asyncio.wait(
                {sender, receiver, overflow}, return_when=asyncio.FIRST_COMPLETED
            )
            if overflow in done:
                logger.warning(
                    "websocket client %s fell %d messages behind; disconnecting it",
                    self.peer,
                    MAX_QUEUED_MESSAGES,
                )
                sender.cancel()
                await self._close(
                    CLOSE_TRY_AGAIN_LATER, "client too slow to read events"
                )
        finally:
            feed.clients.discard(client)
            for task in (sender, receiver, overflow):
                task.cancel()
            await asyncio.gather(sender, receiver, overflow, return_exceptions=True)

    async def _send_loop(self, client: FeedClient) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            while True:
                await self.websocket.send_text(await client.queue.get())

    async def _receive_loop(self) -> None:
        # Messages after authentication carry nothing for the server; reading
        # them is how a close from the client is noticed.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, KeyError):
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return

    async def _close(self, code: int, reason: str) -> None:
        if self.websocket.application_state == WebSocketState.DISCONNECTED:
            return
        with contextlib.suppress(
            WebSocketDisconnect, RuntimeError, OSError, TimeoutError
        ):
            # RFC 6455 section 5.5: a close reason fits in 123 bytes.
            reason_bytes = reason.encode()[:123]
            await asyncio.wait_for(
                self.websocket.close(code, reason_bytes.decode(errors="ignore")),
                CLOSE_TIMEOUT,
            )


@router.websocket("/")
async def feed_socket(websocket: WebSocket) -> None:
    await FeedConnection(websocket).run()
