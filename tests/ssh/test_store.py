"""SFTP account queries on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from onestack.store import Store
from onestack.store import ssh as ssh_store
from tests.ssh.conftest import insert_vhost


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def any_store(database_url: str) -> AsyncIterator[Store]:
    store = Store(database_url)
    await store.migrate()
    yield store
    await store.close()


async def test_account_lifecycle(any_store: Store, tmp_path: Path) -> None:
    await insert_vhost(any_store, 7, "example.org", tmp_path / "www")

    created = await ssh_store.create_user(
        any_store, "bob", "$argon2id$x", ["ssh-ed25519 AAAA"], 7, True
    )
    login = await ssh_store.get_login(any_store, "bob")
    updated = await ssh_store.update_user(
        any_store, "bob", {"enabled": False, "password_hash": None}
    )
    listed = await ssh_store.list_users(any_store)
    deleted = await ssh_store.delete_user(any_store, "bob")

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
    assert await ssh_store.get_user(any_store, "bob") is None
    assert await ssh_store.delete_user(any_store, "bob") is False
    assert await ssh_store.update_user(any_store, "bob", {"enabled": True}) is None


async def test_duplicate_username_rejected(any_store: Store, tmp_path: Path) -> None:
    await insert_vhost(any_store, 1, "example.org", tmp_path)
    await ssh_store.create_user(any_store, "bob", None, ["ssh-ed25519 AAAA"], 1, True)

    with pytest.raises(IntegrityError):
        await ssh_store.create_user(
            any_store, "bob", None, ["ssh-ed25519 AAAA"], 1, True
        )


async def test_vhost_exists(any_store: Store, tmp_path: Path) -> None:
    await insert_vhost(any_store, 3, "example.org", tmp_path)

    assert await ssh_store.vhost_exists(any_store, 3) is True
    assert await ssh_store.vhost_exists(any_store, 4) is False
