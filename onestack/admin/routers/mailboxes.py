"""Mailboxes: create, list, change and delete local mail accounts."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from onestack import passwords
from onestack.admin.app import AdminState, get_state
from onestack.admin.errors import conflict, invalid, not_found
from onestack.mail.compose import ComposeError, check_address
from onestack.store import mail as mailstore

router = APIRouter(prefix="/api", tags=["mailboxes"])

DEFAULT_QUOTA = 100 * 1024 * 1024
MIN_PASSWORD = 8


class MailboxCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254)
    name: str = Field("", max_length=200)
    password: str | None = Field(None, min_length=MIN_PASSWORD, max_length=1024)
    quota: int = Field(DEFAULT_QUOTA, ge=1, le=2**62)
    enabled: bool = True


class MailboxUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    password: str | None = Field(None, min_length=MIN_PASSWORD, max_length=1024)
    quota: int | None = Field(None, ge=1, le=2**62)
    enabled: bool | None = None


def iso(value: datetime | None) -> str | None:
    """Format a UTC time as the reference does: 2025-10-13T10:30:00.000Z."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mailbox_json(
    account: mailstore.Account, stats: mailstore.AccountStats
) -> dict[str, Any]:
    return {
        "id": account.id,
        "email": account.email,
        "name": account.name,
        "quota": account.quota,
        "quotaUsed": stats.quota_used,
        "created": iso(account.created_at),
        "enabled": account.enabled,
        "messageCount": stats.message_count,
        "unreadCount": stats.unread_count,
    }


def valid_address(address: str) -> str:
    try:
        return check_address("email", address)
    except ComposeError as exc:
        raise invalid(exc.field, exc.message) from None


async def find_mailbox(state: AdminState, address: str) -> mailstore.Account:
    account = await mailstore.get_account(state.store, address)
    if account is None:
        raise not_found("mailbox", address)
    return account


async def stats_of(
    state: AdminState, account: mailstore.Account
) -> mailstore.AccountStats:
    return (await mailstore.account_stats(state.store, [account.id]))[account.id]


@router.get("/mailboxes")
async def list_mailboxes(
    state: AdminState = Depends(get_state),
) -> list[dict[str, Any]]:
    accounts = await mailstore.list_accounts(state.store)
    stats = await mailstore.account_stats(state.store, [a.id for a in accounts])
    return [mailbox_json(account, stats[account.id]) for account in accounts]


@router.post("/mailboxes", status_code=201)
async def create_mailbox(
    body: MailboxCreate, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    address = valid_address(body.email)
    password = body.password or passwords.generate_password()
    password_hash = await asyncio.to_thread(passwords.hash_password, password)

    try:
        account, revived = await mailstore.create_account(
            state.store,
            address,
            name=body.name,
            password_hash=password_hash,
            quota=body.quota,
            enabled=body.enabled,
        )
    except mailstore.MailStoreError:
        raise conflict("email", f"mailbox {address} already exists") from None

    await state.hub.publish(
        "mailboxCreated", {"id": account.id, "email": account.email}
    )
    answer = mailbox_json(account, await stats_of(state, account))
    # The password is shown here once; only its Argon2id hash is stored.
    answer["password"] = password
    if revived:
        answer["restoredMessages"] = answer["messageCount"]
    return answer


@router.get("/mailboxes/{email}")
async def get_mailbox(
    email: str, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    account = await find_mailbox(state, email)
    return mailbox_json(account, await stats_of(state, account))


@router.put("/mailboxes/{email}")
async def update_mailbox(
    email: str, body: MailboxUpdate, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    account = await find_mailbox(state, email)
    password_hash = None
    if body.password is not None:
        password_hash = await asyncio.to_thread(passwords.hash_password, body.password)

    account = await mailstore.update_account(
        state.store,
        account.email,
        name=body.name,
        password_hash=password_hash,
        quota=body.quota,
        enabled=body.enabled,
    )
    mailbox = mailbox_json(account, await stats_of(state, account))
    await state.hub.publish(
        "mailboxUpdated", {"id": account.id, "email": account.email}
    )
    return {"success": True, "mailbox": mailbox}


@router.delete("/mailboxes/{email}")
async def delete_mailbox(
    email: str,
    deleteMessages: bool = Query(False),  # noqa: N803 - the API's query name
    state: AdminState = Depends(get_state),
) -> dict[str, Any]:
    account = await find_mailbox(state, email)
    kept = await mailstore.delete_account(
        state.store, account.email, delete_messages=deleteMessages
    )
    await state.hub.publish(
        "mailboxDeleted", {"id": account.id, "email": account.email}
    )
    answer: dict[str, Any] = {"success": True, "messagesDeleted": deleteMessages}
    if not deleteMessages:
        answer["keptMessages"] = kept
        answer["note"] = (
            f"{kept} messages were kept; creating {account.email} again restores them. "
            "Delete with deleteMessages=true to remove them."
        )
    return answer


@router.get("/mailboxes/{email}/stats")
async def mailbox_stats(
    email: str, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    account = await find_mailbox(state, email)
    stats = await stats_of(state, account)
    percentage = round(stats.quota_used * 100 / account.quota) if account.quota else 0
    return {
        "email": account.email,
        "messageCount": stats.message_count,
        "unreadCount": stats.unread_count,
        "quotaUsed": stats.quota_used,
        "quota": account.quota,
        "quotaPercentage": percentage,
        "enabled": account.enabled,
        "created": iso(account.created_at),
    }
