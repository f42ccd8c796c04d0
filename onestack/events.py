"""The event bus: every process publishes what happened; every process hears it.

The supervisor runs an ``EventHub`` on a Unix stream socket in the data
directory. Worker processes connect with an ``EventClient``. Each event is
one line of JSON, ``{"type": ..., "data": {...}}``; the hub relays every
line it receives to every other connection and to its local subscribers
(the WebSocket feed, stats). Workers use events to reload their in-memory
tables (vhosts, zones, mailboxes) within a second of a change.

NOTE: this bus spans one machine. Several OneStack nodes sharing PostgreSQL
would need the same events over LISTEN/NOTIFY, which is not built yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

logger = logging.getLogger(__name__)

# One event line is at most this long; longer lines close the connection.
MAX_EVENT_BYTES = 1024 * 1024
SOCKET_NAME = "events.sock"

# Events the WebSocket feed shows. Other types (cache invalidation between
# processes, for example) stay internal.
PUBLIC_EVENT_TYPES = frozenset(
    {
        "status",
        "configUpdated",
        "moduleStarted",
        "moduleStopped",
        "moduleReloaded",
        "workerRestarted",
        "vhostCreated",
        "vhostUpdated",
        "vhostDeleted",
        "certificateIssued",
        "certificateDeleted",
        "dnsZoneCreated",
        "dnsZoneUpdated",
        "dnsZoneDeleted",
        "dnsRecordAdded",
        "dnsRecordUpdated",
        "dnsRecordDeleted",
        "mailboxCreated",
        "mailboxUpdated",
        "mailboxDeleted",
        "emailSent",
        "emailReceived",
        "messageUpdated",
        "messageDeleted",
        "sshUserCreated",
        "sshUserUpdated",
        "sshUserDeleted",
    }
)


class Event(TypedDict):
    type: str
    data: dict[str, Any]


Subscriber = Callable[[Event], Awaitable[None]]


def socket_path(data_dir: Path) -> Path:
    return data_dir / "run" / SOCKET_NAME


def encode(event: Event) -> bytes:
    return json.dumps(event, separators=(",", ":"), default=str).encode() + b"\n"


def decode(line: bytes) -> Event | None:
    """Parse one event line; None for anything that is not an event."""
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("type"), str)
        or not isinstance(value.get("data"), dict)
    ):
        return None
    return Event(type=value["type"], data=value["data"])


class _Subscribers:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` for every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    async def _deliver(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                await callback(event)
            except Exception:
                logger.exception("event subscriber failed on %s", event["type"])


class EventHub(_Subscribers):
    """The supervisor's side: relays events between all processes."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(
            self._handle, path=str(self.path), limit=MAX_EVENT_BYTES
        )
        os.chmod(self.path, 0o600)
        logger.info("event hub listening on %s", self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def publish(self, type_: str, data: dict[str, Any]) -> None:
        """Publish an event from the supervisor itself."""
        event = Event(type=type_, data=data)
        self._relay(encode(event), None)
        await self._deliver(event)

    def _relay(self, line: bytes, source: asyncio.StreamWriter | None) -> None:
        for writer in list(self._writers):
            if writer is source or writer.is_closing():
                continue
            writer.write(line)

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, ConnectionError):
                    break
                if not line:
                    break
                event = decode(line)
                if event is None:
                    logger.warning("event hub dropped a malformed line")
                    continue
                self._relay(encode(event), writer)
                await self._deliver(event)
        finally:
            self._writers.discard(writer)
            writer.close()


class EventClient(_Subscribers):
    """A worker's side: publishes events and hears everyone else's.

    It reconnects when the hub goes away; events published while it is
    disconnected are dropped, and the worker reloads its tables on reconnect.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.on_reconnect: Callable[[], Awaitable[None]] | None = None

    async def start(self, timeout: float = 5.0) -> None:
        self._task = asyncio.create_task(self._run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def publish(self, type_: str, data: dict[str, Any]) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            logger.warning("event %s dropped: not connected to the hub", type_)
            return
        writer.write(encode(Event(type=type_, data=data)))
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def _run(self) -> None:
        delay = 0.1
        first = True
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(
                    str(self.path), limit=MAX_EVENT_BYTES
                )
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.1
            self._writer = writer
            self._connected.set()
            if not first and self.on_reconnect is not None:
                await self.on_reconnect()
            first = False
            try:
                while line := await reader.readline():
                    event = decode(line)
                    if event is not None:
                        await self._deliver(event)
            except (ValueError, ConnectionError):
                pass
            finally:
                self._writer = None
                self._connected.clear()
                writer.close()
