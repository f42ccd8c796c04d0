"""HTTP Basic authentication for every admin route, with login throttling."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time

from fastapi import Request

from onestack import passwords
from onestack.admin.errors import (
    AUTH_CHALLENGE,
    AUTH_FAILED,
    AUTH_REQUIRED,
    RATE_LIMITED,
    ApiError,
)
from onestack.config import AdminPanelConfig
from onestack.throttle import LoginThrottle

logger = logging.getLogger(__name__)

# Argon2id costs tens of milliseconds per check, too much for every request of
# a busy panel. A successful check is remembered for this long, keyed by an
# HMAC of the credentials under a per-process random key.
VERIFIED_CACHE_SECONDS = 300.0


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """Return (username, password) from an ``Authorization: Basic`` value."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    return username, password


class AdminAuthenticator:
    """Checks admin credentials against the config's username and hash."""

    def __init__(self, throttle: LoginThrottle) -> None:
        self.throttle = throttle
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, float] = {}

    def _fingerprint(
        self, admin: AdminPanelConfig, username: str, password: str
    ) -> bytes:
        material = f"{admin.password}\0{username}\0{password}".encode()
        return hmac.new(self._key, material, hashlib.sha256).digest()

    async def check(
        self, admin: AdminPanelConfig, username: str, password: str
    ) -> bool:
        fingerprint = self._fingerprint(admin, username, password)
        now = time.monotonic()
        expires = self._verified.get(fingerprint)
        if expires is not None and expires > now:
            return True
        name_ok = hmac.compare_digest(username.encode(), admin.username.encode())
        # Verify even when the name is wrong, so timing does not reveal it.
        password_ok = await asyncio.to_thread(
            passwords.verify_password, admin.password, password
        )
        if name_ok and password_ok:
            if len(self._verified) > 1000:
                self._verified.clear()
            self._verified[fingerprint] = now + VERIFIED_CACHE_SECONDS
            return True
        return False

    async def authenticate(
        self, admin: AdminPanelConfig, client: str, header: str | None
    ) -> str:
        """Return the username, or raise ApiError 401 or 429."""
        key = f"ip:{client}"
        retry_after = await self.throttle.retry_after(key)
        if retry_after:
            raise ApiError(
                429,
                RATE_LIMITED,
                f"too many failed logins from {client}; retry in {retry_after} s",
                {"retryAfter": retry_after},
                headers={"Retry-After": str(retry_after)},
            )
        credentials = parse_basic(header)
        if credentials is None:
            raise ApiError(
                401,
                AUTH_REQUIRED,
                "authentication required: send HTTP Basic credentials",
                headers=AUTH_CHALLENGE,
            )
        username, password = credentials
        if await self.check(admin, username, password):
            return username
        delay = await self.throttle.delay_for(key)
        failures = await self.throttle.record_failure(key)
        logger.warning(
            "admin login failed for user %r from %s (%d failures)",
            username,
            client,
            failures,
        )
        if delay:
            await asyncio.sleep(delay)
        raise ApiError(
            401, AUTH_FAILED, "invalid username or password", headers=AUTH_CHALLENGE
        )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
