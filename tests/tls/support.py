"""Peers for the TLS tests: a TLS server, a DNS server, an HTTP-01
server and a Pebble ACME server, all on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import httpx
import trustme

from onestack.tls.acme_client import read_challenge
from tests.support import free_port

HTTP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
    b"Connection: close\r\n\r\nhello\n"
)


async def answer_over_tls(
    context: ssl.SSLContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Run the handshake over memory BIOs, read one request, send one response.

    asyncio's own TLS transport closes the socket on a failed handshake
    without sending the alert that OpenSSL wrote, so this server drives the
    SSLObject itself and flushes the alert.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)

    async def receive() -> bool:
        writer.write(outgoing.read())
        await writer.drain()
        data = await reader.read(65536)
        if data:
            incoming.write(data)
        else:
            incoming.write_eof()
        return bool(data)

    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not await receive():
                    return
            except ssl.SSLError:
                writer.write(outgoing.read())  # the alert
                await writer.drain()
                return

        # Read the request first: closing a socket with unread data sends a
        # reset, which can destroy the response before the client reads it.
        request = b""
        while b"\r\n\r\n" not in request:
            try:
                request += tls.read(65536)
            except ssl.SSLWantReadError:
                if not await receive():
                    return
            except ssl.SSLError:
                return  # close_notify or EOF: the client sent no request

        tls.write(HTTP_RESPONSE)
        try:
            tls.unwrap()  # queues close_notify
        except ssl.SSLWantReadError:
            pass
        writer.write(outgoing.read())
        await writer.drain()
    finally:
        writer.close()


class LoopbackResolver(asyncio.DatagramProtocol):
    """A DNS server that answers A 127.0.0.1 for every name and no other data."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        if question.rdtype == dns.rdatatype.A:
            response.answer.append(
                dns.rrset.from_text(question.name, 60, "IN", "A", "127.0.0.1")
            )
        self.transport.sendto(response.to_wire(), addr)


async def start_resolver() -> tuple[asyncio.DatagramTransport, int]:
    port = free_port()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        LoopbackResolver, local_addr=("127.0.0.1", port)
    )
    return transport, port  # type: ignore[return-value]


async def start_challenge_responder(
    data_dir: Path, refused_hosts: frozenset[str] = frozenset()
) -> tuple[asyncio.Server, int]:
    """Serve DATA_DIR/acme/challenges over HTTP, as the http module does.

    Requests whose Host header is one of ``refused_hosts`` get 404, so the
    CA's validation of that name fails.
    """
    prefix = "/.well-known/acme-challenge/"

    async def respond(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            target = request.split(b" ", 2)[1].decode("ascii", "replace")
            host = b""
            for line in request.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"host":
                    host = value.strip().split(b":")[0]
            body = None
            if target.startswith(prefix) and host.decode() not in refused_hosts:
                body = read_challenge(data_dir, target[len(prefix) :])
            if body is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n"
                writer.write(head.encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    port = free_port()
    server = await asyncio.start_server(respond, "127.0.0.1", port)
    return server, port


@dataclass
class Pebble:
    directory_url: str
    management_url: str
    ca_bundle: Path  # trust for Pebble's own HTTPS endpoints

    def root_pem(self) -> str:
        """Return the root that signs issued chains (it changes every start)."""
        response = httpx.get(
            f"{self.management_url}/roots/0", verify=str(self.ca_bundle), timeout=10
        )
        response.raise_for_status()
        return response.text


@contextmanager
def run_pebble(folder: Path, http_port: int, dns_port: int) -> Iterator[Pebble]:
    """Start Debian's pebble on free loopback ports; stop it by its PID after."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    server_cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    server_cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))

    listen_port, management_port = free_port(), free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{listen_port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(folder / "cert.pem"),
            "privateKey": str(folder / "key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (folder / "pebble.json").write_text(json.dumps(config))
    env = dict(os.environ)
    # No random validation delays, and no nonces rejected on purpose.
    env.update({"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
    env.pop("PEBBLE_VA_ALWAYS_VALID", None)
    log = open(folder / "pebble.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            "pebble",
            "-config",
            str(folder / "pebble.json"),
            "-dnsserver",
            f"127.0.0.1:{dns_port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    pebble = Pebble(
        directory_url=f"https://127.0.0.1:{listen_port}/dir",
        management_url=f"https://127.0.0.1:{management_port}",
        ca_bundle=folder / "ca.pem",
    )
    try:
        _wait_for(pebble, process, folder / "pebble.log")
        yield pebble
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _wait_for(pebble: Pebble, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pebble exited:\n{log.read_text()}")
        try:
            httpx.get(pebble.directory_url, verify=str(pebble.ca_bundle), timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"pebble did not start:\n{log.read_text()}")
