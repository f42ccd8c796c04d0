"""Benchmark OneStack's http module against nginx, lighttpd and Caddy.

Every server serves the same files (1 KiB and 100 KiB) from a temporary
folder, with the same number of worker processes, on a free loopback port,
from a private config. Each is started here, measured with ``wrk`` for a
bounded time, and stopped by its PID. Access logs are off everywhere except
in the extra "onestack+log" run.

    /work/venv/bin/python bench/http/run.py [--workers 1] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from onestack.store import Store  # noqa: E402
from onestack.store.tables import vhost_names, vhosts  # noqa: E402

HOST = "bench.test"
TLS_HOST = "localhost"
FILES = {"1k.html": 1024, "100k.html": 100 * 1024}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_site(base: Path) -> Path:
    site = base / "site"
    site.mkdir()
    for name, size in FILES.items():
        text = ("<p>OneStack benchmark page</p>\n" * (size // 30 + 1))[:size]
        (site / name).write_text(text)
    return site


async def insert_vhost(data_dir: Path, site: Path, domain: str, ssl: bool) -> None:
    store = Store(f"sqlite+aiosqlite:///{data_dir / 'onestack.db'}")
    await store.migrate()
    now = datetime.now(UTC)
    async with store.engine.begin() as conn:
        result = await conn.execute(
            vhosts.insert().values(
                domain=domain,
                aliases=[],
                document_root=str(site),
                managed_root=False,
                enabled=True,
                ssl=ssl,
                redirect_to_https=False,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            vhost_names.insert().values(
                name=HOST, vhost_id=result.inserted_primary_key[0]
            )
        )
    await store.close()


def start_onestack(
    base: Path, site: Path, port: int, workers: int, access_log: bool, tls: bool = False
):
    data_dir = base / f"onestack-{port}"
    data_dir.mkdir()
    # Over TLS the vhost is "localhost", so that wrk sends it as SNI; the
    # https module creates a self-signed certificate for it.
    asyncio.run(insert_vhost(data_dir, site, TLS_HOST if tls else HOST, ssl=tls))
    served = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "workers": workers,
        "accessLog": access_log,
    }
    config: dict = {
        "server": {"adminPanel": {"host": "127.0.0.1", "port": free_port()}},
        "modules": {"https" if tls else "http": served},
    }
    if tls:
        # No ACME orders from a benchmark: self-signed is enough.
        served["acme"] = {"enabled": False}
        config["modules"]["http"] = {"enabled": False, "port": free_port()}
    else:
        config["modules"]["https"] = {"enabled": False, "port": free_port()}
    for name in ("dns", "ssh"):
        config["modules"][name] = {"enabled": False, "port": free_port()}
    config["modules"]["email"] = {
        "enabled": False,
        "smtp": {"port": free_port()},
        "imap": {"port": free_port()},
    }
    (data_dir / "config.json").write_text(json.dumps(config))
    env = dict(os.environ, PYTHONPATH=str(ROOT), ONESTACK_LOG_LEVEL="WARNING")
    return subprocess.Popen(
        [sys.executable, "-m", "onestack.cli", "serve", "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "server.log", "wb"),  # noqa: SIM115
        env=env,
    )


def start_nginx(
    base: Path,
    site: Path,
    port: int,
    workers: int,
    access_log: bool = False,
    tls: bool = False,
):
    folder = base / f"nginx-{port}"
    folder.mkdir()
    listen = f"127.0.0.1:{port} reuseport"
    tls_lines = ""
    if tls:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                f"/CN={TLS_HOST}",
                "-addext",
                f"subjectAltName=DNS:{TLS_HOST}",
                "-keyout",
                str(folder / "key.pem"),
                "-out",
                str(folder / "cert.pem"),
            ],
            check=True,
            capture_output=True,
        )
        listen += " ssl"
        tls_lines = (
            f"ssl_certificate {folder}/cert.pem; ssl_certificate_key {folder}/key.pem;"
        )
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""
worker_processes {workers};
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    access_log {f"{folder}/access.log" if access_log else "off"};
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen {listen};
        server_name {HOST} {TLS_HOST};
        {tls_lines}
        root {site};
    }}
}}
"""
    )
    return subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_lighttpd(base: Path, site: Path, port: int, workers: int):
    folder = base / f"lighttpd-{port}"
    folder.mkdir()
    conf = folder / "lighttpd.conf"
    conf.write_text(
        f"""
server.document-root = "{site}"
server.bind = "127.0.0.1"
server.port = {port}
server.max-worker = {workers if workers > 1 else 0}
server.max-keep-alive-requests = 1000000
server.errorlog = "{folder}/error.log"
server.pid-file = "{folder}/lighttpd.pid"
server.modules = ()
mimetype.assign = (".html" => "text/html; charset=utf-8")
"""
    )
    return subprocess.Popen(
        ["lighttpd", "-D", "-f", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_caddy(base: Path, site: Path, port: int, workers: int):
    folder = base / f"caddy-{port}"
    folder.mkdir()
    conf = folder / "Caddyfile"
    conf.write_text(
        f"""{{
    admin off
    auto_https off
}}
http://{HOST}:{port} {{
    bind 127.0.0.1
    root * {site}
    file_server
}}
"""
    )
    env = dict(
        os.environ,
        GOMAXPROCS=str(workers),
        HOME=str(folder),
        XDG_DATA_HOME=str(folder),
        XDG_CONFIG_HOME=str(folder),
    )
    return subprocess.Popen(
        ["caddy", "run", "--config", str(conf), "--adapter", "caddyfile"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def start_probe(body_file: Path, port: int):
    """Start the bare uvloop and httptools probe, which sends one file for every path."""
    return subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("probe.py")),
            str(port),
            str(body_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def url_args(server: str, port: int, name: str) -> list[str]:
    """Return the Host header option and URL a client uses for ``server``."""
    if server.endswith("-https"):
        return [f"https://{TLS_HOST}:{port}/{name}"]
    return ["-H", f"Host: {HOST}", f"http://127.0.0.1:{port}/{name}"]


def check_answer(server: str, port: int, name: str) -> None:
    """Make sure the server returns the file itself before it is measured."""
    output = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            # Both servers use throwaway self-signed certificates.
            "--insecure",
            *url_args(server, port, name),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    expected = f"200 {FILES[name]}"
    if output != expected:
        raise RuntimeError(
            f"port {port} /{name} returned {output!r}, expected {expected!r}"
        )


def run_wrk(
    server: str, port: int, name: str, duration: int, connections: int, threads: int
) -> float:
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            *url_args(server, port, name),
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    if "Non-2xx" in output or "Socket errors" in output:
        print(f"    wrk reported errors:\n{output}", file=sys.stderr)
    return float(match.group(1))


def files_for(server: str) -> list[str]:
    """Return the files a server is measured on: 1 KiB only for the probe and HTTPS."""
    if server.startswith("probe") or server.endswith("-https"):
        return ["1k.html"]
    return list(FILES)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes per server"
    )
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds of wrk per file"
    )
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best counts")
    parser.add_argument(
        "--servers",
        default=(
            "onestack,onestack+log,nginx,nginx+log,lighttpd,caddy,probe-1k,"
            "onestack-https,nginx-https"
        ),
        help="comma-separated servers to measure",
    )
    args = parser.parse_args()
    if args.duration > 60:
        parser.error("--duration is at most 60 s")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds is between 1 and 10")

    starters: dict[str, Callable[..., subprocess.Popen[bytes]]] = {
        "onestack": lambda b, s, p, w: start_onestack(b, s, p, w, access_log=False),
        "onestack+log": lambda b, s, p, w: start_onestack(b, s, p, w, access_log=True),
        "nginx": start_nginx,
        "onestack-https": lambda b, s, p, w: start_onestack(
            b, s, p, w, access_log=False, tls=True
        ),
        "nginx-https": lambda b, s, p, w: start_nginx(b, s, p, w, tls=True),
        "nginx+log": lambda b, s, p, w: start_nginx(b, s, p, w, access_log=True),
        "probe-1k": lambda b, s, p, w: start_probe(s / "1k.html", p),
        "lighttpd": start_lighttpd,
        "caddy": start_caddy,
    }
    servers = [name for name in args.servers.split(",") if name]
    # Every (server, file) pair is measured once per round, servers in turn,
    # and the best round counts: on a shared machine other load only ever
    # lowers a rate, so the best of several rounds is the fairest figure.
    results: dict[str, dict[str, float]] = {server: {} for server in servers}
    base = Path(tempfile.mkdtemp(prefix="onestack-bench-"))
    # nginx and lighttpd workers run as an unprivileged user and must read it.
    base.chmod(0o755)
    processes: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        site = make_site(base)
        for server in servers:
            port = free_port()
            process = starters[server](base, site, port, args.workers)
            processes[server] = (port, process)
            wait_port(port, process)
            for name in files_for(server):
                check_answer(server, port, name)
        time.sleep(1.0)
        for round_number in range(1, args.rounds + 1):
            for server, (port, _) in processes.items():
                for name in files_for(server):
                    run_wrk(
                        server, port, name, 1, args.connections, args.threads
                    )  # warm-up
                    rate = run_wrk(
                        server,
                        port,
                        name,
                        args.duration,
                        args.connections,
                        args.threads,
                    )
                    results[server][name] = max(rate, results[server].get(name, 0.0))
                    print(
                        f"round {round_number} {server:14} {name:10} {rate:12.0f} req/s",
                        flush=True,
                    )
    finally:
        for _, process in processes.values():
            stop(process)
        shutil.rmtree(base, ignore_errors=True)

    print()
    print(
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; nproc: {os.cpu_count()}; cpu: {cpu_model()}"
    )
    print(
        f"workers: {args.workers}; wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s on loopback, best of {args.rounds} rounds"
    )
    print()
    print(
        "| server | "
        + " | ".join(f"{name} req/s" for name in FILES)
        + " | "
        + " | ".join(f"{name} vs nginx" for name in FILES)
        + " |"
    )
    print("|---" * (1 + 2 * len(FILES)) + "|")
    for server, rates in results.items():
        # HTTPS rows compare with nginx over HTTPS, the others with plain nginx.
        reference = results.get("nginx-https" if server.endswith("-https") else "nginx")
        cells = [f"{rates[name]:.0f}" if name in rates else "-" for name in FILES]
        ratios = [
            f"{rates[name] / reference[name]:.2f}"
            if reference and name in rates
            else "-"
            for name in FILES
        ]
        print(f"| {server} | " + " | ".join(cells + ratios) + " |")


if __name__ == "__main__":
    main()
