"""Fixtures for the ssh module: a store with one vhost, a running module, clients."""

from __future__ import annotations

import asyncio
import functools
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from onestack import passwords
from onestack.config import SshConfig
from onestack.modules import WorkerContext
from onestack.ssh.hostkeys import host_key_dir, load_host_keys
from onestack.ssh.module import SshModule
from onestack.store import Store
from onestack.store import ssh as ssh_store
from onestack.store.tables import vhosts
from tests.support import free_port

PASSWORD = "correct-horse-battery"


async def insert_vhost(store: Store, vhost_id: int, domain: str, root: Path) -> None:
    """Insert a vhost row directly, as the vhost API would store it."""
    now = datetime.now(UTC)
    async with store.engine.begin() as conn:
        await conn.execute(
            insert(vhosts).values(
                id=vhost_id,
                domain=domain,
                aliases=[],
                document_root=str(root),
                managed_root=False,
                enabled=True,
                ssl=False,
                redirect_to_https=False,
                created_at=now,
                updated_at=now,
            )
        )


@dataclass
class Site:
    """A running ssh module with one account confined to ``root``."""

    module: SshModule
    store: Store
    port: int
    root: Path
    outside: Path  # a directory beside the root that must stay untouched
    work: Path  # the client's local directory
    username: str = "alice"

    def sftp(
        self,
        batch: str,
        password: str | None = PASSWORD,
        key: Path | None = None,
        username: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run OpenSSH ``sftp -b`` with a batch of commands; returns the result."""
        batch_file = self.work / "batch"
        batch_file.write_text(batch)
        # BatchMode=no must come before -b, which sets BatchMode=yes, or
        # sftp does not ask for (and sshpass cannot give) a password.
        command = ["sftp", "-o", "BatchMode=no", "-b", str(batch_file)]
        command += ssh_options(self.port)
        if key is not None:
            command += ["-o", "PasswordAuthentication=no", "-i", str(key)]
        else:
            command = ["sshpass", "-p", password or "", *command]
            command += ["-o", "PubkeyAuthentication=no"]
        command.append(f"{username or self.username}@127.0.0.1")
        return subprocess.run(
            command, cwd=self.work, capture_output=True, text=True, timeout=60
        )


def ssh_options(port: int) -> list[str]:
    return [
        "-P",
        str(port),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=ERROR",
    ]


async def run_sftp(
    site: Site, batch: str, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run ``Site.sftp`` in a thread so the in-process module keeps serving."""
    return await asyncio.to_thread(site.sftp, batch, **kwargs)  # type: ignore[arg-type]


def make_key(directory: Path, name: str = "id_ed25519") -> Path:
    """Create an Ed25519 key pair with ssh-keygen; returns the private key path."""
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
    )
    return path


@functools.cache
def password_hash() -> str:
    """Return one Argon2id hash of PASSWORD; hashing costs tens of ms each time."""
    return passwords.hash_password(PASSWORD)


@pytest.fixture(scope="session")
def host_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose host keys were generated once for the session."""
    data_dir = tmp_path_factory.mktemp("host-keys")
    load_host_keys(data_dir)
    return host_key_dir(data_dir)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'onestack.db'}")
    await store.migrate()
    yield store
    await store.close()


async def start_site(
    tmp_path: Path,
    store: Store,
    host_keys: Path,
    config: dict[str, object] | None = None,
) -> Site:
    data_dir = tmp_path / "data"
    root = tmp_path / "www" / "site"
    outside = tmp_path / "www" / "outside"
    work = tmp_path / "client"
    for directory in (data_dir, root, outside, work):
        directory.mkdir(parents=True)
    shutil.copytree(host_keys, host_key_dir(data_dir))
    await insert_vhost(store, 1, "example.com", root)
    hashed = await asyncio.to_thread(password_hash)
    await ssh_store.create_user(store, "alice", hashed, [], 1, True)

    port = free_port()
    settings = {"enabled": True, "host": "127.0.0.1", "port": port, **(config or {})}
    module = SshModule(
        SshConfig.model_validate(settings), WorkerContext(data_dir, store, None)
    )
    await module.start()
    return Site(
        module=module, store=store, port=port, root=root, outside=outside, work=work
    )


@pytest.fixture
async def site(tmp_path: Path, store: Store, host_keys: Path) -> AsyncIterator[Site]:
    running = await start_site(tmp_path, store, host_keys)
    yield running
    await running.module.stop()
