"""SMTP STARTTLS presents a certificate uploaded after the module started."""

from __future__ import annotations

import smtplib
import ssl
import time
from pathlib import Path

import trustme
from cryptography import x509

from tests.support import Server, run_server
from tests.tls.test_certificate_api import upload_body

MAIL_HOST = "mail.starttls.test"


def served_certificate(server: Server) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(
        "127.0.0.1", server.port("email", "smtp.port"), timeout=30
    ) as smtp:
        smtp.ehlo("client.test")
        smtp.starttls(context=context)
        der = smtp.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
    return x509.load_der_x509_certificate(der)


def test_uploaded_certificate_reaches_smtp(tmp_path: Path) -> None:
    overrides = {
        "modules": {"email": {"enabled": True, "smtp": {"hostname": MAIL_HOST}}}
    }
    with run_server(tmp_path / "data", overrides) as server:
        server.wait_module("email")
        before = served_certificate(server)
        assert "trustme" not in before.issuer.rfc4514_string()

        vhost = server.api(
            "POST", "/api/vhosts", json={"domain": MAIL_HOST, "ssl": True}
        ).json()
        ca = trustme.CA()
        response = server.api(
            "PUT",
            f"/api/vhosts/{vhost['id']}/certificate",
            json=upload_body(ca, MAIL_HOST),
        )
        assert response.status_code == 200, response.text

        deadline = time.monotonic() + 20
        after = served_certificate(server)
        while "trustme" not in after.issuer.rfc4514_string():
            assert time.monotonic() < deadline, "SMTP kept the old certificate"
            time.sleep(0.2)
            after = served_certificate(server)
        names = after.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert MAIL_HOST in names.value.get_values_for_type(x509.DNSName)
