from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from onestack.tls.certificates import dns_names, load_chain, load_private_key
from onestack.tls.selfsigned import create_self_signed
from onestack.tls.validation import validate_upload


def test_self_signed_names_and_key() -> None:
    issued = create_self_signed(["Example.com", "www.example.com", "example.com"])
    leaf = load_chain(issued.cert_pem)[0]
    key = load_private_key(issued.key_pem)

    assert dns_names(leaf) == ["example.com", "www.example.com"]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert leaf.issuer == leaf.subject
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is False


def test_self_signed_lasts_90_days() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    leaf = load_chain(create_self_signed(["a.test"], now=now).cert_pem)[0]

    assert leaf.not_valid_after_utc == now + timedelta(days=90)
    assert leaf.not_valid_before_utc <= now


def test_self_signed_passes_upload_validation() -> None:
    issued = create_self_signed(["a.test", "b.test"])

    info = validate_upload(issued.cert_pem, issued.key_pem, ["a.test", "B.test"])

    assert info.names == ["a.test", "b.test"]
