"""Self-signed certificates: the fallback while no better certificate exists."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from onestack.tls.certificates import private_key_pem, utc_now

VALIDITY = timedelta(days=90)
# Clocks of clients may run a little behind ours.
BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate chain (leaf first) with its private key, both PEM."""

    cert_pem: str
    key_pem: str


def create_self_signed(
    names: Sequence[str], now: datetime | None = None
) -> IssuedCertificate:
    """Create an EC P-256 certificate for ``names`` (the first is the subject).

    It is valid for 90 days and signs itself, so clients warn about it. It
    lets a vhost with ``ssl: true`` serve HTTPS before any better certificate
    exists.
    """
    if not names:
        raise ValueError("a self-signed certificate needs at least one name")
    now = now or utc_now()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    unique_names = list(dict.fromkeys(name.lower() for name in names))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        # RFC 5280 section 4.1.2.2: a positive serial of at most 20 octets.
        .serial_number(secrets.randbits(159) | 1)
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in unique_names]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return IssuedCertificate(cert_pem=cert_pem, key_pem=private_key_pem(key))
