from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from onestack.tls.certificates import CertificateError, private_key_pem
from onestack.tls.selfsigned import create_self_signed
from onestack.tls.validation import validate_upload


def bundle(*blobs: trustme.Blob) -> str:
    return "".join(blob.bytes().decode() for blob in blobs)


@pytest.fixture(scope="module")
def root() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def intermediate(root: trustme.CA) -> trustme.CA:
    return root.create_child_ca()


def test_leaf_and_root_accepted(root: trustme.CA) -> None:
    leaf = root.issue_cert("example.com", "www.example.com")

    info = validate_upload(
        bundle(*leaf.cert_chain_pems, root.cert_pem),
        leaf.private_key_pem.bytes().decode(),
        ["example.com", "www.example.com"],
    )

    assert info.names == ["example.com", "www.example.com"]
    assert info.not_after > datetime.now(UTC)


def test_chain_ending_at_intermediate_accepted(intermediate: trustme.CA) -> None:
    leaf = intermediate.issue_cert("example.com")
    chain = leaf.cert_chain_pems

    assert len(chain) == 2  # the leaf, then the intermediate
    info = validate_upload(
        bundle(*chain), leaf.private_key_pem.bytes().decode(), ["example.com"]
    )
    assert info.names == ["example.com"]


def test_wildcard_covers_one_label(root: trustme.CA) -> None:
    leaf = root.issue_cert("*.example.com")
    pem = bundle(*leaf.cert_chain_pems, root.cert_pem)
    key = leaf.private_key_pem.bytes().decode()

    validate_upload(pem, key, ["www.example.com", "mail.example.com"])
    with pytest.raises(CertificateError, match="do not cover a.b.example.com"):
        validate_upload(pem, key, ["www.example.com", "a.b.example.com"])


def test_key_mismatch_rejected(root: trustme.CA) -> None:
    leaf = root.issue_cert("example.com")
    other = root.issue_cert("example.com")

    with pytest.raises(CertificateError, match="key does not match"):
        validate_upload(
            bundle(*leaf.cert_chain_pems, root.cert_pem),
            other.private_key_pem.bytes().decode(),
            ["example.com"],
        )


def test_leaf_without_intermediate_rejected(intermediate: trustme.CA) -> None:
    leaf = intermediate.issue_cert("example.com")
    leaf_only = leaf.cert_chain_pems[0]

    with pytest.raises(CertificateError, match="chain is incomplete") as caught:
        validate_upload(
            bundle(leaf_only), leaf.private_key_pem.bytes().decode(), ["example.com"]
        )
    assert "certificate 0" in str(caught.value)


def test_chain_out_of_order_rejected(
    root: trustme.CA, intermediate: trustme.CA
) -> None:
    leaf = intermediate.issue_cert("example.com")
    leaf_pem, intermediate_pem = leaf.cert_chain_pems

    with pytest.raises(CertificateError, match="out of order"):
        validate_upload(
            bundle(leaf_pem, root.cert_pem, intermediate_pem),
            leaf.private_key_pem.bytes().decode(),
            ["example.com"],
        )


def test_chain_with_forged_signature_rejected(intermediate: trustme.CA) -> None:
    # The leaf names the intermediate as its issuer, but another key signed it.
    intermediate_cert = x509.load_pem_x509_certificate(intermediate.cert_pem.bytes())
    forger = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    forged = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")])
        )
        .issuer_name(intermediate_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("example.com")]), critical=False
        )
        .sign(forger, hashes.SHA256())
    )

    with pytest.raises(CertificateError, match="not signed by certificate 1"):
        validate_upload(
            forged.public_bytes(serialization.Encoding.PEM).decode()
            + intermediate.cert_pem.bytes().decode(),
            private_key_pem(leaf_key),
            ["example.com"],
        )


def test_names_not_covering_rejected(root: trustme.CA) -> None:
    leaf = root.issue_cert("example.com")

    with pytest.raises(CertificateError) as caught:
        validate_upload(
            bundle(*leaf.cert_chain_pems, root.cert_pem),
            leaf.private_key_pem.bytes().decode(),
            ["example.com", "www.example.com"],
        )
    assert "do not cover www.example.com" in str(caught.value)


def test_expired_rejected(root: trustme.CA) -> None:
    now = datetime.now(UTC)
    leaf = root.issue_cert(
        "example.com",
        not_before=now - timedelta(days=100),
        not_after=now - timedelta(days=1),
    )

    with pytest.raises(CertificateError, match="the certificate expired on"):
        validate_upload(
            bundle(*leaf.cert_chain_pems, root.cert_pem),
            leaf.private_key_pem.bytes().decode(),
            ["example.com"],
        )


def test_not_yet_valid_rejected(root: trustme.CA) -> None:
    now = datetime.now(UTC)
    leaf = root.issue_cert(
        "example.com",
        not_before=now + timedelta(days=1),
        not_after=now + timedelta(days=90),
    )

    with pytest.raises(CertificateError, match="not valid before"):
        validate_upload(
            bundle(*leaf.cert_chain_pems, root.cert_pem),
            leaf.private_key_pem.bytes().decode(),
            ["example.com"],
        )


@pytest.mark.parametrize(
    ("certificate", "key", "reason"),
    [
        ("not a certificate", None, "no PEM CERTIFICATE block"),
        (None, "not a key", "not a valid PEM private key"),
    ],
)
def test_garbage_rejected(
    certificate: str | None, key: str | None, reason: str
) -> None:
    issued = create_self_signed(["example.com"])

    with pytest.raises(CertificateError, match=reason):
        validate_upload(
            certificate or issued.cert_pem, key or issued.key_pem, ["example.com"]
        )


def test_encrypted_key_rejected(root: trustme.CA) -> None:
    leaf = root.issue_cert("example.com")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()

    with pytest.raises(CertificateError, match="encrypted"):
        validate_upload(
            bundle(*leaf.cert_chain_pems, root.cert_pem), encrypted, ["example.com"]
        )
