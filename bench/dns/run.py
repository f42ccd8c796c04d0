"""Measure OneStack's dns module against NSD and Knot with dnsperf.

All three serve the same generated zone on loopback with the same number of
worker processes (threads for Knot); dnsperf runs for a bounded time against
each in turn, for several rounds. Prints queries/s, lost queries, the CPU
time each server spent per query, and OneStack's ratios to each (medians).

    /work/venv/bin/python bench/dns/run.py --workers 1 --seconds 10
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import free_port, run_server  # noqa: E402

ZONE = "bench.test"
HOSTS = 2000
# dnsperf keeps this many queries in flight.
OUTSTANDING = 1000


def zone_text() -> str:
    lines = [
        f"$ORIGIN {ZONE}.",
        "$TTL 3600",
        f"@ SOA ns1.{ZONE}. hostmaster.{ZONE}. 2024010101 3600 900 604800 300",
        "@ NS ns1",
        "@ NS ns2",
        "@ MX 10 mail",
        '@ TXT "v=spf1 mx -all"',
        "@ A 192.0.2.1",
        "ns1 A 192.0.2.53",
        "ns2 A 192.0.2.54",
        "mail A 192.0.2.25",
        "www CNAME @",
        "*.apps A 192.0.2.80",
    ]
    for index in range(HOSTS):
        lines.append(f"host{index} A 198.51.{index // 250}.{index % 250 + 1}")
    return "\n".join(lines) + "\n"


def query_file(path: Path) -> None:
    """A mix of positive answers, a CNAME, a wildcard, NODATA and NXDOMAIN."""
    rng = random.Random(1)
    lines = []
    for _ in range(20_000):
        pick = rng.random()
        if pick < 0.70:
            lines.append(f"host{rng.randrange(HOSTS)}.{ZONE} A")
        elif pick < 0.80:
            lines.append(f"{ZONE} MX")
        elif pick < 0.85:
            lines.append(f"www.{ZONE} A")
        elif pick < 0.90:
            lines.append(f"x{rng.randrange(100)}.apps.{ZONE} A")
        elif pick < 0.95:
            lines.append(f"host{rng.randrange(HOSTS)}.{ZONE} AAAA")
        else:
            lines.append(f"missing{rng.randrange(200)}.{ZONE} A")
    path.write_text("\n".join(lines) + "\n")


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = subprocess.run(
            [
                "dig",
                "@127.0.0.1",
                "-p",
                str(port),
                "+short",
                "+time=1",
                "+tries=1",
                f"host1.{ZONE}",
                "A",
            ],
            capture_output=True,
            text=True,
        )
        if result.stdout.strip():
            return
        time.sleep(0.3)
    raise RuntimeError(f"server on port {port} never answered")


def cpu_seconds(pid: int) -> float:
    """Return the user and system CPU time of a process and its children."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def dnsperf(
    port: int, pid: int, queries: Path, seconds: int, clients: int
) -> dict[str, float]:
    cpu = cpu_seconds(pid)
    output = subprocess.run(
        [
            "dnsperf",
            "-s",
            "127.0.0.1",
            "-p",
            str(port),
            "-d",
            str(queries),
            "-l",
            str(seconds),
            "-c",
            str(clients),
            "-q",
            str(OUTSTANDING),
            "-t",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    qps = re.search(r"Queries per second:\s+([\d.]+)", output)
    lost = re.search(r"Queries lost:\s+(\d+)", output)
    sent = re.search(r"Queries sent:\s+(\d+)", output)
    if not (qps and lost and sent):
        raise RuntimeError("unexpected dnsperf output:\n" + output)
    cpu = cpu_seconds(pid) - cpu
    return {
        "qps": float(qps.group(1)),
        "lost": int(lost.group(1)),
        "sent": int(sent.group(1)),
        "cpu_us": cpu / int(sent.group(1)) * 1e6,
    }


@contextmanager
def onestack(folder: Path, workers: int) -> Iterator[tuple[int, int]]:
    overrides = {"modules": {"dns": {"enabled": True, "workers": workers}}}
    with run_server(folder / "onestack", overrides) as server:
        response = server.api(
            "POST", f"/api/dns/zones/{ZONE}/import", json={"zoneFile": zone_text()}
        )
        response.raise_for_status()
        port = server.port("dns")
        wait_ready(port)
        yield port, server.process.pid


@contextmanager
def process(command: list[str], log: Path) -> Iterator[int]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def nsd(folder: Path, workers: int) -> Iterator[tuple[int, int]]:
    home = folder / "nsd"
    home.mkdir()
    (home / f"{ZONE}.zone").write_text(zone_text())
    port = free_port()
    config = home / "nsd.conf"
    config.write_text(
        f"""server:
    ip-address: 127.0.0.1@{port}
    username: ""
    chroot: ""
    zonesdir: "{home}"
    pidfile: "{home}/nsd.pid"
    database: ""
    xfrdfile: "{home}/xfrd.state"
    zonelistfile: "{home}/zone.list"
    logfile: "{home}/nsd.log"
    server-count: {workers}
    reuseport: yes
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "{ZONE}"
    zonefile: "{ZONE}.zone"
"""
    )
    with process(["nsd", "-d", "-c", str(config)], home / "stdout.log") as pid:
        wait_ready(port)
        yield port, pid


@contextmanager
def knot(folder: Path, workers: int) -> Iterator[tuple[int, int]]:
    home = folder / "knot"
    home.mkdir()
    (home / f"{ZONE}.zone").write_text(zone_text())
    port = free_port()
    config = home / "knot.conf"
    config.write_text(
        f"""server:
    listen: 127.0.0.1@{port}
    rundir: "{home}"
    udp-workers: {workers}
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{home}"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{home}"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: {ZONE}
"""
    )
    with process(["knotd", "-c", str(config)], home / "stdout.log") as pid:
        wait_ready(port)
        yield port, pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (threads for Knot)"
    )
    parser.add_argument(
        "--seconds", type=int, default=10, help="dnsperf run time per server and round"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds; each runs every server once"
    )
    parser.add_argument("--clients", type=int, default=4, help="dnsperf client sockets")
    args = parser.parse_args()

    runs: dict[str, list[dict[str, float]]] = {"onestack": [], "nsd": [], "knot": []}
    with (
        tempfile.TemporaryDirectory(prefix="onestack-bench-dns-") as tmp,
        ExitStack() as stack,
    ):
        folder = Path(tmp)
        queries = folder / "queries.txt"
        query_file(queries)
        ports = {
            "onestack": stack.enter_context(onestack(folder, args.workers)),
            "nsd": stack.enter_context(nsd(folder, args.workers)),
            "knot": stack.enter_context(knot(folder, args.workers)),
        }
        for port, pid in ports.values():
            dnsperf(port, pid, queries, 2, args.clients)  # warm-up: caches, page-ins
        # Servers take turns, so that load from other programs on the
        # machine falls on all of them alike.
        for round_number in range(1, args.rounds + 1):
            for name, (port, pid) in ports.items():
                result = dnsperf(port, pid, queries, args.seconds, args.clients)
                runs[name].append(result)
                print(
                    f"round {round_number} {name:9} {result['qps']:>9.0f} queries/s"
                    f"  lost {result['lost']:.0f} of {result['sent']:.0f}"
                    f"  {result['cpu_us']:.1f} CPU us/query"
                )

    medians = {
        name: statistics.median(r["qps"] for r in results)
        for name, results in runs.items()
    }
    cpu = {
        name: statistics.median(r["cpu_us"] for r in results)
        for name, results in runs.items()
    }
    for name, results in runs.items():
        lost = sum(r["lost"] for r in results)
        sent = sum(r["sent"] for r in results)
        print(
            f"{name:9} median {medians[name]:>9.0f} queries/s  lost {lost:.0f} of {sent:.0f}"
            f"  median {cpu[name]:.1f} CPU us/query"
        )
    for other in ("nsd", "knot"):
        print(
            f"onestack / {other}: queries/s {medians['onestack'] / medians[other]:.2f},"
            f" CPU per query {cpu['onestack'] / cpu[other]:.2f}"
        )


if __name__ == "__main__":
    main()
