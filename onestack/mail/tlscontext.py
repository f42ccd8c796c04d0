"""The TLS context offered by STARTTLS in SMTP (and IMAP)."""

from __future__ import annotations

import datetime
import fcntl
import logging
import ssl
from pathlib import Path

from onestack.store import Store

logger = logging.getLogger(__name__)


async def server_context(store: Store, data_dir: Path, hostname: str) -> ssl.SSLContext:
    """Return the shared certificate store's context, or a self-signed one."""
    try:
        from onestack.tls.sni import default_context  # type: ignore[import-not-found]
    except ImportError:
        return self_signed_context(data_dir, hostname)
    return await default_context(store, data_dir, hostname)


def self_signed_context(data_dir: Path, hostname: str) -> ssl.SSLContext:
    """Load or create ``DATA_DIR/tls/mail-self-signed.pem`` for ``hostname``.

    NOTE: used only while the tls package (certificates chosen by SNI, ACME)
    is absent; clients see an untrusted self-signed certificate.
    """
    folder = data_dir / "tls"
    cert_path = folder / f"mail-{hostname}.crt"
    key_path = folder / f"mail-{hostname}.key"
    folder.mkdir(parents=True, exist_ok=True)
    # Workers start side by side; the lock keeps one key and one certificate.
    with open(folder / "mail-self-signed.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cert_path.exists() or not key_path.exists():
            _write_self_signed(folder, cert_path, key_path, hostname)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context


def _write_self_signed(
    folder: Path, cert_path: Path, key_path: Path, hostname: str
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_tmp = key_path.with_suffix(".tmp")
    key_tmp.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_tmp.chmod(0o600)
    key_tmp.replace(key_path)
    cert_tmp = cert_path.with_suffix(".tmp")
    cert_tmp.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    cert_tmp.replace(cert_path)
    logger.info("created a self-signed mail certificate for %s in %s", hostname, folder)
