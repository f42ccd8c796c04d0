"""Postfix's smtp-source against OneStack's SMTP and against a private Postfix.

Both servers reply 250 only after the message is on disk: OneStack after
the SQLite commit (WAL, synchronous=FULL, group commit), Postfix after its
cleanup daemon fsyncs the queue file. Postfix then delivers each message to
a Maildir under the temporary folder with its virtual agent; that rate is
printed too. Both runs use the same message size, session count and message
count, on loopback. Run from the repository root (as root, for Postfix):

    /work/venv/bin/python -m bench.smtp.run [--messages 3000] [--sessions 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port, run_server

SMTP_SOURCE = "/usr/sbin/smtp-source"
RUN_TIMEOUT = 900  # seconds for one smtp-source run
RECIPIENT = "user@example.com"
SENDER = "bench@far.test"


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def smtp_source(port: int, messages: int, sessions: int, size: int) -> float:
    """Run smtp-source once; returns its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(
        [
            SMTP_SOURCE,
            "-s", str(sessions),
            "-m", str(messages),
            "-l", str(size),
            "-f", SENDER,
            "-t", RECIPIENT,
            f"127.0.0.1:{port}",
        ],
        check=True,
        timeout=RUN_TIMEOUT,
    )  # fmt: skip
    return time.perf_counter() - start


def bench_onestack(args: argparse.Namespace, work: Path) -> float:
    """Return OneStack's accepted-and-stored messages per second."""
    overrides = {
        "modules": {
            "email": {
                "enabled": True,
                "workers": args.workers,
                # Nothing here is remote; a closed loopback port keeps any
                # outbound attempt on this machine.
                "smtp": {
                    "hostname": "bench.test",
                    "relayHost": f"127.0.0.1:{free_port()}",
                },
            }
        }
    }
    data_dir = work / "onestack"
    with run_server(data_dir, overrides) as server:
        port = server.port("email", "smtp.port")
        wait_port(port)
        created = server.api(
            "POST", "/api/mailboxes", json={"email": RECIPIENT, "quota": 10**12}
        )
        created.raise_for_status()
        # Workers load new mailboxes from an event; wait until one accepts mail.
        deadline = time.monotonic() + 30
        while smtp_probe(port) != 250:
            if time.monotonic() > deadline:
                raise RuntimeError("OneStack did not accept the new mailbox")
            time.sleep(0.2)
        smtp_source(port, 100, args.sessions, args.size)  # warm-up
        elapsed = smtp_source(port, args.messages, args.sessions, args.size)
    with sqlite3.connect(data_dir / "onestack.db") as db:
        (stored,) = db.execute("SELECT COUNT(*) FROM messages").fetchone()
    expected = args.messages + 100 + 1
    if stored != expected:
        raise RuntimeError(f"OneStack stored {stored} messages, expected {expected}")
    return args.messages / elapsed


def smtp_probe(port: int) -> int:
    """Return the RCPT reply code for the benchmark recipient."""
    import smtplib

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo()
        smtp.mail(SENDER)
        code, _ = smtp.rcpt(RECIPIENT)
        if code == 250:
            smtp.data(b"Subject: probe\r\n\r\nprobe\r\n")
        return code


@contextmanager
def private_postfix(folder: Path, port: int) -> Iterator[Path]:
    """Run a Postfix instance of its own (``postfix -c``); yields its Maildir."""
    config = folder / "etc"
    maildirs = folder / "maildirs"
    # Postfix daemons run as "postfix" and the virtual agent as "nobody", so
    # they must be able to enter the folders above their own.
    folder.mkdir(parents=True)
    for parent in (folder, folder.parent):
        parent.chmod(0o755)
    config.mkdir()
    maildirs.mkdir()
    shutil.chown(maildirs, "nobody", "nogroup")
    (folder / "queue").mkdir()
    (folder / "data").mkdir()
    shutil.chown(folder / "data", "postfix")
    nobody_uid = 65534
    nogroup_gid = 65534
    (config / "main.cf").write_text(
        "\n".join(
            [
                "compatibility_level = 3.6",
                f"queue_directory = {folder / 'queue'}",
                f"data_directory = {folder / 'data'}",
                "command_directory = /usr/sbin",
                "daemon_directory = /usr/lib/postfix/sbin",
                "shlib_directory = /usr/lib/postfix",
                "meta_directory = /etc/postfix",
                "mail_owner = postfix",
                "setgid_group = postdrop",
                "inet_interfaces = 127.0.0.1",
                "inet_protocols = ipv4",
                "myhostname = postfix.bench.test",
                "mydestination =",
                "mynetworks = 127.0.0.0/8",
                "alias_maps =",
                "alias_database =",
                "smtpd_banner = $myhostname ESMTP",
                "smtputf8_enable = yes",
                "virtual_mailbox_domains = example.com",
                f"virtual_mailbox_base = {maildirs}",
                # A trailing slash makes the virtual agent write a Maildir.
                "virtual_mailbox_maps = static:user/",
                f"virtual_uid_maps = static:{nobody_uid}",
                f"virtual_gid_maps = static:{nogroup_gid}",
                "virtual_minimum_uid = 100",
                # Postfix writes a log file only under maillog_file_prefixes.
                f"maillog_file_prefixes = {folder}",
                f"maillog_file = {folder / 'maillog'}",
                "",
            ]
        )
    )
    master = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = line.split()
        if line.startswith("smtp ") and len(fields) > 1 and fields[1] == "inet":
            line = f"127.0.0.1:{port} inet n - n - - smtpd"
        elif fields and not line.startswith((" ", "\t", "#")) and len(fields) >= 8:
            # No chroot: the private queue directory has no chroot files.
            fields[4] = "n"
            line = " ".join(fields)
        master.append(line)
    (config / "master.cf").write_text("\n".join(master) + "\n")

    postfix = ["postfix", "-c", str(config)]
    started = subprocess.run(
        [*postfix, "start"], capture_output=True, text=True, timeout=120
    )
    if started.returncode != 0:
        raise RuntimeError(f"postfix start failed: {started.stdout}{started.stderr}")
    try:
        wait_port(port)
        yield maildirs / "user"
    finally:
        subprocess.run(
            [*postfix, "stop"], check=False, capture_output=True, timeout=120
        )


def count_maildir(maildir: Path) -> int:
    new = maildir / "new"
    return len(os.listdir(new)) if new.exists() else 0


def bench_postfix(args: argparse.Namespace, work: Path) -> tuple[float, float]:
    """Return Postfix's accepted and delivered-to-Maildir messages per second."""
    port = free_port()
    with private_postfix(work / "postfix", port) as maildir:
        smtp_source(port, 100, args.sessions, args.size)  # warm-up
        deadline = time.monotonic() + 120
        while count_maildir(maildir) < 100 and time.monotonic() < deadline:
            time.sleep(0.1)
        start = time.perf_counter()
        elapsed = smtp_source(port, args.messages, args.sessions, args.size)
        deadline = time.monotonic() + RUN_TIMEOUT
        while count_maildir(maildir) < args.messages + 100:
            if time.monotonic() > deadline:
                raise RuntimeError("Postfix did not deliver every message in time")
            time.sleep(0.05)
        delivered = time.perf_counter() - start
    return args.messages / elapsed, args.messages / delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=3000, help="messages per run")
    parser.add_argument(
        "--sessions", type=int, default=20, help="parallel SMTP sessions"
    )
    parser.add_argument("--size", type=int, default=4096, help="message size in bytes")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="OneStack email workers",
    )
    args = parser.parse_args()
    if not os.path.exists(SMTP_SOURCE) or shutil.which("postfix") is None:
        sys.exit("smtp-source and postfix are needed (Debian package postfix)")

    with tempfile.TemporaryDirectory(prefix="onestack-bench-smtp-") as temp:
        work = Path(temp)
        onestack_rate = bench_onestack(args, work)
        postfix_accepted, postfix_delivered = bench_postfix(args, work)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
    )
    print(
        f"smtp-source: {args.messages} messages of {args.size} bytes, "
        f"{args.sessions} sessions; OneStack workers: {args.workers}"
    )
    print(f"OneStack accepted and stored: {onestack_rate:8.1f} messages/s")
    print(f"Postfix accepted (queued):     {postfix_accepted:8.1f} messages/s")
    print(f"Postfix delivered to Maildir:  {postfix_delivered:8.1f} messages/s")
    print(f"ratio OneStack / Postfix accepted: {onestack_rate / postfix_accepted:.2f}")


if __name__ == "__main__":
    main()
