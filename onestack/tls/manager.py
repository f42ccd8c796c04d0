"""Background ACME issuance and renewal for vhosts with ``ssl: true``.

``CertificateManager`` runs in the supervisor process. On each pass it
orders a certificate for every enabled TLS vhost whose ACME certificate is
missing, no longer covers its names, or expires within ``renewBeforeDays``.
A vhost with a current uploaded certificate is skipped: its owner chose that
certificate. A failed order is logged and retried with exponential backoff.
After each new certificate it publishes ``certificateIssued`` so the https
workers reload.

NOTE: every supervisor runs its own manager, and challenge files stay on the
node that ordered. Several nodes sharing PostgreSQL would order twice, and
HTTP-01 passes only when the CA reaches the ordering node. Backoff state is
in memory, so a restart retries at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from onestack.config import AcmeConfig
from onestack.events import Event
from onestack.store import Store
from onestack.store import certificates as certificate_store
from onestack.store.certificates import StoredCertificate, TlsVhost
from onestack.tls.acme_client import AcmeError, AcmeIssuer
from onestack.tls.certificates import (
    SOURCE_ACME,
    SOURCE_UPLOADED,
    chain_info,
    utc_now,
)
from onestack.tls.selfsigned import IssuedCertificate

logger = logging.getLogger(__name__)

CERTIFICATE_ISSUED = "certificateIssued"
CHECK_INTERVAL = 3600.0  # seconds between passes over all vhosts
RETRY_BASE = 60.0  # seconds before the first retry of a failed order
RETRY_MAX = 6 * 3600.0  # the backoff stops doubling here

# A new or changed vhost may need a certificate, and deleting an uploaded
# certificate leaves its vhost to ACME again.
WAKE_EVENTS = frozenset(
    {"vhostCreated", "vhostUpdated", "certificateDeleted", "configUpdated"}
)

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]


class Issuer(Protocol):
    def issue(self, names: list[str]) -> IssuedCertificate: ...


@dataclass
class RetryState:
    """Failed orders of one vhost for one set of names."""

    names: tuple[str, ...]
    failures: int
    next_attempt: float  # time.monotonic() seconds
    last_error: str


def format_time(moment: datetime) -> str:
    """Format a UTC time as the API does: 2026-01-31T10:30:00.000Z."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def certificate_event(certificate: StoredCertificate) -> dict[str, Any]:
    """Return the ``certificateIssued`` event data for a stored certificate."""
    return {
        "vhostId": certificate.vhost_id,
        "source": certificate.source,
        "names": certificate.names,
        "notAfter": format_time(certificate.not_after),
    }


class CertificateManager:
    """Obtains and renews ACME certificates in the background."""

    def __init__(
        self,
        store: Store,
        data_dir: Path,
        acme_config: Callable[[], AcmeConfig],
        publish: Publish,
        check_interval: float = CHECK_INTERVAL,
        retry_base: float = RETRY_BASE,
        retry_max: float = RETRY_MAX,
        issuer_factory: Callable[[AcmeConfig, Path], Issuer] = AcmeIssuer,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        """Set up the manager; ``active`` tells whether passes order anything.

        ``acme_config`` and ``active`` are read at every pass, so a config
        change takes effect without a restart.
        """
        self.store = store
        self.data_dir = data_dir
        self.acme_config = acme_config
        self.publish = publish
        self.check_interval = check_interval
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.issuer_factory = issuer_factory
        self.active = active
        self.retries: dict[int, RetryState] = {}
        self._order_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._announced = False

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="certificate-manager")

    async def stop(self) -> None:
        """Stop the background task; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Run a pass now, for example after a vhost changed."""
        self._wake.set()

    async def on_event(self, event: Event) -> None:
        """Run a pass when a vhost's names or ssl flag may have changed."""
        if event["type"] in WAKE_EVENTS:
            self.wake()

    async def _run(self) -> None:
        while True:
            try:
                await self.check_all()
            except Exception:
                logger.exception("certificate renewal pass failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_delay())

    def _next_delay(self) -> float:
        delay = self.check_interval
        now = time.monotonic()
        for state in self.retries.values():
            delay = min(delay, max(state.next_attempt - now, 0.0))
        return delay

    async def check_all(self) -> int:
        """Order certificates for every vhost that needs one; return how many were issued."""
        config = self.acme_config()
        if not (self.active() and config.enabled):
            self._announced = False
            return 0
        if not self._announced:
            logger.info("ACME certificates come from %s", config.directoryUrl)
            self._announced = True
        vhosts = await certificate_store.tls_vhosts(self.store)
        stored = await certificate_store.vhost_certificates(
            self.store, [vhost.id for vhost in vhosts]
        )
        renew_before = timedelta(days=config.renewBeforeDays)
        issued = 0
        for vhost in vhosts:
            certificates = [c for c in stored if c.vhost_id == vhost.id]
            if not self._needs_order(vhost, certificates, renew_before):
                continue
            state = self.retries.get(vhost.id)
            if state and state.names == tuple(vhost.names):
                if state.next_attempt > time.monotonic():
                    continue
            try:
                await self.renew(vhost)
                issued += 1
            except AcmeError:
                pass  # renew() logged it and scheduled the retry
        return issued

    def _needs_order(
        self,
        vhost: TlsVhost,
        certificates: list[StoredCertificate],
        renew_before: timedelta,
    ) -> bool:
        now = utc_now()
        uploaded = [c for c in certificates if c.source == SOURCE_UPLOADED]
        if certificate_store.best_certificate(uploaded, vhost.names, now) is not None:
            return False
        acme = [c for c in certificates if c.source == SOURCE_ACME]
        current = certificate_store.best_certificate(acme, vhost.names, now)
        return current is None or current.not_after - renew_before <= now

    async def renew(self, vhost: TlsVhost) -> StoredCertificate:
        """Order a certificate for a vhost now, store it and announce it.

        Raises AcmeError when the order fails, after logging it and
        scheduling the next attempt.
        """
        names = vhost.names
        async with self._order_lock:
            try:
                issuer = self.issuer_factory(self.acme_config(), self.data_dir)
                issued = await asyncio.to_thread(issuer.issue, names)
            except AcmeError as exc:
                self._record_failure(vhost, str(exc))
                raise
            except Exception as exc:
                logger.exception("ACME order for %s failed unexpectedly", vhost.domain)
                self._record_failure(vhost, "internal error")
                raise AcmeError(
                    "internal error; the server log has the details"
                ) from exc

            info = chain_info(issued.cert_pem)
            certificate_id = await certificate_store.add_certificate(
                self.store,
                vhost.id,
                SOURCE_ACME,
                info.names,
                info.not_before,
                info.not_after,
                issued.cert_pem,
                issued.key_pem,
                replace=True,
            )
        self.retries.pop(vhost.id, None)
        stored = await certificate_store.vhost_certificates(self.store, [vhost.id])
        certificate = next(c for c in stored if c.id == certificate_id)
        logger.info(
            "ACME certificate for %s stored, valid until %s",
            ", ".join(names),
            format_time(certificate.not_after),
        )
        await self.publish(CERTIFICATE_ISSUED, certificate_event(certificate))
        return certificate

    def _record_failure(self, vhost: TlsVhost, error: str) -> None:
        previous = self.retries.get(vhost.id)
        names = tuple(vhost.names)
        failures = previous.failures + 1 if previous and previous.names == names else 1
        delay = min(self.retry_base * 2 ** (failures - 1), self.retry_max)
        self.retries[vhost.id] = RetryState(
            names=names,
            failures=failures,
            next_attempt=time.monotonic() + delay,
            last_error=error,
        )
        logger.warning(
            "ACME order for %s failed (attempt %d), retrying in %.0f s: %s",
            ", ".join(names),
            failures,
            delay,
            error,
        )
