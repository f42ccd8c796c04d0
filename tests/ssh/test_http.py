"""A file uploaded over SFTP is served by the http module at once, byte-exact."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import httpx

from tests.ssh.conftest import ssh_options
from tests.support import run_server


def test_uploaded_file_served_byte_exact(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    work = tmp_path / "client"
    work.mkdir()
    big = os.urandom(3_000_000)
    (work / "video.bin").write_bytes(big)
    (work / "index.html").write_text("<h1>first</h1>\n")
    overrides = {"modules": {"ssh": {"enabled": True}, "http": {"enabled": True}}}

    with run_server(tmp_path / "data", overrides) as server:
        vhost = server.api(
            "POST",
            "/api/vhosts",
            json={"domain": "upload.example", "documentRoot": str(root)},
        )
        assert vhost.status_code == 201, vhost.text
        user = server.api(
            "POST",
            "/api/ssh/users",
            json={"username": "site", "vhostId": vhost.json()["id"]},
        )
        assert user.status_code == 201, user.text
        password = user.json()["password"]

        def sftp(batch: str) -> None:
            (work / "batch").write_text(batch)
            command = [
                "sshpass",
                "-p",
                password,
                "sftp",
                "-o",
                "BatchMode=no",
                "-b",
                "batch",
            ]
            command += ssh_options(server.port("ssh"))
            command += ["-o", "PubkeyAuthentication=no", "site@127.0.0.1"]
            result = subprocess.run(
                command, cwd=work, capture_output=True, text=True, timeout=60
            )
            assert result.returncode == 0, result.stderr

        def fetch(path: str) -> httpx.Response:
            url = f"http://127.0.0.1:{server.port('http')}{path}"
            return httpx.get(url, headers={"Host": "upload.example"}, timeout=30)

        sftp("put video.bin\nput index.html\n")
        video = fetch("/video.bin")
        first_page = fetch("/")

        (work / "index.html").write_text("<h1>second, longer</h1>\n")
        sftp("put index.html\n")
        second_page = fetch("/index.html")

    assert video.status_code == 200
    assert hashlib.sha256(video.content).hexdigest() == hashlib.sha256(big).hexdigest()
    assert first_page.text == "<h1>first</h1>\n"
    assert second_page.text == "<h1>second, longer</h1>\n"
