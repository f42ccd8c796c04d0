"""Parsed certificate chains, hostname matching and PEM helpers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

SOURCE_ACME = "acme"
SOURCE_UPLOADED = "uploaded"
SOURCE_SELF_SIGNED = "self-signed"

# A vhost serves its best certificate: ACME first, then an uploaded one, then
# the self-signed fallback.
SOURCE_PRIORITY = {SOURCE_ACME: 0, SOURCE_UPLOADED: 1, SOURCE_SELF_SIGNED: 2}

PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class CertificateError(ValueError):
    """A certificate or key that cannot be used; the message names the reason."""


@dataclass(frozen=True)
class ChainInfo:
    """A chain's leaf as the API shows it: names, dates, issuer and subject."""

    names: list[str]
    not_before: datetime
    not_after: datetime
    issuer: str
    subject: str


def load_chain(cert_pem: str | bytes) -> list[x509.Certificate]:
    """Parse every PEM certificate of a bundle, in order; raise if there is none."""
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    blocks = PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise CertificateError("certificate: no PEM CERTIFICATE block found")
    chain = []
    for index, block in enumerate(blocks):
        try:
            chain.append(x509.load_pem_x509_certificate(block))
        except ValueError as exc:
            raise CertificateError(
                f"certificate {index} of the bundle is not valid PEM: {exc}"
            ) from None
    return chain


def load_private_key(key_pem: str | bytes) -> PrivateKey:
    """Parse an unencrypted PEM private key of a type TLS servers use."""
    data = key_pem.encode() if isinstance(key_pem, str) else key_pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CertificateError(
            "privateKey: the key is encrypted; upload it without a passphrase"
        ) from None
    except ValueError:
        raise CertificateError("privateKey: not a valid PEM private key") from None
    if not isinstance(key, PrivateKey):
        raise CertificateError(
            f"privateKey: unsupported key type {type(key).__name__}; "
            "use RSA, ECDSA or Ed25519"
        )
    return key


def dns_names(certificate: x509.Certificate) -> list[str]:
    """Return the certificate's DNS names (subjectAltName), lowercased."""
    try:
        extension = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except x509.ExtensionNotFound:
        # RFC 6125 section 6.4.4: the common name counts only without a SAN.
        return [
            str(attribute.value).lower()
            for attribute in certificate.subject.get_attributes_for_oid(
                NameOID.COMMON_NAME
            )
        ]
    return [name.lower() for name in extension.value.get_values_for_type(x509.DNSName)]


def name_matches(pattern: str, hostname: str) -> bool:
    """Tell whether a certificate name covers a hostname, case-insensitively.

    RFC 6125 section 6.4.3: a wildcard is the whole leftmost label and covers
    exactly one label, so ``*.example.com`` covers ``www.example.com`` but
    neither ``example.com`` nor ``a.b.example.com``.
    """
    pattern = pattern.lower().rstrip(".")
    hostname = hostname.lower().rstrip(".")
    if not pattern.startswith("*."):
        return pattern == hostname
    first, _, rest = hostname.partition(".")
    return bool(first) and rest == pattern[2:]


def uncovered_names(
    certificate_names: Iterable[str], hostnames: Iterable[str]
) -> list[str]:
    """Return the hostnames that no certificate name covers."""
    patterns = list(certificate_names)
    return [
        hostname
        for hostname in hostnames
        if not any(name_matches(pattern, hostname) for pattern in patterns)
    ]


def chain_info(cert_pem: str | bytes) -> ChainInfo:
    """Describe a bundle by its leaf, the first certificate."""
    leaf = load_chain(cert_pem)[0]
    return ChainInfo(
        names=dns_names(leaf),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        issuer=leaf.issuer.rfc4514_string(),
        subject=leaf.subject.rfc4514_string(),
    )


def public_key_bytes(key: object) -> bytes:
    """Return a public key in one canonical encoding, for comparison."""
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_key_pem(key: PrivateKey) -> str:
    """Serialise a private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Give a naive datetime (SQLite returns them) the UTC zone."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
