"""A Debian NSD, configured on loopback as a secondary, replicates a zone."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.dns.digtool import dig
from tests.support import free_port, run_server

pytestmark = pytest.mark.skipif(
    shutil.which("nsd") is None, reason="nsd is not installed"
)


def nsd_config(folder: Path, port: int, primary_port: int) -> Path:
    config = folder / "nsd.conf"
    config.write_text(
        f"""server:
    ip-address: 127.0.0.1@{port}
    username: ""
    chroot: ""
    zonesdir: "{folder}"
    pidfile: "{folder}/nsd.pid"
    database: ""
    xfrdfile: "{folder}/xfrd.state"
    xfrdir: "{folder}"
    zonelistfile: "{folder}/zone.list"
    logfile: "{folder}/nsd.log"
    server-count: 1
    verbosity: 2
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "secondary.test"
    zonefile: "secondary.test.zone"
    request-xfr: 127.0.0.1@{primary_port} NOKEY
    allow-notify: 127.0.0.1 NOKEY
"""
    )
    return config


def wait_answer(port: int, name: str, expected: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if expected in dig(port, name, "A").rdata():
            return True
        time.sleep(0.3)
    return False


@contextmanager
def running_nsd(
    folder: Path, port: int, primary_port: int
) -> Iterator[subprocess.Popen[bytes]]:
    folder.mkdir(parents=True, exist_ok=True)
    config = nsd_config(folder, port, primary_port)
    process = subprocess.Popen(
        ["nsd", "-d", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_nsd_transfers_and_follows_notify(tmp_path: Path) -> None:
    nsd_port = free_port()
    with run_server(
        tmp_path / "data", {"modules": {"dns": {"enabled": True}}}
    ) as server:
        primary_port = server.port("dns")
        response = server.api(
            "POST",
            "/api/dns/zones",
            json={
                "name": "secondary.test",
                "options": {
                    "allowTransfer": ["127.0.0.1"],
                    "alsoNotify": [f"127.0.0.1:{nsd_port}"],
                },
            },
        )
        assert response.status_code == 201
        added = server.api(
            "POST",
            "/api/dns/zones/secondary.test/records",
            json={"name": "www", "type": "A", "data": "192.0.2.1"},
        )
        assert added.status_code == 201

        nsd_dir = tmp_path / "nsd"
        with running_nsd(nsd_dir, nsd_port, primary_port) as nsd:
            assert wait_answer(nsd_port, "www.secondary.test", "192.0.2.1", 30), (
                nsd_dir / "nsd.log"
            ).read_text()
            assert nsd.poll() is None

            # The zone refreshes every hour, so only NOTIFY brings this record.
            response = server.api(
                "POST",
                "/api/dns/zones/secondary.test/records",
                json={"name": "new", "type": "A", "data": "192.0.2.2"},
            )
            assert response.status_code == 201
            assert wait_answer(nsd_port, "new.secondary.test", "192.0.2.2", 30), (
                nsd_dir / "nsd.log"
            ).read_text()

            serial = server.api("GET", "/api/dns/zones/secondary.test").json()["soa"][
                "serial"
            ]
            soa = dig(nsd_port, "secondary.test", "SOA").rdata()
            assert soa and soa[0].split()[2] == str(serial)
        assert "NOTIFY secondary.test" in server.log()
