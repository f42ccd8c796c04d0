"""SFTP accounts: each one confined to the document root of one vhost."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from onestack import passwords
from onestack.admin.app import AdminState, get_state
from onestack.admin.errors import conflict, invalid, not_found
from onestack.admin.params import RowIdField
from onestack.ssh.accounts import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    InvalidPublicKeyError,
    is_valid_username,
    normalize_public_keys,
)
from onestack.store import ssh as ssh_store
from onestack.store.ssh import SshUser

router = APIRouter(prefix="/api", tags=["ssh"])

MAX_PUBLIC_KEYS = 100


class SshUserCreate(BaseModel):
    """An SFTP account to create."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(description="Login name: [a-z_][a-z0-9_.-]{0,31}")
    password: str | None = Field(
        None,
        min_length=PASSWORD_MIN_LENGTH,
        max_length=PASSWORD_MAX_LENGTH,
        description="Omitted with no publicKeys: a random one is generated and "
        "returned once, in this answer",
    )
    publicKeys: list[str] = Field(
        default_factory=list,
        max_length=MAX_PUBLIC_KEYS,
        description="OpenSSH public key lines (ssh-ed25519 AAAA... comment)",
    )
    vhostId: RowIdField = Field(
        description="The vhost whose document root the account sees as /"
    )
    enabled: bool = True


class SshUserUpdate(BaseModel):
    """A partial update; ``password: null`` removes password login."""

    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(
        None, min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    )
    publicKeys: list[str] | None = Field(None, max_length=MAX_PUBLIC_KEYS)
    vhostId: RowIdField | None = None
    enabled: bool | None = None


def user_json(user: SshUser) -> dict[str, Any]:
    """Return an account as the API shows it, without its password hash."""
    return {
        "username": user.username,
        "vhostId": user.vhost_id,
        "enabled": user.enabled,
        "publicKeys": user.public_keys,
        "hasPassword": user.password_hash is not None,
        "createdAt": user.created_at.isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        ),
    }


def _public_keys(keys: list[str]) -> list[str]:
    try:
        return normalize_public_keys(keys)
    except InvalidPublicKeyError as exc:
        raise invalid("publicKeys", str(exc)) from None


async def _check_vhost(state: AdminState, vhost_id: int) -> None:
    if not await ssh_store.vhost_exists(state.store, vhost_id):
        raise invalid("vhostId", f"vhost {vhost_id} not found")


async def _find_user(state: AdminState, username: str) -> SshUser:
    user = await ssh_store.get_user(state.store, username)
    if user is None:
        raise not_found("SSH user", username)
    return user


@router.get("/ssh/users")
async def list_users(state: AdminState = Depends(get_state)) -> list[dict[str, Any]]:
    return [user_json(user) for user in await ssh_store.list_users(state.store)]


@router.get("/ssh/users/{username}")
async def get_user(
    username: str, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    return user_json(await _find_user(state, username))


@router.post("/ssh/users", status_code=201)
async def create_user(
    body: SshUserCreate, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    if not is_valid_username(body.username):
        raise invalid(
            "username",
            "must be 1 to 32 characters: a lowercase letter or _, then lowercase "
            "letters, digits, _, . or -",
        )
    public_keys = _public_keys(body.publicKeys)
    await _check_vhost(state, body.vhostId)

    generated = None
    password = body.password
    if password is None and not public_keys:
        generated = password = passwords.generate_password()
    password_hash = (
        None
        if password is None
        else await asyncio.to_thread(passwords.hash_password, password)
    )

    if await ssh_store.get_user(state.store, body.username) is not None:
        raise conflict("username", f"SSH user {body.username} already exists")
    try:
        user = await ssh_store.create_user(
            state.store,
            body.username,
            password_hash,
            public_keys,
            body.vhostId,
            body.enabled,
        )
    except IntegrityError:
        # Created by a concurrent request between the check and the insert.
        raise conflict("username", f"SSH user {body.username} already exists") from None

    await state.hub.publish("sshUserCreated", user_json(user))
    answer = user_json(user)
    if generated is not None:
        answer["password"] = generated
    return answer


@router.put("/ssh/users/{username}")
async def update_user(
    username: str, body: SshUserUpdate, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    current = await _find_user(state, username)
    given = body.model_fields_set
    changes: dict[str, Any] = {}

    if "publicKeys" in given:
        changes["public_keys"] = _public_keys(body.publicKeys or [])
    if "vhostId" in given:
        if body.vhostId is None:
            raise invalid("vhostId", "must be a vhost id")
        await _check_vhost(state, body.vhostId)
        changes["vhost_id"] = body.vhostId
    if "enabled" in given:
        if body.enabled is None:
            raise invalid("enabled", "must be true or false")
        changes["enabled"] = body.enabled
    if "password" in given:
        changes["password_hash"] = (
            None
            if body.password is None
            else await asyncio.to_thread(passwords.hash_password, body.password)
        )

    keys_after = changes.get("public_keys", current.public_keys)
    hash_after = changes.get("password_hash", current.password_hash)
    if not keys_after and hash_after is None:
        raise invalid(
            "password", "an account needs a password or at least one public key"
        )

    user = await ssh_store.update_user(state.store, username, changes)
    if user is None:
        raise not_found("SSH user", username)
    await state.hub.publish("sshUserUpdated", user_json(user))
    return {"success": True, "user": user_json(user)}


@router.delete("/ssh/users/{username}")
async def delete_user(
    username: str, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    if not await ssh_store.delete_user(state.store, username):
        raise not_found("SSH user", username)
    await state.hub.publish("sshUserDeleted", {"username": username})
    return {"success": True}
