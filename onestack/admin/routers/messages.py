"""Messages: list, read, mark, move, delete; sending; email statistics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from onestack.admin.app import AdminState, get_state
from onestack.admin.errors import MODULE_NOT_RUNNING, ApiError, invalid, not_found
from onestack.admin.params import MAX_ROW_ID, RowIdPath
from onestack.admin.routers.mailboxes import find_mailbox, iso
from onestack.mail.compose import ComposeError, compose
from onestack.mail.dsn import build_bounce
from onestack.mail.parse import parse_message, preview
from onestack.store import mail as mailstore
from onestack.store.mail import Delivery, QueuedRecipient, StoredMessage

router = APIRouter(prefix="/api", tags=["messages"])

MAX_PAGE = 500
PREVIEW_BYTES = 16 * 1024
MAX_RECIPIENTS = 100


def summary_json(message: StoredMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "messageId": message.message_id,
        "from": message.from_header,
        "to": message.to_header,
        "subject": message.subject,
        "date": iso(message.date or message.internal_date),
        "read": message.seen,
        "flagged": message.flagged,
        "folder": message.folder,
        "size": message.size,
    }


async def find_message(state: AdminState, message_id: int) -> StoredMessage:
    message = await mailstore.get_message(state.store, message_id, with_raw=False)
    if message is None:
        raise not_found("message", message_id)
    return message


@router.get("/mailboxes/{email}/messages")
async def list_messages(
    email: str,
    folder: str | None = Query(None, max_length=255),
    unreadOnly: bool = Query(False),  # noqa: N803 - the API's query name
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    offset: int = Query(0, ge=0, le=MAX_ROW_ID),
    state: AdminState = Depends(get_state),
) -> list[dict[str, Any]]:
    account = await find_mailbox(state, email)
    if (
        folder is not None
        and await mailstore.get_folder(state.store, account.id, folder) is None
    ):
        raise invalid("folder", f"mailbox {account.email} has no folder {folder!r}")
    messages = await mailstore.list_messages(
        state.store,
        account.id,
        folder=folder,
        unread_only=unreadOnly,
        limit=limit,
        offset=offset,
        preview_bytes=PREVIEW_BYTES,
    )
    answer = []
    for message in messages:
        item = summary_json(message)
        item["body"] = preview(message.raw)
        answer.append(item)
    return answer


@router.get("/messages/{message_id}")
async def get_message(
    message_id: RowIdPath, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    message = await mailstore.get_message(state.store, message_id)
    if message is None:
        raise not_found("message", message_id)
    parsed = parse_message(message.raw)
    answer = summary_json(message)
    answer.update(
        {
            "mailboxId": message.mailbox_id,
            "cc": parsed.headers.get("Cc", ""),
            "body": parsed.body,
            "html": parsed.html,
            "headers": parsed.headers,
            "attachments": [
                {"name": a.name, "type": a.type, "size": a.size}
                for a in parsed.attachments
            ],
        }
    )
    return answer


class ReadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    read: bool


class MoveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folder: str = Field(min_length=1, max_length=255)


@router.put("/messages/{message_id}/read")
async def mark_read(
    message_id: RowIdPath, body: ReadBody, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    await find_message(state, message_id)
    try:
        message = await mailstore.set_flags(
            state.store, message_id, seen=body.read, publish=state.hub.publish
        )
    except mailstore.MessageNotFound:
        raise not_found("message", message_id) from None
    return {"success": True, "message": summary_json(message)}


@router.put("/messages/{message_id}/move")
async def move_message(
    message_id: RowIdPath, body: MoveBody, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    await find_message(state, message_id)
    try:
        message = await mailstore.move(
            state.store, message_id, body.folder, publish=state.hub.publish
        )
    except mailstore.FolderNotFound:
        raise invalid("folder", f"no folder named {body.folder!r}") from None
    except mailstore.MessageNotFound:
        raise not_found("message", message_id) from None
    return {"success": True, "message": summary_json(message)}


@router.delete("/messages/{message_id}")
async def delete_message(
    message_id: RowIdPath, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    await find_message(state, message_id)
    try:
        await mailstore.delete_message(
            state.store, message_id, publish=state.hub.publish
        )
    except mailstore.MessageNotFound:
        raise not_found("message", message_id) from None
    return {"success": True}


class SendBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sender: str = Field(alias="from", max_length=254)
    to: str | list[str]
    subject: str = Field("", max_length=998)
    body: str = Field("", max_length=10 * 1024 * 1024)
    html: str | None = Field(None, max_length=10 * 1024 * 1024)
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)


def _recipients(to: str | list[str]) -> list[str]:
    items = to.split(",") if isinstance(to, str) else to
    recipients = [item.strip() for item in items if item.strip()]
    if len(recipients) > MAX_RECIPIENTS:
        raise invalid("to", f"at most {MAX_RECIPIENTS} recipients are allowed")
    return list(dict.fromkeys(recipients))


@router.post("/send-email")
async def send_email(
    body: SendBody, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    if not state.supervisor.runners["email"].running:
        raise ApiError(
            503,
            MODULE_NOT_RUNNING,
            "the email module is not running; start it with POST /api/modules/email/start",
            {"module": "email"},
        )
    hostname = state.config.modules.email.smtp.hostname
    try:
        composed = compose(
            sender=body.sender,
            recipients=_recipients(body.to),
            subject=body.subject,
            body=body.body,
            html=body.html,
            headers=body.headers,
            hostname=hostname,
        )
    except ComposeError as exc:
        raise invalid(exc.field, exc.message) from None

    sender_account = await mailstore.get_account(state.store, composed.mail_from)
    local_domains = {
        a.email.rpartition("@")[2] for a in await mailstore.list_accounts(state.store)
    }
    deliveries: list[Delivery] = []
    queued: list[QueuedRecipient] = []
    delivered: list[str] = []
    bounced: list[dict[str, str]] = []
    size = len(composed.raw)
    for rcpt in composed.recipients:
        account = await mailstore.get_account(state.store, rcpt)
        if account is not None and account.enabled:
            used = (await mailstore.account_stats(state.store, [account.id]))[
                account.id
            ]
            if used.quota_used + size > account.quota:
                bounced.append(
                    {"to": rcpt, "status": "5.2.2", "reason": "mailbox full"}
                )
                continue
            deliveries.append(
                Delivery(account.id, composed.raw, composed.mail_from, [rcpt])
            )
            delivered.append(rcpt)
        elif account is not None:
            bounced.append(
                {"to": rcpt, "status": "5.2.1", "reason": "mailbox disabled"}
            )
        elif rcpt.rpartition("@")[2] in local_domains:
            bounced.append({"to": rcpt, "status": "5.1.1", "reason": "no such mailbox"})
        else:
            queued.append(QueuedRecipient(composed.mail_from, rcpt, composed.raw))

    if sender_account is not None:
        deliveries.append(
            Delivery(
                sender_account.id,
                composed.raw,
                composed.mail_from,
                composed.recipients,
                folder="sent",
                flags=frozenset({"\\Seen"}),
            )
        )
        # Local recipients that do not exist get a bounce, as from SMTP.
        for failure in bounced:
            deliveries.append(_bounce(sender_account, composed.raw, failure, hostname))

    stored = await mailstore.store_together(
        state.store, deliveries, queued, {"messagesSent": len(delivered)}
    )
    addresses = {sender_account.id: sender_account.email} if sender_account else {}
    for delivery, message in zip(deliveries, stored, strict=True):
        addresses.setdefault(
            message.mailbox_id, delivery.rcpt_to[0] if delivery.rcpt_to else ""
        )
    await mailstore.publish_received(state.hub.publish, stored, addresses)
    if queued:
        await state.hub.publish("outboundQueued", {"count": len(queued)})
    await state.hub.publish(
        "emailSent", {"from": composed.mail_from, "to": ", ".join(composed.recipients)}
    )

    sent_copy = next((m for m in stored if m.folder == "sent"), None)
    first = sent_copy or (stored[0] if stored else None)
    return {
        "success": True,
        "message": {
            "id": first.id if first else None,
            "messageId": composed.message_id,
        },
        "delivered": delivered,
        "queued": [item.rcpt_to for item in queued],
        "bounced": bounced,
    }


def _bounce(
    sender: mailstore.Account, raw: bytes, failure: dict[str, str], hostname: str
) -> Delivery:
    now = mailstore.now()
    report = build_bounce(
        reporting_mta=hostname,
        mail_from=sender.email,
        recipient=failure["to"],
        status=failure["status"],
        diagnostic=f"550 {failure['status']} {failure['reason']}",
        original=raw,
        arrival=now,
        last_attempt=now,
    )
    return Delivery(sender.id, report, "", [sender.email])


@router.get("/email/stats")
async def email_stats(state: AdminState = Depends(get_state)) -> dict[str, Any]:
    counters = await mailstore.read_counters(state.store)
    totals = await mailstore.storage_totals(state.store)
    return {
        "messagesSent": counters["messagesSent"],
        "messagesReceived": counters["messagesReceived"],
        "smtpConnections": counters["smtpConnections"],
        "imapConnections": counters["imapConnections"],
        "mailboxCount": totals["mailboxCount"],
        "totalMessages": totals["totalMessages"],
        "totalStorage": totals["totalStorage"],
        "activeMailboxes": totals["activeMailboxes"],
        "queuedMessages": await mailstore.queue_length(state.store),
    }
