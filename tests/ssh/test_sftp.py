"""The ssh module against OpenSSH's sftp and ssh clients (and asyncssh's)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import subprocess
from pathlib import Path

import asyncssh
import pytest

from onestack.store import Store
from onestack.store import ssh as ssh_store
from tests.ssh.conftest import (
    PASSWORD,
    Site,
    make_key,
    run_sftp,
    ssh_options,
    start_site,
)
from tests.support import free_port


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def connect(
    site: Site, password: str = PASSWORD, **kwargs: object
) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(
        "127.0.0.1",
        site.port,
        username=site.username,
        password=password,
        known_hosts=None,
        client_keys=None,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_password_upload_list_rename_delete_download(site: Site) -> None:
    payload = os.urandom(300_000)
    (site.work / "page.html").write_bytes(payload)
    (site.work / "old.txt").write_text("to be deleted")

    result = await run_sftp(
        site,
        "put page.html\n"
        "put old.txt\n"
        "mkdir assets\n"
        "rename page.html assets/index.html\n"
        "ls -l assets\n"
        "rm old.txt\n"
        "get assets/index.html copy.html\n",
    )

    assert result.returncode == 0, result.stderr
    assert "index.html" in result.stdout
    assert (
        sha256(site.root / "assets" / "index.html")
        == hashlib.sha256(payload).hexdigest()
    )
    assert sha256(site.work / "copy.html") == hashlib.sha256(payload).hexdigest()
    assert not (site.root / "old.txt").exists()
    assert not (site.root / "page.html").exists()
    assert sorted(os.listdir(site.root)) == ["assets"]


async def test_cd_up_from_root_stays(site: Site) -> None:
    (site.work / "up.txt").write_text("written after cd ..")
    result = await run_sftp(site, "cd ..\npwd\nput up.txt\n")
    assert result.returncode == 0, result.stderr
    assert "Remote working directory: /\n" in result.stdout
    assert (site.root / "up.txt").read_text() == "written after cd .."
    assert not (site.root.parent / "up.txt").exists()


async def test_public_key_login(site: Site) -> None:
    key = make_key(site.work)
    public_key = key.with_suffix(".pub").read_text().strip()
    await ssh_store.update_user(site.store, "alice", {"public_keys": [public_key]})
    (site.work / "a.txt").write_text("by key")

    result = await run_sftp(site, "put a.txt\nls\n", key=key)

    assert result.returncode == 0, result.stderr
    assert (site.root / "a.txt").read_text() == "by key"


async def test_unknown_key_refused(site: Site) -> None:
    key = make_key(site.work)

    result = await run_sftp(site, "ls\n", key=key)

    assert result.returncode != 0
    assert "Permission denied" in result.stderr


async def test_new_files_and_directories_modes(site: Site) -> None:
    local = site.work / "script.sh"
    local.write_text("#!/bin/sh\n")
    local.chmod(0o777)

    result = await run_sftp(site, "put script.sh\nmkdir d\nchmod 777 d\n")

    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((site.root / "script.sh").stat().st_mode) == 0o644
    # chmod may not grant write to group or others, nor set-id bits.
    assert stat.S_IMODE((site.root / "d").stat().st_mode) == 0o755


class TestEscapes:
    """Escape attempts fail, and nothing outside the root is read or written."""

    @pytest.fixture
    def canary(self, site: Site) -> Path:
        canary = site.outside / "canary.txt"
        canary.write_text("outside the root")
        canary.chmod(0o644)
        os.utime(canary, (1_000_000_000, 1_000_000_000))
        # Links someone else left in the root, pointing out of it.
        (site.root / "leak").symlink_to(site.outside)
        (site.root / "etc-link").symlink_to("/etc")
        (site.root / "up").symlink_to("../outside/canary.txt")
        (site.work / "local.txt").write_text("upload attempt")
        return canary

    ATTEMPTS = (
        # cd .. stays in the root, so the folder beside it is not found.
        "cd ..\nls outside\n",
        "cd /..\ncd outside\n",
        "get /etc/passwd\n",
        "get ../outside/canary.txt\n",
        "get /../outside/canary.txt\n",
        "symlink / x\n",
        "symlink ../outside x\n",
        "symlink /etc/passwd x\n",
        "get x/etc/passwd\n",
        "get leak/canary.txt\n",
        "ls -l leak/canary.txt\n",
        "get etc-link/passwd\n",
        "get up\n",
        "put local.txt leak/new.txt\n",
        "put local.txt ../outside/new.txt\n",
        "put local.txt up\n",
        "mkdir ../outside/newdir\n",
        "rename leak/canary.txt stolen.txt\n",
        "put local.txt f.txt\nrename f.txt ../outside/f.txt\n",
        "put local.txt f.txt\nrename f.txt leak/f.txt\n",
        "rm leak/canary.txt\n",
        "rm up\nrm /\n",
        "chmod 777 up\n",
    )

    async def test_escape_attempts_fail(self, site: Site, canary: Path) -> None:
        outside_before = sorted(os.listdir(site.outside))
        etc_before = sorted(os.listdir("/etc"))

        for batch in self.ATTEMPTS:
            result = await run_sftp(site, batch)

            assert result.returncode != 0, batch + result.stdout
            assert "canary" not in result.stdout.replace(batch.strip(), ""), batch
            assert not (site.work / "canary.txt").exists(), batch
            assert not (site.work / "passwd").exists(), batch
            assert not (site.work / "stolen.txt").exists(), batch
            assert not (site.root / "stolen.txt").exists(), batch
            assert sorted(os.listdir(site.outside)) == outside_before, batch
            assert canary.read_text() == "outside the root", batch
            assert canary.stat().st_mtime == 1_000_000_000, batch
            assert stat.S_IMODE(canary.stat().st_mode) == 0o644, batch
        assert sorted(os.listdir("/etc")) == etc_before

    async def test_symlink_moved_where_it_leads_out(
        self, site: Site, canary: Path
    ) -> None:
        # From d/, ../local.txt is inside the root, but from the root it is not.
        result = await run_sftp(
            site, "put local.txt\nmkdir d\nsymlink ../local.txt d/l\nrename d/l l\n"
        )

        assert result.returncode != 0
        assert "rename d/l l" in result.stdout
        assert (site.root / "d" / "l").is_symlink()
        assert not (site.root / "l").is_symlink()

    async def test_listing_through_link_out_shows_nothing(
        self, site: Site, canary: Path
    ) -> None:
        # OpenSSH's ls falls back to printing the name it was given when the
        # directory cannot be opened, so only the output is checked here.
        result = await run_sftp(site, "ls -l leak/\nls -l etc-link/\n")

        assert "canary" not in result.stdout
        assert "passwd" not in result.stdout

    async def test_symlink_inside_root_works(self, site: Site, canary: Path) -> None:
        (site.work / "local.txt").write_text("inside")

        result = await run_sftp(
            site,
            "mkdir d\nput local.txt d/t.txt\nsymlink d/t.txt link\nget link got.txt\n",
        )

        assert result.returncode == 0, result.stderr
        assert (site.work / "got.txt").read_text() == "inside"
        assert os.readlink(site.root / "link") == "d/t.txt"


async def test_exec_refused(site: Site) -> None:
    command = ["sshpass", "-p", PASSWORD, "ssh", "-o", "PubkeyAuthentication=no"]
    options = ssh_options(site.port)
    options[0] = "-p"
    command += [*options, f"{site.username}@127.0.0.1", "id"]

    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "uid=" not in result.stdout


async def test_shell_and_forwarding_refused(site: Site) -> None:
    async with await connect(site) as conn:
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.open_connection("127.0.0.1", site.port)
        with pytest.raises(asyncssh.ChannelListenError):
            await conn.forward_remote_port("127.0.0.1", free_port(), "127.0.0.1", 9)
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.create_process(term_type="xterm")
        async with conn.start_sftp_client() as sftp:
            assert await sftp.listdir(".") is not None


async def test_wrong_password_refused_then_throttled(site: Site) -> None:
    result = await run_sftp(site, "ls\n", password="wrong-password")
    assert result.returncode != 0
    assert "Permission denied" in result.stderr

    # The default policy blocks an address after 10 failures in 15 minutes.
    for _ in range(9):
        with pytest.raises(asyncssh.PermissionDenied):
            await connect(site, password="wrong-password")
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(site)

    result = await run_sftp(site, "ls\n")
    assert result.returncode != 0


async def test_disabled_account_refused(site: Site) -> None:
    await ssh_store.update_user(site.store, "alice", {"enabled": False})

    with pytest.raises(asyncssh.PermissionDenied):
        await connect(site)


async def test_open_handle_limit(tmp_path: Path, store: Store, host_keys: Path) -> None:
    site = await start_site(tmp_path, store, host_keys, {"maxHandlesPerSession": 3})
    try:
        async with await connect(site) as conn, conn.start_sftp_client() as sftp:
            files = [await sftp.open(f"f{i}", "w") for i in range(3)]
            with pytest.raises(asyncssh.SFTPFailure):
                await sftp.open("f3", "w")
            await files[0].close()
            extra = await sftp.open("f3", "w")
            await extra.close()
            for handle in files[1:]:
                await handle.close()
    finally:
        await site.module.stop()


async def test_session_limit(tmp_path: Path, store: Store, host_keys: Path) -> None:
    site = await start_site(tmp_path, store, host_keys, {"maxSessionsPerUser": 1})
    try:
        first = await connect(site)
        with pytest.raises(asyncssh.PermissionDenied):
            await connect(site)
        first.close()
        await first.wait_closed()
        for _ in range(100):
            if site.module.session_count("alice") == 0:
                break
            await asyncio.sleep(0.05)
        async with await connect(site):
            pass
    finally:
        await site.module.stop()


async def test_idle_session_closed(
    tmp_path: Path, store: Store, host_keys: Path
) -> None:
    site = await start_site(tmp_path, store, host_keys, {"idleTimeout": 0.5})
    try:
        conn = await connect(site)
        async with conn.start_sftp_client() as sftp:
            await sftp.listdir(".")
        await asyncio.wait_for(conn.wait_closed(), timeout=30)
    finally:
        await site.module.stop()


async def test_deleted_account_session_closed(site: Site) -> None:
    conn = await connect(site)
    await ssh_store.delete_user(site.store, "alice")

    await site.module.on_event(
        {"type": "sshUserDeleted", "data": {"username": "alice"}}
    )

    await asyncio.wait_for(conn.wait_closed(), timeout=30)
