"""Streaming a reply whose body includes ranges of large files.

Over plain TCP the file bytes go with ``os.sendfile`` straight to the
socket, because uvloop's loop has no ``sendfile``. The transfer waits until
the transport's buffer is empty, then sends on the socket's descriptor. It
waits for writability with ``add_writer`` on a duplicate of that descriptor,
because uvloop rejects ``add_writer`` on a descriptor its transport owns. Over TLS the file is
read in chunks and written through the transport, honouring flow control.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Protocol

from onestack.web.responses import FileSegment

logger = logging.getLogger(__name__)

SENDFILE_CHUNK = 1024 * 1024
READ_CHUNK = 256 * 1024
# Bytes read and written in one pass of the loop over TLS before yielding.
TLS_PASS_BYTES = 1024 * 1024


class Connection(Protocol):
    """The connection a transfer writes to."""

    transport: asyncio.Transport
    writing_paused: bool

    def touch(self) -> None: ...


class Transfer:
    """Writes ``segments`` in order, then calls ``done(ok)`` once."""

    def __init__(
        self,
        connection: Connection,
        segments: list[bytes | FileSegment],
        use_sendfile: bool,
        done: Callable[[bool], None],
    ) -> None:
        self.connection = connection
        self.transport = connection.transport
        self.loop = asyncio.get_running_loop()
        self.segments = segments
        self.index = 0
        self.use_sendfile = use_sendfile
        self.done = done
        self.file_fd = -1
        self.offset = 0
        self.remaining = 0
        self.writer_fd = -1
        self.waiting_drain = False
        self.finished = False

    def start(self) -> None:
        self._advance()

    def resume(self) -> None:
        """Continue after the transport's buffer drained (resume_writing)."""
        if self.waiting_drain:
            self.waiting_drain = False
            self._advance()

    def abort(self) -> None:
        """Stop without calling ``done``: the connection is gone."""
        self.finished = True
        self._release()

    def _advance(self) -> None:
        try:
            while not self.finished:
                if self.file_fd >= 0:
                    if not self._send_file_part():
                        return
                    continue
                if self.index >= len(self.segments):
                    self._finish(True)
                    return
                segment = self.segments[self.index]
                self.index += 1
                if isinstance(segment, bytes):
                    self.transport.write(segment)
                    continue
                self.file_fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
                self.offset = segment.offset
                self.remaining = segment.length
        except OSError as error:
            logger.info("file transfer stopped: %s", error)
            self._finish(False)

    def _send_file_part(self) -> bool:
        """Send some of the current file range; False while waiting for the socket."""
        if self.remaining == 0:
            os.close(self.file_fd)
            self.file_fd = -1
            return True
        if self.use_sendfile:
            return self._sendfile()
        return self._read_and_write()

    def _wait_for_drain(self) -> None:
        # resume_writing on the connection calls resume() once the buffer is
        # empty: low water 0 makes it fire only then.
        self.waiting_drain = True
        self.transport.set_write_buffer_limits(high=0, low=0)

    def _sendfile(self) -> bool:
        if self.transport.get_write_buffer_size() > 0:
            self._wait_for_drain()
            return False
        self.transport.set_write_buffer_limits()
        socket_fd = self.transport.get_extra_info("socket").fileno()
        while self.remaining > 0:
            try:
                sent = os.sendfile(
                    socket_fd,
                    self.file_fd,
                    self.offset,
                    min(self.remaining, SENDFILE_CHUNK),
                )
            except BlockingIOError:
                if self.writer_fd < 0:
                    self.writer_fd = os.dup(socket_fd)
                self.loop.add_writer(self.writer_fd, self._on_writable)
                return False
            if sent == 0:
                raise OSError("file is shorter than when it was opened")
            self.offset += sent
            self.remaining -= sent
            self.connection.touch()
        return True

    def _on_writable(self) -> None:
        self.loop.remove_writer(self.writer_fd)
        self._advance()

    def _read_and_write(self) -> bool:
        written = 0
        while self.remaining > 0:
            if self.connection.writing_paused:
                self.waiting_drain = True
                return False
            if written >= TLS_PASS_BYTES:
                self.loop.call_soon(self._advance)
                return False
            # NOTE: this read runs on the event loop. It is quick from the page
            # cache, but a cold read from a slow disk stalls the worker meanwhile.
            chunk = os.pread(self.file_fd, min(self.remaining, READ_CHUNK), self.offset)
            if not chunk:
                raise OSError("file is shorter than when it was opened")
            self.transport.write(chunk)
            self.offset += len(chunk)
            self.remaining -= len(chunk)
            written += len(chunk)
            self.connection.touch()
        return True

    def _finish(self, ok: bool) -> None:
        if self.finished:
            return
        self.finished = True
        self._release()
        self.done(ok)

    def _release(self) -> None:
        if self.writer_fd >= 0:
            self.loop.remove_writer(self.writer_fd)
            os.close(self.writer_fd)
            self.writer_fd = -1
        if self.file_fd >= 0:
            os.close(self.file_fd)
            self.file_fd = -1
