"""TLS server contexts: a vhost's certificate chosen by SNI, and mail's.

``CertificateSet`` keeps one ``ssl.SSLContext`` per vhost with ``ssl: true``
and one server context whose SNI callback switches each handshake to the
context of the requested name. A handshake for a name that no vhost serves, or
without SNI, fails, so a client never gets one vhost's certificate for another
name.

NOTE: OpenSSL queues an unrecognized_name alert for such a handshake, but
asyncio's TLS transport (and uvloop's) closes the socket without sending it,
so the client sees the connection closed. A server that drives
``SSLObject`` over memory BIOs sends the alert by writing the outgoing BIO
after the failed ``do_handshake()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
import tempfile
from datetime import timedelta
from pathlib import Path

from onestack.store import Store
from onestack.store import certificates as certificate_store
from onestack.store.certificates import StoredCertificate, TlsVhost
from onestack.tls.certificates import (
    SOURCE_SELF_SIGNED,
    CertificateError,
    chain_info,
    load_chain,
    utc_now,
)
from onestack.tls.selfsigned import IssuedCertificate, create_self_signed

logger = logging.getLogger(__name__)

# A self-signed certificate this close to its expiry is replaced on load.
SELF_SIGNED_RENEW_BEFORE = timedelta(days=7)
HOSTNAME_PATTERN = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9])?$")


def tls_dir(data_dir: Path) -> Path:
    return data_dir / "tls"


def _configure(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE


def make_context(
    data_dir: Path,
    cert_pem: str,
    key_pem: str,
    context: ssl.SSLContext | None = None,
) -> ssl.SSLContext:
    """Build a TLS 1.2/1.3 server context serving one chain and key.

    With ``context``, load the chain into that context instead, so listeners
    already using it present the new certificate from the next handshake.
    ``load_cert_chain`` reads only files, so the PEM texts pass through a
    private temporary folder under ``DATA_DIR/tls`` that is removed at once.
    """
    if context is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _configure(context)
    base = tls_dir(data_dir)
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base, prefix=".load.") as folder:
        cert_file = Path(folder) / "chain.pem"
        key_file = Path(folder) / "key.pem"
        cert_file.write_text(cert_pem, encoding="ascii")
        key_fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(key_fd, "w", encoding="ascii") as handle:
            handle.write(key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


class CertificateSet:
    """The certificates of every enabled vhost with ``ssl: true``, by hostname."""

    def __init__(self, store: Store, data_dir: Path) -> None:
        self.store = store
        self.data_dir = data_dir
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._serving: dict[int, StoredCertificate] = {}
        # Keyed by the chain's PEM text, not the row id, because SQLite may
        # give a deleted row's id to the next certificate.
        self._context_cache: dict[str, ssl.SSLContext] = {}
        self._server_context: ssl.SSLContext | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the vhosts and pick each one's best certificate.

        A vhost without a usable certificate gets a new self-signed one. Runs
        again after any change; listeners using ``server_context()`` see the
        new certificates from their next handshake.
        """
        async with self._lock:
            vhosts = await certificate_store.tls_vhosts(self.store)
            stored = await certificate_store.vhost_certificates(
                self.store, [vhost.id for vhost in vhosts]
            )
            now = utc_now()
            contexts: dict[str, ssl.SSLContext] = {}
            serving: dict[int, StoredCertificate] = {}
            cache: dict[str, ssl.SSLContext] = {}

            for vhost in vhosts:
                candidates = [c for c in stored if c.vhost_id == vhost.id]
                best = certificate_store.best_certificate(candidates, vhost.names, now)
                if best is None or _needs_new_self_signed(best, now):
                    best = await self._add_self_signed(vhost)
                context = self._context_cache.get(best.cert_pem) or cache.get(
                    best.cert_pem
                )
                if context is None:
                    try:
                        context = await asyncio.to_thread(
                            make_context, self.data_dir, best.cert_pem, best.key_pem
                        )
                    except (ssl.SSLError, OSError) as exc:
                        logger.error(
                            "cannot load certificate %d of vhost %s: %s",
                            best.id,
                            vhost.domain,
                            exc,
                        )
                        continue
                cache[best.cert_pem] = context
                serving[vhost.id] = best
                for name in vhost.names:
                    contexts[name] = context

            # Replaced whole, so a handshake uses either the old or the new set.
            self._contexts = contexts
            self._serving = serving
            self._context_cache = cache
        logger.info(
            "loaded TLS certificates for %d vhosts (%d names)",
            len(serving),
            len(contexts),
        )

    async def _add_self_signed(self, vhost: TlsVhost) -> StoredCertificate:
        issued = await asyncio.to_thread(create_self_signed, vhost.names)
        info = chain_info(issued.cert_pem)
        await certificate_store.add_certificate(
            self.store,
            vhost.id,
            SOURCE_SELF_SIGNED,
            info.names,
            info.not_before,
            info.not_after,
            issued.cert_pem,
            issued.key_pem,
        )
        logger.info("created a self-signed certificate for %s", ", ".join(vhost.names))
        now = utc_now()
        await certificate_store.delete_certificates(
            self.store, vhost.id, SOURCE_SELF_SIGNED, expired_before=now
        )
        # Read back: another worker may have stored one at the same moment,
        # and the oldest usable self-signed certificate is the one all serve.
        best = await certificate_store.find_best_certificate(self.store, vhost, now)
        if best is None:
            raise CertificateError(
                f"the new certificate for {vhost.domain} is unusable"
            )
        return best

    def server_context(self) -> ssl.SSLContext:
        """Return the one context for HTTPS listeners; SNI picks the certificate."""
        if self._server_context is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            _configure(context)
            context.sni_callback = self._select
            self._server_context = context
        return self._server_context

    def _select(
        self,
        connection: ssl.SSLObject | ssl.SSLSocket,
        server_name: str | None,
        _: ssl.SSLContext,
    ) -> int | None:
        if server_name is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        context = self._contexts.get(server_name.lower().rstrip("."))
        if context is None:
            logger.debug("TLS handshake for unknown name %r rejected", server_name)
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        connection.context = context
        return None

    def context_for(self, hostname: str) -> ssl.SSLContext | None:
        """Return the context of the vhost serving ``hostname``, if any."""
        return self._contexts.get(hostname.lower().rstrip("."))

    def serving(self, vhost_id: int) -> StoredCertificate | None:
        """Return the certificate a vhost serves since the last load."""
        return self._serving.get(vhost_id)


def _needs_new_self_signed(certificate: StoredCertificate, now: object) -> bool:
    return (
        certificate.source == SOURCE_SELF_SIGNED
        and certificate.not_after - SELF_SIGNED_RENEW_BEFORE <= now  # type: ignore[operator]
    )


async def default_context(
    store: Store,
    data_dir: Path,
    hostname: str,
    context: ssl.SSLContext | None = None,
) -> ssl.SSLContext:
    """Return a server context for a mail hostname (SMTP and IMAP STARTTLS).

    Any stored certificate that covers the hostname serves, best source
    first. Otherwise a self-signed one is created once and kept in
    ``DATA_DIR/tls/self-signed/<hostname>.pem`` (mode 0600). Passing the
    ``context`` returned earlier reloads it in place after a certificate
    event.
    """
    hostname = hostname.lower().rstrip(".")
    if not HOSTNAME_PATTERN.match(hostname) or ".." in hostname:
        raise ValueError(f"invalid hostname for a certificate: {hostname!r}")

    stored = await certificate_store.vhost_certificates(store)
    best = certificate_store.best_certificate(stored, [hostname])
    if best is not None:
        return await asyncio.to_thread(
            make_context, data_dir, best.cert_pem, best.key_pem, context
        )

    issued = await asyncio.to_thread(_self_signed_file, data_dir, hostname)
    return await asyncio.to_thread(
        make_context, data_dir, issued.cert_pem, issued.key_pem, context
    )


def _self_signed_file(data_dir: Path, hostname: str) -> IssuedCertificate:
    """Read the hostname's self-signed certificate file, or write a new one."""
    path = tls_dir(data_dir) / "self-signed" / f"{hostname}.pem"
    if path.exists():
        text = path.read_text(encoding="ascii")
        try:
            leaf = load_chain(text)[0]
        except CertificateError:
            leaf = None
        fresh = (
            leaf is not None
            and leaf.not_valid_after_utc - SELF_SIGNED_RENEW_BEFORE > utc_now()
            and "-----BEGIN PRIVATE KEY-----" in text
        )
        if fresh:
            cert_part, key_part = text.split("-----BEGIN PRIVATE KEY-----", 1)
            return IssuedCertificate(
                cert_part, "-----BEGIN PRIVATE KEY-----" + key_part
            )

    issued = create_self_signed([hostname])
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(issued.cert_pem + issued.key_pem)
        if path.exists():
            os.replace(tmp_name, path)
        else:
            try:
                # Several mail workers may start at once: the first file wins
                # and the others read it, so all present the same certificate.
                os.link(tmp_name, path)
            except FileExistsError:
                return _self_signed_file(data_dir, hostname)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    logger.info("created a self-signed certificate for %s in %s", hostname, path)
    return issued
