"""Start a real OneStack server as a subprocess on free loopback ports."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin123"


# Ports already handed out by this process. The kernel may give a port it
# just released to the next bind, and a config whose modules share a port is
# invalid, so each port goes out once per test process.
_handed_out: set[int] = set()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """Return a port free for both TCP and UDP on 127.0.0.1, never twice."""
    while True:
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port in _handed_out:
                continue
            other = (
                socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
            )
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port


def deep_update(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


class Server:
    """A running ``onestack serve`` with its ports, data directory and log."""

    def __init__(
        self,
        data_dir: Path,
        config: dict[str, Any],
        process: subprocess.Popen[bytes],
        log_path: Path,
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self.process = process
        self.log_path = log_path
        admin = config["server"]["adminPanel"]
        self.admin_url = f"http://127.0.0.1:{admin['port']}"
        self.auth = (ADMIN_USER, ADMIN_PASSWORD)

    def port(self, module: str, key: str = "port") -> int:
        section = self.config["modules"][module]
        for part in key.split("."):
            section = section[part]
        return int(section)  # type: ignore[arg-type]

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.admin_url, auth=self.auth, timeout=30, **kwargs
        )

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.request(method, path, **kwargs)

    @property
    def basic_header(self) -> str:
        token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
        return f"Basic {token}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_module(
        self, name: str, running: bool = True, timeout: float = 20.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.api("GET", f"/api/modules/{name}").json()
            if status.get("running") == running or time.monotonic() > deadline:
                return status
            time.sleep(0.1)

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def default_test_config() -> dict[str, Any]:
    """Every module on free loopback ports, one worker each, all disabled."""
    return {
        "server": {
            "adminPanel": {
                "host": "127.0.0.1",
                "port": free_port(),
                "rateLimit": {"requestsPerMinute": 100000},
            }
        },
        "modules": {
            "http": {
                "enabled": False,
                "host": "127.0.0.1",
                "port": free_port(),
                "workers": 1,
            },
            # ACME stays off unless a test points it at its own Pebble.
            "https": {
                "enabled": False,
                "host": "127.0.0.1",
                "port": free_port(),
                "workers": 1,
                "acme": {"enabled": False},
            },
            "dns": {
                "enabled": False,
                "host": "127.0.0.1",
                "port": free_port(),
                "workers": 1,
            },
            "email": {
                "enabled": False,
                "host": "127.0.0.1",
                "workers": 1,
                # MX lookups go to a closed loopback port, so no test can
                # query the system resolver by accident.
                "smtp": {
                    "port": free_port(),
                    "dnsResolver": f"127.0.0.1:{free_port()}",
                },
                "imap": {"port": free_port()},
            },
            "ssh": {
                "enabled": False,
                "host": "127.0.0.1",
                "port": free_port(),
                "workers": 1,
            },
        },
    }


@contextmanager
def run_server(
    data_dir: Path,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> Iterator[Server]:
    """Write a config with free ports (plus ``overrides``), start the server, stop it after."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = default_test_config()
    deep_update(config, overrides or {})
    config_file = data_dir / "config.json"
    if not config_file.exists():
        config_file.write_text(json.dumps(config))
    else:
        config = deep_update(config, json.loads(config_file.read_text()))
    log_path = data_dir / "server.log"
    process_env = dict(os.environ)
    process_env["PYTHONPATH"] = (
        str(ROOT) + os.pathsep + process_env.get("PYTHONPATH", "")
    )
    process_env.update(env or {})
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "onestack.cli",
                "serve",
                "--data-dir",
                str(data_dir),
                "--log-level",
                "DEBUG",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=process_env,
        )
    server = Server(data_dir, config, process, log_path)
    try:
        if wait:
            _wait_ready(server)
        yield server
    finally:
        server.stop()


def _wait_ready(server: Server, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"server exited with {server.process.returncode}:\n{server.log()}"
            )
        try:
            response = httpx.get(
                server.admin_url + "/api/health", auth=server.auth, timeout=2
            )
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer within {timeout} s:\n{server.log()}")
