"""Validation of an uploaded certificate chain and private key.

The bundle is the leaf first, then each certificate that signed the one
before it. It is complete when it ends either at a self-issued certificate
(a root, or a self-signed leaf) or at a CA certificate whose issuer is not
in the bundle: an intermediate signed by a root that clients already trust.
A leaf alone that some CA signed is incomplete, because clients would have
to find the intermediate themselves, and many do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from onestack.tls.certificates import (
    CertificateError,
    ChainInfo,
    chain_info,
    dns_names,
    load_chain,
    load_private_key,
    public_key_bytes,
    uncovered_names,
    utc_now,
)

# A bundle longer than this is a mistake, not a chain.
MAX_CHAIN_LENGTH = 10


def validate_upload(
    cert_pem: str, key_pem: str, hostnames: Sequence[str], now: datetime | None = None
) -> ChainInfo:
    """Check an uploaded bundle and key for a vhost; raise CertificateError if unusable.

    ``hostnames`` are the vhost's domain and aliases, which the leaf must all
    cover.
    """
    now = now or utc_now()
    chain = load_chain(cert_pem)
    if len(chain) > MAX_CHAIN_LENGTH:
        raise CertificateError(
            f"certificate: the bundle has {len(chain)} certificates, "
            f"more than {MAX_CHAIN_LENGTH}"
        )
    key = load_private_key(key_pem)
    leaf = chain[0]

    if public_key_bytes(key.public_key()) != public_key_bytes(leaf.public_key()):
        raise CertificateError(
            "privateKey: the key does not match the certificate's public key"
        )

    check_chain(chain)
    check_dates(chain, now)

    missing = uncovered_names(dns_names(leaf), hostnames)
    if missing:
        raise CertificateError(
            "certificate: its names "
            f"({', '.join(dns_names(leaf)) or 'none'}) do not cover "
            f"{', '.join(missing)}"
        )
    return chain_info(cert_pem)


def check_chain(chain: Sequence[x509.Certificate]) -> None:
    """Check that each certificate is signed by the next and the chain is complete."""
    for index, certificate in enumerate(chain):
        is_last = index == len(chain) - 1
        if certificate.issuer == certificate.subject:
            _verify_signature(certificate, certificate, index, index)
            if not is_last:
                raise CertificateError(
                    f"certificate: certificate {index} is self-issued (a root) "
                    "but more certificates follow it; put the chain in order, "
                    "leaf first"
                )
            return
        if is_last:
            if index > 0 and _is_ca(certificate):
                # An intermediate whose root is in the clients' trust stores.
                return
            raise CertificateError(
                "certificate: the chain is incomplete: the issuer "
                f"{certificate.issuer.rfc4514_string()} of certificate {index} "
                "is missing; append the intermediate certificates after the leaf"
            )
        issuer = chain[index + 1]
        if issuer.subject != certificate.issuer:
            raise CertificateError(
                "certificate: the chain is out of order: certificate "
                f"{index} was issued by {certificate.issuer.rfc4514_string()}, "
                f"but certificate {index + 1} is "
                f"{issuer.subject.rfc4514_string()}"
            )
        if not _is_ca(issuer):
            raise CertificateError(
                f"certificate: certificate {index + 1} "
                f"({issuer.subject.rfc4514_string()}) is not a CA certificate"
            )
        _verify_signature(certificate, issuer, index, index + 1)


def check_dates(chain: Sequence[x509.Certificate], now: datetime) -> None:
    """Reject a chain in which any certificate has expired or is not valid yet."""
    for index, certificate in enumerate(chain):
        what = "the certificate" if index == 0 else f"certificate {index} of the chain"
        if certificate.not_valid_after_utc <= now:
            raise CertificateError(
                f"certificate: {what} expired on "
                f"{certificate.not_valid_after_utc.isoformat()}"
            )
        if certificate.not_valid_before_utc > now:
            raise CertificateError(
                f"certificate: {what} is not valid before "
                f"{certificate.not_valid_before_utc.isoformat()}"
            )


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(
            x509.BasicConstraints
        )
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def _verify_signature(
    certificate: x509.Certificate, issuer: x509.Certificate, index: int, by: int
) -> None:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError) as exc:
        detail = str(exc) or "the signature does not verify"
        raise CertificateError(
            f"certificate: certificate {index} is not signed by certificate {by}: "
            f"{detail}"
        ) from None
