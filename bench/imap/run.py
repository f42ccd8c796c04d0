"""Time IMAP fetches and searches on OneStack and on a private Dovecot.

Both servers hold the same 1,000 messages in one INBOX: OneStack in its
database (``onestack serve`` with the email module, one worker), Dovecot in a
Maildir under a temporary folder, run with ``dovecot -F -c CONFIG`` and a
passwd-file userdb on a free port. One client connection per server sends each
command and reads the whole response. Every workload runs once to warm caches
and then ``--rounds`` times, the two servers taking turns, and the best time
of each is reported. Run from the
repository root:

    /work/venv/bin/python -m bench.imap.run [--messages 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

from onestack import passwords
from onestack.mail.imap.mailstore import MailStore
from onestack.store import Store
from onestack.store import mail as mailstore
from tests.support import free_port, run_server

USER = "bench@example.com"
PASSWORD = "bench password 1"
WORKLOADS = (
    (
        "fetch headers",
        b"UID FETCH 1:* (UID FLAGS RFC822.SIZE "
        b"BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])",
    ),
    ("fetch envelope+structure", b"UID FETCH 1:* (UID ENVELOPE BODYSTRUCTURE)"),
    ("fetch full bodies", b"UID FETCH 1:* (BODY.PEEK[])"),
    ("search unseen", b"UID SEARCH UNSEEN"),
    ("search from", b'UID SEARCH FROM "sender42"'),
    ("search subject", b'UID SEARCH SUBJECT "report 7"'),
    ("search body", b'UID SEARCH BODY "pelican"'),
)
_TAGGED = re.compile(rb"(?:^|\r\n)(T\d+) (OK|NO|BAD)[^\r\n]*\r\n$")


def make_messages(count: int) -> list[bytes]:
    """Plain and multipart messages of 1 to 30 KB, the same for every run."""
    rng = random.Random(1994)
    words = (
        "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo".split()
    )
    messages = []
    for number in range(count):
        message = EmailMessage()
        message["From"] = f"Sender {number % 100} <sender{number % 100}@example.org>"
        message["To"] = USER
        message["Subject"] = f"Weekly report {number % 50} number {number}"
        message["Date"] = (
            f"Mon, {1 + number % 28} Feb 2022 10:{number % 60:02d}:00 +0000"
        )
        message["Message-ID"] = f"<bench{number}@example.org>"
        lines = [
            " ".join(rng.choices(words, k=12)) for _ in range(rng.randint(10, 120))
        ]
        if number % 97 == 0:
            lines.append("a pelican was seen near the harbour")
        message.set_content("\n".join(lines) + "\n")
        if number % 5 == 0:
            message.add_attachment(
                rng.randbytes(rng.randint(2000, 20000)),
                maintype="application",
                subtype="octet-stream",
                filename=f"data{number}.bin",
            )
        messages.append(
            message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        )
    return messages


class Client:
    """A minimal IMAP client that reads whole command responses."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.counter = 0
        self.sock.recv(4096)  # the greeting

    def command(self, line: bytes) -> bytes:
        self.counter += 1
        tag = b"T%d" % self.counter
        self.sock.sendall(tag + b" " + line + b"\r\n")
        chunks: list[bytes] = []
        tail = b""
        while True:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            chunks.append(data)
            tail = (tail + data)[-4096:]
            match = _TAGGED.search(tail)
            if match and match.group(1) == tag:
                answer = b"".join(chunks)
                if match.group(2) != b"OK":
                    raise RuntimeError(f"{line!r} failed: {answer[-300:]!r}")
                return answer

    def close(self) -> None:
        self.sock.close()


def measure(ports: dict[str, int], rounds: int) -> dict[str, dict[str, float]]:
    """Return the best time of each workload on each server, in seconds.

    The servers take turns within each workload, so that load from other
    programs on the machine falls on both alike.
    """
    clients = {}
    for name, port in ports.items():
        client = Client(port)
        client.command(f'LOGIN {USER} "{PASSWORD}"'.encode())
        client.command(b"SELECT INBOX")
        clients[name] = client
    results: dict[str, dict[str, float]] = {name: {} for name in ports}
    for workload, command in WORKLOADS:
        for client in clients.values():
            client.command(command)  # warm-up: indexes and caches
        for _ in range(rounds):
            for name, client in clients.items():
                start = time.perf_counter()
                client.command(command)
                elapsed = time.perf_counter() - start
                best = results[name].get(workload, elapsed)
                results[name][workload] = min(best, elapsed)
    for client in clients.values():
        client.command(b"LOGOUT")
        client.close()
    return results


@contextmanager
def onestack(work: Path, messages: list[bytes]) -> Iterator[int]:
    overrides = {"modules": {"email": {"enabled": True, "workers": 1}}}
    with run_server(work / "onestack", overrides) as server:
        if not server.wait_module("email")["running"]:
            raise RuntimeError(server.log()[-3000:])

        async def fill() -> None:
            store = Store(f"sqlite+aiosqlite:///{server.data_dir / 'onestack.db'}")
            account, _ = await mailstore.create_account(
                store,
                USER,
                name="Bench",
                password_hash=passwords.hash_password(PASSWORD),
                quota=10**10,
                enabled=True,
            )
            mail = MailStore(store)
            inbox = await mail.get_folder(account.id, "INBOX")
            assert inbox is not None
            for raw in messages:
                await mail.append(account.id, inbox.id, raw, [], None)
            await store.close()

        asyncio.run(fill())
        yield server.port("email", "imap.port")


DOVECOT_CONFIG = """
base_dir = {work}/run
state_dir = {work}/state
log_path = {work}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{work}/home/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {work}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {work}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service imap {{
  process_limit = 16
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@contextmanager
def dovecot(work: Path, messages: list[bytes]) -> Iterator[int]:
    work.mkdir(parents=True)
    os.chmod(work, 0o755)
    port = free_port()
    nobody = 65534
    home = work / "home" / USER
    home.mkdir(parents=True)
    os.chmod(
        work.parent, 0o755
    )  # Dovecot's mail processes run as the unprivileged user 65534
    maildir = mailbox.Maildir(home / "Maildir", create=True)
    for raw in messages:
        maildir.add(raw)
    subprocess.run(
        ["chown", "-R", f"{nobody}:{nobody}", str(work / "home")], check=True
    )
    (work / "passwd").write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{nobody}:{nobody}::{home}::\n"
    )
    config = work / "dovecot.conf"
    config.write_text(DOVECOT_CONFIG.format(work=work, port=port))
    process = subprocess.Popen(["dovecot", "-F", "-c", str(config)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = work / "dovecot.log"
                    message = (
                        log.read_text() if log.exists() else "dovecot failed to start"
                    )
                    raise RuntimeError(message) from None
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages in INBOX")
    parser.add_argument(
        "--rounds", type=int, default=15, help="timed runs per workload"
    )
    args = parser.parse_args()
    if shutil.which("dovecot") is None:
        print(
            "dovecot is not installed (Debian package dovecot-imapd)", file=sys.stderr
        )
        return 1

    messages = make_messages(args.messages)
    total = sum(len(raw) for raw in messages)
    with tempfile.TemporaryDirectory(prefix="bench-imap-") as temporary:
        work = Path(temporary)
        with (
            onestack(work, messages) as ours,
            dovecot(work / "dovecot", messages) as theirs,
        ):
            results = measure({"OneStack": ours, "Dovecot": theirs}, args.rounds)

    print(
        f"{args.messages} messages, {total / 1e6:.1f} MB; "
        f"{platform.machine()}, {os.cpu_count()} CPUs; best of {args.rounds} runs"
    )
    print(f"{'workload':28} {'OneStack ms':>12} {'Dovecot ms':>12} {'ratio':>7}")
    for name, _ in WORKLOADS:
        ours_time = results["OneStack"][name]
        theirs_time = results["Dovecot"][name]
        print(
            f"{name:28} {ours_time * 1000:12.1f} {theirs_time * 1000:12.1f} "
            f"{ours_time / theirs_time:7.2f}"
        )
    print("ratio = OneStack time / Dovecot time (below 1: OneStack faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
