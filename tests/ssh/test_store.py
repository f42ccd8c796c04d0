"""SFTP account queries on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from onestack.store import Store
from onestack.store import ssh as ssh_store
from tests.ssh.conftest import insert_vhost


async def test_account_lifecycle(store: Store, tmp_path: Path) -> None:
    await insert_vhost(store, 7, "example.org", tmp_path / "www")

    created = await ssh_store.create_user(
        store, "bob", "$argon2id$x", ["ssh-ed25519 AAAA"], 7, True
    )
    login = await ssh_store.get_login(store, "bob")
    updated = await ssh_store.update_user(
        store, "bob", {"enabled": False, "password_hash": None}
    )
    listed = await ssh_store.list_users(store)
    deleted = await ssh_store.delete_user(store, "bob")

    assert created.username == "bob"
    assert created.created_at.tzinfo is not None
    assert login is not None
    assert login.document_root == str(tmp_path / "www")
    assert login.user.public_keys == ["ssh-ed25519 AAAA"]
    assert updated is not None
    assert updated.enabled is False
    assert updated.password_hash is None
    assert [user.username for user in listed] == ["bob"]
    assert deleted is True
    assert await ssh_store.get_user(store, "bob") is None
    assert await ssh_store.delete_user(store, "bob") is False
    assert await ssh_store.update_user(store, "bob", {"enabled": True}) is None


async def test_duplicate_username_rejected(store: Store, tmp_path: Path) -> None:
    await insert_vhost(store, 1, "example.org", tmp_path)
    await ssh_store.create_user(store, "bob", None, ["ssh-ed25519 AAAA"], 1, True)

    with pytest.raises(IntegrityError):
        await ssh_store.create_user(store, "bob", None, ["ssh-ed25519 AAAA"], 1, True)


async def test_vhost_exists(store: Store, tmp_path: Path) -> None:
    await insert_vhost(store, 3, "example.org", tmp_path)

    assert await ssh_store.vhost_exists(store, 3) is True
    assert await ssh_store.vhost_exists(store, 4) is False
