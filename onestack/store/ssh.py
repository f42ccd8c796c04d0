"""Queries for SFTP accounts (``ssh_users``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row

from onestack.store import Store
from onestack.store.tables import ssh_users, vhosts


@dataclass(frozen=True)
class SshUser:
    """An SFTP account as stored."""

    id: int
    username: str
    password_hash: str | None
    public_keys: list[str]
    vhost_id: int
    enabled: bool
    created_at: datetime


@dataclass(frozen=True)
class SshLogin:
    """An account with what a login needs: its vhost's document root."""

    user: SshUser
    document_root: str


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; every stored time is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _user(row: Row[Any]) -> SshUser:
    return SshUser(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        public_keys=list(row.public_keys or []),
        vhost_id=row.vhost_id,
        enabled=bool(row.enabled),
        created_at=_aware(row.created_at),
    )


async def list_users(store: Store) -> list[SshUser]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(ssh_users).order_by(ssh_users.c.username))
        return [_user(row) for row in rows]


async def get_user(store: Store, username: str) -> SshUser | None:
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                select(ssh_users).where(ssh_users.c.username == username)
            )
        ).first()
    return None if row is None else _user(row)


async def get_login(store: Store, username: str) -> SshLogin | None:
    """Return the account and its document root, or None for an unknown name."""
    query = (
        select(ssh_users, vhosts.c.document_root)
        .join(vhosts, vhosts.c.id == ssh_users.c.vhost_id)
        .where(ssh_users.c.username == username)
    )
    async with store.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    return SshLogin(user=_user(row), document_root=row.document_root)


async def vhost_exists(store: Store, vhost_id: int) -> bool:
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(select(vhosts.c.id).where(vhosts.c.id == vhost_id))
        ).first()
    return row is not None


async def create_user(
    store: Store,
    username: str,
    password_hash: str | None,
    public_keys: list[str],
    vhost_id: int,
    enabled: bool,
) -> SshUser:
    """Insert an account; raises IntegrityError when the username is taken."""
    async with store.engine.begin() as conn:
        await conn.execute(
            insert(ssh_users).values(
                username=username,
                password_hash=password_hash,
                public_keys=public_keys,
                vhost_id=vhost_id,
                enabled=enabled,
                created_at=datetime.now(UTC),
            )
        )
        row = (
            await conn.execute(
                select(ssh_users).where(ssh_users.c.username == username)
            )
        ).one()
    return _user(row)


async def update_user(
    store: Store, username: str, changes: dict[str, Any]
) -> SshUser | None:
    """Set the given columns; returns the updated account, or None if absent."""
    async with store.engine.begin() as conn:
        if changes:
            await conn.execute(
                update(ssh_users)
                .where(ssh_users.c.username == username)
                .values(**changes)
            )
        row = (
            await conn.execute(
                select(ssh_users).where(ssh_users.c.username == username)
            )
        ).first()
    return None if row is None else _user(row)


async def delete_user(store: Store, username: str) -> bool:
    async with store.engine.begin() as conn:
        result = await conn.execute(
            delete(ssh_users).where(ssh_users.c.username == username)
        )
    return result.rowcount > 0
