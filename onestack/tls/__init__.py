"""Certificates for every TLS listener: self-signed, uploaded and ACME.

HTTPS picks a vhost's certificate by SNI (``sni.CertificateSet``); SMTP and
IMAP STARTTLS ask for one by hostname (``sni.default_context``). This package
imports no protocol package, so web and mail both build on it.

Certificates and their private keys are kept in the ``certificates`` table
(``key_pem``), not as files: the key then travels with its certificate in one
transaction, and several nodes sharing PostgreSQL see the same certificates.
The one exception is the self-signed fallback for a mail hostname that no
vhost covers, kept as a 0600 file under ``DATA_DIR/tls/``.
"""
