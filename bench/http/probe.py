"""The floor of this design: uvloop and httptools sending one file from memory.

No routing, no headers beyond Content-Length, no stats or logs. The
benchmark runs it beside OneStack to show how much of OneStack's time is
its own request path and how much is the event loop and the kernel.

    python bench/http/probe.py PORT FILE
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httptools
import uvloop


class ProbeConnection(asyncio.Protocol):
    def __init__(self, response: bytes) -> None:
        self.response = response
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        self.transport.write(self.response)


async def serve(port: int, body: bytes) -> None:
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
        % (
            len(body),
            body,
        )
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ProbeConnection(response), "127.0.0.1", port, reuse_port=True
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), Path(sys.argv[2]).read_bytes()))
