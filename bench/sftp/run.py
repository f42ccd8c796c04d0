"""Time OpenSSH's sftp client against OneStack and against OpenSSH's sftp-server.

Both servers run on free loopback ports with public-key logins and their
default cipher negotiation. Each workload is one ``sftp -b`` run, so the
times include the SSH handshake. Each server runs the workloads ``--rounds``
times and the median is reported. Run from the repository root:

    /work/venv/bin/python -m bench.sftp.run [--big-mb 100] [--small-files 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import Server, default_test_config, free_port

ROOT = Path(__file__).resolve().parents[2]

SMALL_FILE_BYTES = 4096
RUN_TIMEOUT = 600  # seconds per sftp run


def client_options(port: int, user: str, key: Path) -> list[str]:
    return [
        "-P",
        str(port),
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "PasswordAuthentication=no",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        f"{user}@127.0.0.1",
    ]


def timed_batch(options: list[str], batch: str, work: Path) -> float:
    """Run one ``sftp -b`` batch; returns its wall time in seconds."""
    batch_file = work / "batch"
    batch_file.write_text(batch)
    start = time.perf_counter()
    result = subprocess.run(
        ["sftp", "-b", str(batch_file), *options],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"sftp failed:\n{batch}\n{result.stderr}")
    return elapsed


def negotiated_cipher(options: list[str], work: Path) -> str:
    """Return the cipher the client and server agree on, from ``sftp -v``."""
    batch_file = work / "batch"
    batch_file.write_text("pwd\n")
    verbose = [
        option if option != "LogLevel=ERROR" else "LogLevel=DEBUG1"
        for option in options
    ]
    result = subprocess.run(
        ["sftp", "-b", str(batch_file), *verbose],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    for line in result.stderr.splitlines():
        if "kex: client->server cipher:" in line:
            return line.split("cipher:", 1)[1].split()[0]
    return "unknown"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_workloads(
    options: list[str], remote_dir: str, work: Path, big: Path, small: Path
) -> dict[str, float]:
    """Upload and download the big file and the small files; check the copies."""
    down = work / "down"
    shutil.rmtree(down, ignore_errors=True)
    (down / "small").mkdir(parents=True)
    times = {
        "login and pwd only": timed_batch(options, "pwd\n", work),
        "upload 1 big file": timed_batch(
            options, f"cd {remote_dir}\nput {big} big.bin\n", work
        ),
        "download 1 big file": timed_batch(
            options, f"cd {remote_dir}\nget big.bin {down}/big.bin\n", work
        ),
        "upload small files": timed_batch(
            options,
            f"cd {remote_dir}\n-rm small/*\n-rmdir small\nmkdir small\ncd small\nlcd {small}\nput *\n",
            work,
        ),
        "download small files": timed_batch(
            options, f"cd {remote_dir}/small\nlcd {down}/small\nget *\n", work
        ),
    }
    if sha256(down / "big.bin") != sha256(big):
        raise RuntimeError("downloaded big file differs from the original")
    copies = sorted(p.name for p in (down / "small").iterdir())
    if copies != sorted(p.name for p in small.iterdir()):
        raise RuntimeError("downloaded small files differ from the originals")
    times["cipher"] = negotiated_cipher(options, work)  # type: ignore[assignment]
    return times


@contextmanager
def openssh_server(base: Path, public_key: Path) -> Iterator[int]:
    """Run a private sshd (never the system one) on a free port; stop it by PID."""
    directory = base / "sshd"
    directory.mkdir()
    host_key = directory / "ssh_host_ed25519_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True
    )
    authorized = directory / "authorized_keys"
    shutil.copy(public_key, authorized)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"PidFile {directory / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        # internal-sftp is sftp-server's code run inside sshd. The external
        # binary is started through the user's login shell, and root's shell
        # start-up (rc files) added about 1 s to every session on the
        # machine measured, which is not SFTP's cost.
        "Subsystem sftp internal-sftp\n"
    )
    # sshd refuses to start as root without its privilege separation directory.
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    process = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(config), "-p", str(port)],
        stderr=(directory / "sshd.log").open("wb"),
    )
    try:
        _wait_port(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} within 30 s")


def make_inputs(base: Path, big_mb: int, small_files: int) -> tuple[Path, Path]:
    big = base / "big.bin"
    with big.open("wb") as handle:
        for _ in range(big_mb):
            handle.write(os.urandom(1 << 20))
    small = base / "small"
    small.mkdir()
    for index in range(small_files):
        (small / f"f{index:04d}.html").write_bytes(os.urandom(SMALL_FILE_BYTES))
    return big, small


def median_of_rounds(
    rounds: int, options: list[str], remote_dir: str, work: Path, big: Path, small: Path
) -> dict[str, float]:
    results = [
        run_workloads(options, remote_dir, work, big, small) for _ in range(rounds)
    ]
    merged: dict[str, float] = {}
    for workload in results[0]:
        if workload == "cipher":
            merged[workload] = results[0][workload]
        else:
            merged[workload] = statistics.median(result[workload] for result in results)
    return merged


@contextmanager
def onestack_server(data_dir: Path) -> Iterator[Server]:
    """Run ``onestack serve`` at INFO level with only the ssh module enabled.

    tests.support.run_server logs at DEBUG, where asyncssh writes lines for
    every SFTP packet, which would be measured too.
    """
    data_dir.mkdir(parents=True)
    config = default_test_config()
    config["modules"]["ssh"]["enabled"] = True
    (data_dir / "config.json").write_text(json.dumps(config))
    log_path = data_dir / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "onestack.cli",
                "serve",
                "--data-dir",
                str(data_dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    server = Server(data_dir, config, process, log_path)
    try:
        _wait_port(server.port("ssh"), process)
        yield server
    finally:
        server.stop()


def onestack_workloads(
    base: Path, key: Path, big: Path, small: Path, rounds: int
) -> dict[str, float]:
    root = base / "onestack-root"
    root.mkdir()
    with onestack_server(base / "onestack-data") as server:
        vhost = server.api(
            "POST",
            "/api/vhosts",
            json={"domain": "bench.example", "documentRoot": str(root)},
        )
        vhost.raise_for_status()
        public_key = key.with_suffix(".pub").read_text().strip()
        response = server.api(
            "POST",
            "/api/ssh/users",
            json={
                "username": "bench",
                "vhostId": vhost.json()["id"],
                "publicKeys": [public_key],
            },
        )
        response.raise_for_status()
        work = base / "work-onestack"
        work.mkdir()
        options = client_options(server.port("ssh"), "bench", key)
        return median_of_rounds(rounds, options, "/", work, big, small)


def openssh_workloads(
    base: Path, key: Path, big: Path, small: Path, rounds: int
) -> dict[str, float]:
    remote = base / "openssh-root"
    remote.mkdir()
    with openssh_server(base, key.with_suffix(".pub")) as port:
        user = os.environ.get("USER") or "root"
        work = base / "work-openssh"
        work.mkdir()
        options = client_options(port, user, key)
        return median_of_rounds(rounds, options, str(remote), work, big, small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--big-mb", type=int, default=100, help="size of the big file in MiB"
    )
    parser.add_argument(
        "--small-files", type=int, default=1000, help="number of 4 KiB files"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs per server; median kept"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="onestack-bench-sftp-") as name:
        base = Path(name)
        key = base / "id_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
        )
        big, small = make_inputs(base, args.big_mb, args.small_files)
        openssh = openssh_workloads(base, key, big, small, args.rounds)
        onestack = onestack_workloads(base, key, big, small, args.rounds)

    print(
        f"# SFTP, {platform.node()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}"
    )
    print(f"# big file {args.big_mb} MiB, {args.small_files} small files of 4 KiB")
    print(f"{'workload':24} {'OneStack s':>11} {'OpenSSH s':>10} {'ratio':>6}")
    cipher_onestack = onestack.pop("cipher")
    cipher_openssh = openssh.pop("cipher")
    print(f"# cipher: OneStack {cipher_onestack}, OpenSSH {cipher_openssh}")
    for workload, seconds in onestack.items():
        reference = openssh[workload]
        print(
            f"{workload:24} {seconds:11.2f} {reference:10.2f} {seconds / reference:6.2f}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
