"""Failed-login throttling shared by every protocol and every process.

Failures are counted per key in the store (``login_failures``), so an attacker
who spreads guesses over the admin API, SMTP AUTH, IMAP and SFTP, or over
several worker processes, meets one counter. Keys are built by the caller,
usually ``"ip:" + address``; a key per account can be added the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update

from onestack.store import Store
from onestack.store.tables import login_failures

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThrottlePolicy:
    """When failures slow a client down, and when they block it."""

    delay_after: int = 5  # failures before each attempt is delayed
    block_after: int = 10  # failures before attempts are rejected outright
    block_seconds: int = 60
    window_seconds: int = 900  # failures older than this are forgotten
    delay_seconds: float = 1.0


class LoginThrottle:
    """Counts failed logins per key and says how long a key must wait."""

    def __init__(self, store: Store, policy: ThrottlePolicy | None = None) -> None:
        self.store = store
        self.policy = policy or ThrottlePolicy()

    async def retry_after(self, key: str) -> int:
        """Return the seconds ``key`` is still blocked for; 0 when it may try."""
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(login_failures.c.blocked_until).where(
                        login_failures.c.key == key
                    )
                )
            ).first()
        if row is None or row.blocked_until is None:
            return 0
        remaining = (_aware(row.blocked_until) - _now()).total_seconds()
        return max(0, int(remaining + 0.999))

    async def delay_for(self, key: str) -> float:
        """Return the pause to impose before answering a failed attempt."""
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(login_failures.c.failures).where(login_failures.c.key == key)
                )
            ).first()
        if row is None or row.failures < self.policy.delay_after:
            return 0.0
        return self.policy.delay_seconds

    async def record_failure(self, key: str) -> int:
        """Count one failure; returns the failures now counted for ``key``."""
        now = _now()
        window_start = now - timedelta(seconds=self.policy.window_seconds)
        async with self.store.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(
                        login_failures.c.failures, login_failures.c.first_failure_at
                    ).where(login_failures.c.key == key)
                )
            ).first()
            if row is None or _aware(row.first_failure_at) < window_start:
                failures = 1
                await conn.execute(
                    delete(login_failures).where(login_failures.c.key == key)
                )
                await conn.execute(
                    insert(login_failures).values(
                        key=key, failures=1, first_failure_at=now, blocked_until=None
                    )
                )
            else:
                failures = row.failures + 1
                blocked_until = None
                if failures >= self.policy.block_after:
                    blocked_until = now + timedelta(seconds=self.policy.block_seconds)
                await conn.execute(
                    update(login_failures)
                    .where(login_failures.c.key == key)
                    .values(failures=failures, blocked_until=blocked_until)
                )
        if failures == self.policy.block_after:
            logger.warning(
                "login blocked for %s after %d failures (%d s)",
                key,
                failures,
                self.policy.block_seconds,
            )
        return failures

    async def record_success(self, key: str) -> None:
        async with self.store.engine.begin() as conn:
            await conn.execute(
                delete(login_failures).where(login_failures.c.key == key)
            )


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; every stored time is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
