"""Per-client request rate limit, request body size limit and NUL check (pure ASGI)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onestack.admin.errors import INVALID_REQUEST, RATE_LIMITED, envelope

logger = logging.getLogger(__name__)


class TokenBucket:
    """``rate`` requests per minute per client, with bursts up to that many."""

    def __init__(self, per_minute: Callable[[], int]) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str) -> float:
        """Take one token; returns 0 when allowed, else seconds until the next."""
        capacity = float(self.per_minute())
        refill = capacity / 60.0
        now = time.monotonic()
        tokens, stamp = self._buckets.get(client, (capacity, now))
        tokens = min(capacity, tokens + (now - stamp) * refill)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > 10_000:
            # Forget full buckets: they behave the same as absent ones.
            self._buckets = {k: v for k, v in self._buckets.items() if v[0] < capacity}
        return (1.0 - tokens) / refill


class RequestLimits:
    """Answer 429 past the per-client rate and 413 past the body size limit."""

    def __init__(
        self, app: ASGIApp, per_minute: Callable[[], int], max_body: Callable[[], int]
    ) -> None:
        self.app = app
        self.bucket = TokenBucket(per_minute)
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        wait = self.bucket.take(client)
        if wait > 0:
            retry_after = max(1, int(wait + 0.999))
            logger.warning("request rate limit hit by %s", client)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1013})
                return
            response = envelope(
                429,
                RATE_LIMITED,
                f"too many requests from {client}; retry in {retry_after} s",
                {"retryAfter": retry_after},
                headers={"Retry-After": str(retry_after)},
            )
            await response(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        limit = self.max_body()
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return

        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # FastAPI turns any error while reading the body into its own 400
            # answer; once the body is known to be too large, that answer is
            # dropped and the 413 below goes out instead.
            if not too_large:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if too_large:
            await self._too_large(scope, receive, send, limit)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, limit: int
    ) -> None:
        response = envelope(
            413,
            INVALID_REQUEST,
            f"request body is larger than the limit of {limit} bytes "
            "(server.adminPanel.maxBodyBytes)",
            {"maxBodyBytes": limit},
        )
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


# A JSON escape \u0000 that is not itself the tail of an escaped backslash.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class RejectNulCharacters:
    """Reject with 400 a request with a NUL character in its path, query or JSON.

    PostgreSQL text columns cannot store U+0000, so such a value would fail
    deep in a route with a database error. No API field needs one: DNS data
    writes a zero byte as ``\\000``. A JSON body is read whole before the
    route runs, as the route reads it whole anyway, and RequestLimits (the
    outer middleware) bounds its size.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\0" in scope["path"] or b"%00" in scope["query_string"]:
            await self._reject(scope, receive, send, "the URL")
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip()
        if content_type.lower() != b"application/json":
            await self.app(scope, receive, send)
            return

        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = b"".join(m.get("body", b"") for m in messages)
        if _JSON_NUL.search(body):
            await self._reject(scope, receive, send, "the JSON body")
            return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(
        self, scope: Scope, receive: Receive, send: Send, where: str
    ) -> None:
        logger.warning("request with a NUL character in %s rejected", where)
        response = envelope(
            400,
            INVALID_REQUEST,
            f"{where} contains a NUL character (U+0000), which no field accepts",
            {"field": "(body)" if where == "the JSON body" else "(url)"},
        )
        await response(scope, receive, send)
